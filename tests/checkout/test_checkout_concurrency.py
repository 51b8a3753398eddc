"""Checkout under concurrency, on PostgreSQL with real threads: never oversell, one set
of reservations per cart, no deadlock whatever the order of the lines."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.db.models import Sum

from carts.models import Cart
from checkout.services import abandon_checkout
from inventory.models import Reservation, ReservationStatus, StockLevel
from tests.support import Shopper, assert_error, ensure_default_warehouse, stocked

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _default_warehouse():
    ensure_default_warehouse()


def run_together(calls: list[Callable[[], Any]]) -> list[Any]:
    """Runs the calls at the same moment, each in its own thread and connection; returns
    their results in order (an exception is returned, not raised)."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def worker(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[index] = calls[index]()
        except Exception as exc:  # reported to the test thread
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a thread hung"
    return results


def assert_stock_invariants() -> None:
    for row in StockLevel.objects.all():
        pending = (
            Reservation.objects.filter(stock_level=row, status=ReservationStatus.PENDING).aggregate(
                total=Sum("quantity")
            )["total"]
            or 0
        )
        assert 0 <= row.reserved <= row.on_hand
        assert row.reserved == pending, (row, pending)


def test_many_shoppers_race_for_the_last_unit_and_only_one_gets_it():
    stocked(sku="LAST-ONE", on_hand=1)
    shoppers = [Shopper() for _ in range(12)]
    for shopper in shoppers:
        shopper.cart_with(("LAST-ONE", 1))

    responses = run_together([shopper.start for shopper in shoppers])

    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 1, 400: 11}, statuses
    for response in responses:
        if response.status_code == 400:
            assert assert_error(response)["code"] == "INSUFFICIENT_STOCK"
    assert StockLevel.objects.get().reserved == 1
    assert Reservation.objects.filter(status=ReservationStatus.PENDING).count() == 1
    assert Counter(Cart.objects.values_list("status", flat=True)) == {"checkout": 1, "active": 11}
    assert_stock_invariants()


def test_two_tabs_starting_the_same_checkout_get_one_set_of_reservations():
    stocked(sku="TAB-A", on_hand=10)
    stocked(sku="TAB-B", on_hand=10)
    shopper = Shopper()
    shopper.cart_with(("TAB-A", 2), ("TAB-B", 1))
    other_tab = Shopper()
    other_tab.cart_id, other_tab.token = shopper.cart_id, shopper.token

    first, second = run_together([shopper.start, other_tab.start])

    assert sorted([first.status_code, second.status_code]) == [200, 201]
    assert first.json()["reservation_ids"] == second.json()["reservation_ids"]
    assert Reservation.objects.count() == 2
    assert dict(StockLevel.objects.values_list("product__sku", "reserved")) == {
        "TAB-A": 2,
        "TAB-B": 1,
    }
    assert_stock_invariants()


def test_multi_line_carts_in_opposite_orders_never_deadlock_or_oversell():
    skus = ["ML-A", "ML-B", "ML-C", "ML-D"]
    for sku in skus:
        stocked(sku=sku, on_hand=5)
    shoppers = []
    for index in range(10):
        shopper = Shopper()
        order = skus if index % 2 else list(reversed(skus))
        shopper.cart_with(*[(sku, 1) for sku in order[index % 4 :] + order[: index % 4]])
        shoppers.append(shopper)

    responses = run_together([shopper.start for shopper in shoppers])

    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 5, 400: 5}, [r.content for r in responses]
    assert set(StockLevel.objects.values_list("reserved", flat=True)) == {5}
    assert_stock_invariants()


def test_a_shopper_extending_while_a_sweeper_abandons_leaves_one_consistent_outcome(
    time_machine, settings
):
    settings.CHECKOUT_EXTENSION_THRESHOLD_SECONDS = 120
    time_machine.move_to("2031-03-01T12:00:00Z", tick=False)
    # Plenty left after the holds: not scarcity holds (SPEC §15), the start TTL applies.
    stocked(sku="RACE-A", on_hand=50)
    stocked(sku="RACE-B", on_hand=50)
    shoppers = []
    for _ in range(4):
        shopper = Shopper()
        shopper.cart_with(("RACE-A", 1), ("RACE-B", 1))
        assert shopper.start().status_code == 201
        shoppers.append(shopper)
    time_machine.shift(timedelta(seconds=250))  # extension due, not yet expired

    calls: list[Callable[[], Any]] = []
    for shopper in shoppers:
        calls.append(lambda s=shopper: s.update({"current_step": 2}))
        calls.append(
            lambda s=shopper: abandon_checkout(cart_id=s.cart_id, reason="stale", actor="sweeper")
        )
    results = run_together(calls)

    assert not [r for r in results if isinstance(r, Exception)], results
    for shopper, update in zip(shoppers, results[::2], strict=True):
        cart = Cart.objects.get(id=shopper.cart_id)
        pending = Reservation.objects.filter(cart_id=cart.id, status=ReservationStatus.PENDING)
        if update.status_code == 200:  # the shopper went first: extended, then abandoned
            assert update.json()["extensions_used"] == 1
        else:  # the sweeper went first
            assert assert_error(update)["details"] == {"status": "abandoned"}
        assert cart.status == "abandoned"
        assert not pending.exists()
    assert set(StockLevel.objects.values_list("reserved", flat=True)) == {0}
    assert_stock_invariants()


def test_two_tabs_reading_an_expired_checkout_both_hear_it_expired(time_machine):
    time_machine.move_to("2031-03-01T12:00:00Z", tick=False)
    stocked(sku="TWO-READS", on_hand=2)
    shopper = Shopper()
    shopper.cart_with(("TWO-READS", 2))
    assert shopper.start().status_code == 201
    other_tab = Shopper()
    other_tab.cart_id, other_tab.token = shopper.cart_id, shopper.token
    time_machine.shift(timedelta(seconds=301))

    responses = run_together([shopper.state, other_tab.state])

    assert [r.status_code for r in responses] == [410, 410]
    assert {assert_error(r)["code"] for r in responses} == {"CHECKOUT_EXPIRED"}
    assert Cart.objects.get(id=shopper.cart_id).status == "abandoned"
    assert StockLevel.objects.get().reserved == 0
    assert_stock_invariants()
