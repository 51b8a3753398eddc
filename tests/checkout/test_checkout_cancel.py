"""Backing out of checkout (SPEC §7.5), removing lines during checkout, and abandoning a
checkout (the cleanup jobs' entry point)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from carts.models import Cart, CartStatus
from checkout.services import abandon_checkout
from inventory.models import Reservation, ReservationStatus, StockLevel
from tests.support import (
    ADDRESS,
    Shopper,
    assert_constant_queries,
    assert_error,
    shoppers_with_1_and_10_lines,
    stocked,
)

pytestmark = pytest.mark.django_db

NOW = datetime(2031, 3, 1, 12, 0, tzinfo=UTC)


def reserved(sku: str) -> int:
    return StockLevel.objects.get(product__sku=sku).reserved


@pytest.fixture
def in_checkout() -> tuple[Shopper, dict]:
    stocked(sku="TEA", on_hand=10)
    stocked(sku="CUP", on_hand=10)
    shopper = Shopper()
    shopper.cart_with(("TEA", 2), ("CUP", 3))
    state = shopper.start().json()
    return shopper, state


def test_cancel_releases_the_reservations_and_makes_the_cart_active(in_checkout):
    shopper, state = in_checkout
    shopper.update({"shipping_address": ADDRESS, "current_step": 2})

    response = shopper.cancel()

    assert response.status_code == 200
    body = response.json()
    assert "token" not in body
    assert (body["status"], body["expires_at"]) == ("active", None)
    assert [i["sku"] for i in body["items"]] == ["TEA", "CUP"]
    reservations = Reservation.objects.filter(id__in=state["reservation_ids"])
    assert {(r.status, r.release_reason) for r in reservations} == {
        ("released", "checkout_cancelled")
    }
    assert (reserved("TEA"), reserved("CUP")) == (0, 0)
    cart = Cart.objects.get(id=shopper.cart_id)
    assert (cart.checkout_started_at, cart.extensions_used) == (None, 0)
    assert cart.shipping_address["city"] == "London"  # the shopper's data is kept


def test_after_cancelling_the_cart_can_be_edited_and_checked_out_again(in_checkout):
    shopper, state = in_checkout
    shopper.cancel()
    tea = next(i for i in state["cart"]["items"] if i["sku"] == "TEA")

    assert shopper.set_quantity(tea["id"], 5).status_code == 200
    restarted = shopper.start()

    assert restarted.status_code == 201
    assert (reserved("TEA"), reserved("CUP")) == (5, 3)


def test_cancel_on_a_cart_not_in_checkout_is_refused():
    stocked(sku="IDLE", on_hand=1)
    shopper = Shopper()
    shopper.cart_with(("IDLE", 1))

    response = shopper.cancel()

    assert response.status_code == 409
    error = assert_error(response)
    assert (error["code"], error["details"]) == ("INVALID_CART_STATUS", {"status": "active"})


def test_removing_a_line_during_checkout_releases_only_its_reservation(in_checkout):
    shopper, state = in_checkout
    tea = next(i for i in state["cart"]["items"] if i["sku"] == "TEA")
    tea_reservation = state["reservation_map"][tea["product_id"]]

    response = shopper.remove(tea["id"])

    assert response.status_code == 200
    assert response.json()["status"] == "checkout"
    assert [i["sku"] for i in response.json()["items"]] == ["CUP"]
    released = Reservation.objects.get(id=tea_reservation)
    assert (released.status, released.release_reason) == ("released", "item_removed")
    assert (reserved("TEA"), reserved("CUP")) == (0, 3)
    after = shopper.state().json()
    assert after["reservation_ids"] == [
        rid for rid in state["reservation_ids"] if rid != tea_reservation
    ]
    assert tea["product_id"] not in after["reservation_map"]
    assert after["reservation_expires_at"] == state["reservation_expires_at"]


def test_removing_the_last_line_during_checkout_ends_the_checkout(in_checkout):
    shopper, state = in_checkout
    for item in state["cart"]["items"]:
        response = shopper.remove(item["id"])
        assert response.status_code == 200

    body = response.json()
    assert (body["status"], body["items"], body["expires_at"]) == ("active", [], None)
    assert set(Reservation.objects.values_list("release_reason", flat=True)) == {"item_removed"}
    assert (reserved("TEA"), reserved("CUP")) == (0, 0)
    assert shopper.state().status_code == 409


def test_removing_a_line_costs_the_same_number_of_queries_for_1_or_10_lines(
    django_assert_num_queries,
):
    one, ten = shoppers_with_1_and_10_lines()
    one.start()
    ten.start()
    # Both keep their checkout: the 1-line cart gets a second line before starting.
    extra = stocked().product.sku
    one.cancel()
    one.add(extra, 1)
    one_items = one.start().json()["cart"]["items"]
    ten_items = ten.state().json()["cart"]["items"]

    small, large = assert_constant_queries(
        django_assert_num_queries,
        lambda: one.remove(one_items[0]["id"]),
        lambda: ten.remove(ten_items[0]["id"]),
        at_most=12,  # includes the in-flight payment check
    )

    assert small.json()["status"] == large.json()["status"] == "checkout"


def test_cancel_costs_the_same_number_of_queries_for_1_or_10_lines(django_assert_num_queries):
    one, ten = shoppers_with_1_and_10_lines()
    one.start()
    ten.start()

    small, large = assert_constant_queries(
        django_assert_num_queries, one.cancel, ten.cancel, at_most=9
    )

    assert small.json()["status"] == large.json()["status"] == "active"


def test_abandon_checkout_expires_lapsed_and_releases_live_reservations(time_machine):
    time_machine.move_to(NOW, tick=False)
    stocked(sku="OLD", on_hand=5)
    stocked(sku="NEW", on_hand=5)
    shopper = Shopper()
    shopper.cart_with(("OLD", 1), ("NEW", 2))
    state = shopper.start().json()
    # One reservation has lapsed, the other is still live (e.g. re-reserved later).
    old_id = state["reservation_map"][
        next(i["product_id"] for i in state["cart"]["items"] if i["sku"] == "OLD")
    ]
    Reservation.objects.filter(id=old_id).update(expires_at=NOW - timedelta(seconds=1))

    assert abandon_checkout(cart_id=shopper.cart_id, reason="stale", actor="sweeper") is True

    cart = Cart.objects.get(id=shopper.cart_id)
    assert (cart.status, cart.expires_at, cart.abandoned_at) == ("abandoned", None, NOW)
    by_sku = {r.product.sku: r for r in Reservation.objects.select_related("product")}
    assert by_sku["OLD"].status == ReservationStatus.EXPIRED
    assert (by_sku["NEW"].status, by_sku["NEW"].release_reason) == (
        "released",
        "checkout_abandoned",
    )
    assert (reserved("OLD"), reserved("NEW")) == (0, 0)


def test_abandon_checkout_leaves_a_cart_that_is_no_longer_in_checkout_alone(in_checkout):
    shopper, _ = in_checkout
    assert abandon_checkout(cart_id=shopper.cart_id, reason="expired", actor="sweeper") is True

    assert abandon_checkout(cart_id=shopper.cart_id, reason="expired", actor="sweeper") is False
    Cart.objects.filter(id=shopper.cart_id).update(status=CartStatus.COMPLETED)
    assert abandon_checkout(cart_id=shopper.cart_id, reason="expired", actor="sweeper") is False
    assert Cart.objects.get(id=shopper.cart_id).status == "completed"


def test_an_abandoned_checkout_answers_409_and_restarts_with_new_reservations(in_checkout):
    shopper, state = in_checkout
    abandon_checkout(cart_id=shopper.cart_id, reason="expired", actor="sweeper")

    assert shopper.state().status_code == 409
    restarted = shopper.start()

    assert restarted.status_code == 201
    assert not set(restarted.json()["reservation_ids"]) & set(state["reservation_ids"])
    assert (reserved("TEA"), reserved("CUP")) == (2, 3)


def _payment_in_flight(cart_id: str) -> None:
    from decimal import Decimal

    from payments.models import Payment, PaymentStatus

    Payment.objects.create(
        cart_id=cart_id,
        gateway="dummy",
        method="card",
        amount=Decimal("10.00"),
        currency="USD",
        status=PaymentStatus.AUTHORIZED,
    )


def test_cancel_is_refused_while_a_payment_is_in_flight(in_checkout):
    shopper, state = in_checkout
    _payment_in_flight(shopper.cart_id)

    response = shopper.cancel()

    assert response.status_code == 409
    error = assert_error(response)
    assert (error["code"], error["details"]) == ("INVALID_CART_STATUS", {"status": "checkout"})
    assert (
        Reservation.objects.filter(
            id__in=state["reservation_ids"], status=ReservationStatus.PENDING
        ).count()
        == 2
    )


def test_removing_a_line_is_refused_while_a_payment_is_in_flight(in_checkout):
    shopper, state = in_checkout
    _payment_in_flight(shopper.cart_id)
    item_id = state["cart"]["items"][0]["id"]

    response = shopper.remove(item_id)

    assert response.status_code == 409
    assert assert_error(response)["code"] == "INVALID_CART_STATUS"
    assert len(shopper.cart().json()["items"]) == 2
    assert (reserved("TEA"), reserved("CUP")) == (2, 3)
