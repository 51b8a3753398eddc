"""Reading the checkout (SPEC §7.3): the saved state to resume from; an expired checkout
is cleaned up on read and answers 410."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from rest_framework.test import APIClient

from carts.models import Cart
from inventory.models import Reservation, ReservationEvent, StockLevel
from tests.support import (
    ADDRESS,
    Shopper,
    assert_constant_queries,
    assert_error,
    ensure_default_warehouse,
    shoppers_with_1_and_10_lines,
    stocked,
)

pytestmark = pytest.mark.django_db

NOW = datetime(2031, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def frozen(time_machine, settings):
    settings.CHECKOUT_RESERVATION_TTL_SECONDS = 300
    time_machine.move_to(NOW, tick=False)
    return time_machine


def test_a_returning_shopper_resumes_from_the_saved_state(frozen):
    stocked(sku="TEA", on_hand=10)
    shopper = Shopper()
    shopper.cart_with(("TEA", 2))
    started = shopper.start().json()
    shopper.update(
        {
            "shipping_address": ADDRESS,
            "payment_method": "card",
            "shipping_method_id": "standard",
            "current_step": 3,
        }
    )
    frozen.shift(timedelta(seconds=60))
    # Later, from another device, with nothing but the cart id and token.
    returning = Shopper(APIClient())
    returning.cart_id, returning.token = shopper.cart_id, shopper.token

    response = returning.state()

    assert response.status_code == 200
    state = response.json()
    assert state["status"] == "checkout"
    assert state["current_step"] == 3
    assert state["shipping_address"] == {**ADDRESS, "line2": ""}
    assert (state["payment_method"], state["shipping_method_id"]) == ("card", "standard")
    assert state["reservation_ids"] == started["reservation_ids"]
    assert state["reservation_expires_at"] == started["reservation_expires_at"]
    assert state["checkout_started_at"] == started["checkout_started_at"]


def test_reading_does_not_extend_the_reservations(frozen):
    stocked(sku="READ", on_hand=10)
    shopper = Shopper()
    shopper.cart_with(("READ", 1))
    started = shopper.start().json()
    frozen.shift(timedelta(seconds=250))

    state = shopper.state().json()

    assert state["reservation_expires_at"] == started["reservation_expires_at"]
    assert state["extensions_used"] == 0


def test_reading_an_expired_checkout_cleans_it_up_and_answers_410(frozen):
    stocked(sku="GONE", on_hand=3)
    shopper = Shopper()
    shopper.cart_with(("GONE", 3))
    ids = shopper.start().json()["reservation_ids"]
    frozen.shift(timedelta(seconds=300))

    response = shopper.state()

    assert response.status_code == 410
    assert assert_error(response) == {
        "code": "CHECKOUT_EXPIRED",
        "message": "The checkout expired; the cart is now abandoned",
        "details": {},
    }
    cart = Cart.objects.get(id=shopper.cart_id)
    assert (cart.status, cart.expires_at) == ("abandoned", None)
    assert cart.abandoned_at == NOW + timedelta(seconds=300)
    assert list(Reservation.objects.filter(id__in=ids).values_list("status", flat=True)) == [
        "expired"
    ]
    assert ReservationEvent.objects.filter(reservation_id=ids[0], kind="expired").exists()
    assert StockLevel.objects.get().reserved == 0


def test_after_the_cleanup_the_checkout_is_no_longer_there_to_read(frozen):
    stocked(sku="AFTER", on_hand=3)
    shopper = Shopper()
    shopper.cart_with(("AFTER", 1))
    shopper.start()
    frozen.shift(timedelta(minutes=6))
    assert shopper.state().status_code == 410

    response = shopper.state()

    assert response.status_code == 409
    error = assert_error(response)
    assert (error["code"], error["details"]) == ("INVALID_CART_STATUS", {"status": "abandoned"})
    assert shopper.cart().json()["status"] == "abandoned"


def test_reading_the_checkout_of_a_cart_not_in_checkout_is_refused():
    stocked(sku="NOPE", on_hand=3)
    shopper = Shopper()
    shopper.cart_with(("NOPE", 1))

    response = shopper.state()

    assert response.status_code == 409
    error = assert_error(response)
    assert (error["code"], error["details"]) == ("INVALID_CART_STATUS", {"status": "active"})


def test_without_pre_reservation_a_checkout_never_expires_on_read(settings, frozen):
    settings.ENABLE_PRE_RESERVATION = False
    stocked(sku="NOLOCK", on_hand=3)
    shopper = Shopper()
    shopper.cart_with(("NOLOCK", 1))
    shopper.start()
    frozen.shift(timedelta(hours=1))

    response = shopper.state()

    assert response.status_code == 200
    assert response.json()["status"] == "checkout"


def test_the_state_warns_of_low_stock_while_reading(settings):
    settings.LOW_STOCK_THRESHOLD = 5
    stocked(sku="LOW", on_hand=4)
    shopper = Shopper()
    shopper.cart_with(("LOW", 1))
    shopper.start()

    assert shopper.state().json()["warnings"] == [
        {"code": "LOW_STOCK", "sku": "LOW", "available": 3},
        {"code": "HIGH_DEMAND", "sku": "LOW", "ttl_seconds": 120},
    ]


def test_reading_the_state_costs_the_same_number_of_queries_for_1_or_10_lines(
    django_assert_num_queries,
):
    one, ten = shoppers_with_1_and_10_lines()
    one.start()
    ten.start()

    # access check, then the state: cart, lines, reservations, stock rows, holds
    small, large = assert_constant_queries(
        django_assert_num_queries, one.state, ten.state, at_most=4
    )

    assert (len(small.json()["reservation_ids"]), len(large.json()["reservation_ids"])) == (1, 10)


@pytest.mark.django_db(transaction=True)
def test_the_cleanup_commits_even_when_requests_are_atomic(time_machine, monkeypatch):
    """The 410 is an error answer; a request-wide transaction (ATOMIC_REQUESTS) would
    roll back with it. The cleanup must survive: the views opt out of it and the service
    commits the cleanup on its own."""
    ensure_default_warehouse()
    monkeypatch.setitem(connection.settings_dict, "ATOMIC_REQUESTS", True)
    time_machine.move_to(NOW, tick=False)
    stocked(sku="COMMIT", on_hand=2)
    shopper = Shopper()
    shopper.cart_with(("COMMIT", 2))
    shopper.start()
    time_machine.shift(timedelta(seconds=301))

    assert shopper.state().status_code == 410
    assert shopper.update({"current_step": 2}).status_code == 409

    assert Cart.objects.get(id=shopper.cart_id).status == "abandoned"
    assert set(Reservation.objects.values_list("status", flat=True)) == {"expired"}
    assert StockLevel.objects.get().reserved == 0
