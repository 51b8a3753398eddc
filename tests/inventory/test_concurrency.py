"""The reservation service under real concurrency: threads, each with its own PostgreSQL
connection, lined up on a barrier. The test settings give every connection a 5 s
``lock_timeout``, so a lock-order bug fails here (OperationalError) instead of hanging."""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone

from inventory import locks, services
from inventory.errors import InsufficientStock, ReservationNotActive
from inventory.models import Reservation, ReservationEvent, ReservationStatus, StockLevel
from inventory.services import ReservationLine
from tests.support import assert_counters_exact, run_concurrently
from tests.support.factories import OrderFactory, StockLevelFactory, WarehouseFactory

pytestmark = pytest.mark.django_db(transaction=True)


def line(stock: StockLevel, quantity: int = 1) -> ReservationLine:
    return ReservationLine(stock.product_id, stock.warehouse_id, quantity)


def unexpected(outcomes: list[Any], *expected: type[Exception]) -> list[Exception]:
    return [o for o in outcomes if isinstance(o, Exception) and not isinstance(o, expected)]


def test_fifty_buyers_of_the_last_ten_units_leave_exactly_ten_reservations():
    stock = StockLevelFactory(on_hand=10, warehouse=WarehouseFactory())

    outcomes = run_concurrently(
        50,
        lambda i: services.reserve(lines=[line(stock)], ttl_seconds=300, actor=f"buyer-{i}"),
    )

    assert unexpected(outcomes, InsufficientStock) == []
    reserved = [o for o in outcomes if isinstance(o, list)]
    refused = [o for o in outcomes if isinstance(o, InsufficientStock)]
    assert (len(reserved), len(refused)) == (10, 40)
    assert all(e.items[0]["available"] == 0 and e.items[0]["requested"] == 1 for e in refused)
    stock.refresh_from_db()
    assert (stock.on_hand, stock.reserved) == (10, 10)
    assert Reservation.objects.filter(stock_level=stock, status="pending").count() == 10
    assert ReservationEvent.objects.filter(kind="created").count() == 10
    assert_counters_exact()


def test_multi_line_carts_locking_in_opposite_orders_never_deadlock():
    warehouse = WarehouseFactory()
    skus = [StockLevelFactory(on_hand=15, warehouse=warehouse) for _ in range(6)]
    orders = [OrderFactory() for _ in range(4)]
    confirmed: Counter[int] = Counter()
    confirmed_lock = threading.Lock()

    def shopper(i: int) -> list[str]:
        # Half walk the skus forwards, half backwards, each over an overlapping window.
        chosen = skus[i % 3 : i % 3 + 4]
        if i % 2:
            chosen = list(reversed(chosen))
        done = []
        for round_ in range(3):
            try:
                made = services.reserve(
                    lines=[line(s, 1 + (i + round_) % 2) for s in chosen],
                    ttl_seconds=300,
                    actor=f"shopper-{i}",
                )
            except InsufficientStock:
                done.append("short")
                continue
            ids = [r.id for r in reversed(made)] if i % 2 else [r.id for r in made]
            services.extend(reservation_ids=ids, expires_at=timezone.now() + timedelta(seconds=600))
            if (i + round_) % 3 == 0:
                services.confirm(reservation_ids=ids, order_id=orders[i % 4].id)
                with confirmed_lock:
                    for r in made:
                        confirmed[r.stock_level_id] += r.quantity
                done.append("confirmed")
            else:
                services.release(reservation_ids=ids, reason="checkout_cancelled")
                done.append("released")
        return done

    outcomes = run_concurrently(20, shopper)

    assert unexpected(outcomes) == []
    assert sum(o.count("confirmed") for o in outcomes) > 0
    assert_counters_exact()
    for stock in skus:
        stock.refresh_from_db()
        assert stock.reserved == 0
        assert stock.on_hand == 15 - confirmed[stock.id]


def test_two_sweepers_in_parallel_expire_each_lapsed_reservation_exactly_once():
    warehouse = WarehouseFactory()
    skus = [StockLevelFactory(on_hand=6, warehouse=warehouse) for _ in range(40)]
    for _ in range(5):
        services.reserve(lines=[line(s) for s in skus], ttl_seconds=60)
    live = services.reserve(lines=[line(skus[0])], ttl_seconds=900)
    assert StockLevel.objects.filter(reserved=5).count() == 39

    with time_machine.travel(timezone.now() + timedelta(seconds=120)):

        def sweeper(i: int) -> int:
            total = 0
            while done := services.expire_due(batch_size=7, actor=f"sweeper-{i}"):
                total += done
            return total

        outcomes = run_concurrently(2, sweeper)

    assert unexpected(outcomes) == []
    assert sum(outcomes) == 200
    expired_events = ReservationEvent.objects.filter(kind="expired")
    assert expired_events.count() == 200
    assert not expired_events.values("reservation").annotate(n=Count("id")).filter(n__gt=1)
    assert Reservation.objects.filter(status="expired").count() == 200
    assert Reservation.objects.get(id=live[0].id).status == ReservationStatus.PENDING
    assert_counters_exact()
    assert list(StockLevel.objects.exclude(id=skus[0].id).values_list("reserved", flat=True)) == (
        [0] * 39
    )


def test_reserve_racing_the_sweeper_on_the_same_rows_never_frees_stock_twice():
    warehouse = WarehouseFactory()
    skus = [StockLevelFactory(on_hand=3, warehouse=warehouse) for _ in range(6)]
    for _ in range(3):
        services.reserve(lines=[line(s) for s in skus], ttl_seconds=60)
    lapsed_ids = set(Reservation.objects.values_list("id", flat=True))

    with time_machine.travel(timezone.now() + timedelta(seconds=120)):

        def work(i: int) -> Any:
            if i < 2:
                total = 0
                for _ in range(30):
                    total += services.expire_due(batch_size=2, actor=f"sweeper-{i}")
                return total
            made = []
            for round_ in range(3):
                stock = skus[(i + round_) % len(skus)]
                with contextlib.suppress(InsufficientStock):
                    made += services.reserve(lines=[line(stock)], ttl_seconds=300)
            return made

        outcomes = run_concurrently(14, work)

    assert unexpected(outcomes) == []
    swept = sum(outcomes[:2])
    bought = [r for made in outcomes[2:] for r in made]
    # 18 lapsed units back on the shelf, 36 attempts: every unit is sold exactly once.
    assert len(bought) == 18
    assert_counters_exact()
    events = Counter(
        ReservationEvent.objects.filter(kind="expired").values_list("reservation_id", flat=True)
    )
    assert set(events) == lapsed_ids
    assert set(events.values()) == {1}
    reclaimed = ReservationEvent.objects.filter(kind="expired", reason="reclaimed on demand")
    assert swept + reclaimed.count() == len(lapsed_ids)
    assert sum(
        StockLevel.objects.filter(id__in=[s.id for s in skus]).values_list("reserved", flat=True)
    ) == len(bought)


def test_confirm_and_release_racing_on_one_reservation_let_exactly_one_win():
    stock = StockLevelFactory(on_hand=4, warehouse=WarehouseFactory())
    order = OrderFactory()
    [reservation] = services.reserve(lines=[line(stock, 3)], ttl_seconds=300)

    def work(i: int) -> str:
        if i % 2:
            services.confirm(reservation_ids=[reservation.id], order_id=order.id)
            return "confirmed"
        services.release(reservation_ids=[reservation.id])
        return "released"

    outcomes = run_concurrently(6, work)

    assert unexpected(outcomes, ReservationNotActive) == []
    stored = Reservation.objects.get(id=reservation.id)
    stock.refresh_from_db()
    if stored.status == ReservationStatus.CONFIRMED:
        assert set(outcomes[1::2]) == {"confirmed"}  # confirm again for the same order: no-op
        assert all(isinstance(o, ReservationNotActive) for o in outcomes[0::2])
        assert (stock.on_hand, stock.reserved) == (1, 0)
    else:
        assert stored.status == ReservationStatus.RELEASED
        assert set(outcomes[0::2]) == {"released"}  # releasing again: no-op
        assert all(isinstance(o, ReservationNotActive) for o in outcomes[1::2])
        assert (stock.on_hand, stock.reserved) == (4, 0)
    assert ReservationEvent.objects.filter(kind__in=["confirmed", "released"]).count() == 1
    assert_counters_exact()


def _waiting_for_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0] > 0


@pytest.mark.parametrize("operation", ["release", "confirm", "extend"])
def test_an_operation_waiting_for_a_stock_row_holds_no_reservation_lock_yet(operation):
    # Lock order: stock rows, then reservations. While an operation waits for a stock
    # row, the reservation must still be free; otherwise a sweeper holding the stock row
    # and wanting the reservation would deadlock with it.
    stock = StockLevelFactory(on_hand=5, warehouse=WarehouseFactory())
    [reservation] = services.reserve(lines=[line(stock)], ttl_seconds=300)
    order = OrderFactory()
    held, let_go = threading.Event(), threading.Event()
    outcome: list[Any] = []

    def holder() -> None:
        try:
            with transaction.atomic():
                locks.lock_stock_levels([stock.id])
                held.set()
                let_go.wait(timeout=30)
        finally:
            connection.close()

    def operator() -> None:
        try:
            held.wait(timeout=30)
            calls = {
                "release": lambda: services.release(reservation_ids=[reservation.id]),
                "confirm": lambda: services.confirm(
                    reservation_ids=[reservation.id], order_id=order.id
                ),
                "extend": lambda: services.extend(
                    reservation_ids=[reservation.id],
                    expires_at=timezone.now() + timedelta(seconds=600),
                ),
            }
            outcome.append(calls[operation]())
        except Exception as exc:  # handed to the test
            outcome.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=holder), threading.Thread(target=operator)]
    for thread in threads:
        thread.start()
    try:
        held.wait(timeout=30)
        for _ in range(100):
            if _waiting_for_a_lock():
                break
            time.sleep(0.02)
        else:
            pytest.fail("the operation never waited for the stock row")
        with transaction.atomic():
            # Raises OperationalError if the waiting operation already holds it.
            Reservation.objects.select_for_update(nowait=True).get(id=reservation.id)
    finally:
        let_go.set()
        for thread in threads:
            thread.join(timeout=30)

    assert len(outcome) == 1 and not isinstance(outcome[0], Exception), outcome
    assert_counters_exact()
