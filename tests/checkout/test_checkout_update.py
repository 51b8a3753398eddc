"""Updating the checkout (SPEC §7.2): shopper data is saved on the cart, and activity
extends the reservations when they are about to lapse, a limited number of times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from carts.models import Cart
from inventory import services as inventory
from inventory.models import (
    ReleaseReason,
    Reservation,
    ReservationEvent,
    ReservationStatus,
    StockLevel,
)
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


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@pytest.fixture
def frozen(time_machine, settings):
    settings.CHECKOUT_RESERVATION_TTL_SECONDS = 300
    settings.CHECKOUT_EXTENSION_TTL_SECONDS = 300
    settings.CHECKOUT_EXTENSION_THRESHOLD_SECONDS = 120
    settings.CHECKOUT_MAX_EXTENSIONS = 3
    time_machine.move_to(NOW, tick=False)
    return time_machine


@pytest.fixture
def in_checkout(frozen) -> Shopper:
    stocked(sku="TEA", on_hand=20)
    stocked(sku="CUP", on_hand=20)
    shopper = Shopper()
    shopper.cart_with(("TEA", 2), ("CUP", 1))
    assert shopper.start().status_code == 201
    return shopper


def test_update_saves_every_checkout_field_on_the_cart(in_checkout):
    billing = {**ADDRESS, "name": "Accounts", "line2": "Floor 2", "country": "ie"}

    response = in_checkout.update(
        {
            "shipping_address": ADDRESS,
            "billing_address": billing,
            "payment_method": "card",
            "shipping_method_id": "express",
            "current_step": 3,
        }
    )

    assert response.status_code == 200
    state = response.json()
    assert state["shipping_address"] == {**ADDRESS, "line2": ""}
    assert state["billing_address"] == {**billing, "country": "IE"}
    assert (state["payment_method"], state["shipping_method_id"], state["current_step"]) == (
        "card",
        "express",
        3,
    )
    cart = Cart.objects.get(id=in_checkout.cart_id)
    assert cart.shipping_address == {**ADDRESS, "line2": ""}
    assert (cart.payment_method, cart.shipping_method_id, cart.current_step) == (
        "card",
        "express",
        3,
    )


def test_update_changes_only_the_fields_given(in_checkout):
    in_checkout.update({"shipping_address": ADDRESS, "payment_method": "card"})

    state = in_checkout.update({"current_step": 2}).json()

    assert state["shipping_address"]["city"] == "London"
    assert state["payment_method"] == "card"
    assert state["current_step"] == 2


def test_an_address_can_be_cleared_with_null(in_checkout):
    in_checkout.update({"billing_address": ADDRESS})

    assert in_checkout.update({"billing_address": None}).json()["billing_address"] is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"shipping_address": {**ADDRESS, "country": "XX"}}, "shipping_address.country"),
        ({"shipping_address": {**ADDRESS, "country": "GBR"}}, "shipping_address.country"),
        ({"billing_address": {**ADDRESS, "country": "Germany"}}, "billing_address.country"),
        (
            {"shipping_address": {k: v for k, v in ADDRESS.items() if k != "city"}},
            "shipping_address.city",
        ),
        ({"shipping_address": {**ADDRESS, "line1": ""}}, "shipping_address.line1"),
        ({"shipping_address": "10 Downing St"}, "shipping_address.non_field_errors"),
        ({"payment_method": ""}, "payment_method"),
        ({"payment_method": "x" * 65}, "payment_method"),
        ({"shipping_method_id": "y" * 65}, "shipping_method_id"),
        ({"current_step": 0}, "current_step"),
        ({"current_step": 11}, "current_step"),
    ],
)
def test_update_refuses_bad_data_and_saves_nothing(in_checkout, body, field):
    before = Cart.objects.get(id=in_checkout.cart_id).updated_at

    response = in_checkout.update(body)

    assert response.status_code == 400
    error = assert_error(response)
    assert error["code"] == "VALIDATION_ERROR"
    assert field in error["details"]["fields"], error
    assert Cart.objects.get(id=in_checkout.cart_id).updated_at == before


def test_any_payment_method_string_is_accepted(in_checkout):
    for method in ("card", "test_decline", "test_capture_fail", "test_timeout", "p" * 64):
        assert in_checkout.update({"payment_method": method}).json()["payment_method"] == method


def test_activity_with_time_to_spare_does_not_extend(in_checkout, frozen):
    frozen.shift(timedelta(seconds=179))  # 121 s left, threshold 120

    state = in_checkout.update({"current_step": 2}).json()

    assert state["extensions_used"] == 0
    assert state["reservation_expires_at"] == iso(NOW + timedelta(seconds=300))
    assert not ReservationEvent.objects.filter(kind="extended").exists()


def test_activity_near_expiry_extends_every_reservation(in_checkout, frozen):
    frozen.shift(timedelta(seconds=200))  # 100 s left
    now = NOW + timedelta(seconds=200)

    response = in_checkout.update({"current_step": 2})

    assert response.status_code == 200
    state = response.json()
    expires = now + timedelta(seconds=300)
    assert (state["extensions_used"], state["extensions_left"]) == (1, 2)
    assert state["reservation_expires_at"] == iso(expires)
    assert state["cart"]["expires_at"] == iso(expires)
    assert state["current_step"] == 2
    reservations = Reservation.objects.all()
    assert {r.expires_at for r in reservations} == {expires}
    assert {r.extension_count for r in reservations} == {1}
    assert ReservationEvent.objects.filter(kind="extended").count() == 2
    assert Cart.objects.get(id=in_checkout.cart_id).expires_at == expires


def test_an_empty_update_is_activity_that_keeps_the_checkout_alive(in_checkout, frozen):
    frozen.shift(timedelta(seconds=250))

    state = in_checkout.update({}).json()

    assert state["extensions_used"] == 1


def test_after_the_last_extension_updates_still_save_but_do_not_extend(in_checkout, frozen):
    for step in (2, 3, 4):
        frozen.shift(timedelta(seconds=200))
        assert in_checkout.update({"current_step": step}).json()["extensions_used"] == step - 1
    last_expiry = NOW + timedelta(seconds=600 + 300)
    frozen.shift(timedelta(seconds=200))  # 100 s left, no extension left

    response = in_checkout.update({"current_step": 5, "payment_method": "card"})

    assert response.status_code == 200
    state = response.json()
    assert (state["extensions_used"], state["extensions_left"]) == (3, 0)
    assert state["reservation_expires_at"] == iso(last_expiry)
    assert (state["current_step"], state["payment_method"]) == (5, "card")
    assert {r.extension_count for r in Reservation.objects.all()} == {3}

    frozen.shift(timedelta(seconds=100))
    expired = in_checkout.update({"current_step": 6})
    assert expired.status_code == 410
    assert assert_error(expired)["code"] == "CHECKOUT_EXPIRED"


def test_updating_an_expired_checkout_cleans_it_up_and_answers_410(in_checkout, frozen):
    frozen.shift(timedelta(seconds=300))

    response = in_checkout.update({"current_step": 4, "payment_method": "card"})

    assert response.status_code == 410
    assert assert_error(response) == {
        "code": "CHECKOUT_EXPIRED",
        "message": "The checkout expired; the cart is now abandoned",
        "details": {},
    }
    cart = Cart.objects.get(id=in_checkout.cart_id)
    assert (cart.status, cart.expires_at, cart.current_step, cart.payment_method) == (
        "abandoned",
        None,
        1,
        "",
    )
    assert set(Reservation.objects.values_list("status", flat=True)) == {"expired"}
    assert set(StockLevel.objects.values_list("reserved", flat=True)) == {0}


def test_updating_a_cart_that_is_not_in_checkout_is_refused():
    stocked(sku="IDLE", on_hand=5)
    shopper = Shopper()
    shopper.cart_with(("IDLE", 1))

    response = shopper.update({"current_step": 2})

    assert response.status_code == 409
    error = assert_error(response)
    assert (error["code"], error["details"]) == ("INVALID_CART_STATUS", {"status": "active"})


def test_extension_re_reserves_a_line_whose_reservation_was_released(in_checkout, frozen):
    tea = Reservation.objects.get(product__sku="TEA")
    inventory.release(reservation_ids=[tea.id], reason=ReleaseReason.STAFF)
    frozen.shift(timedelta(seconds=200))

    state = in_checkout.update({"current_step": 2}).json()

    assert state["extensions_used"] == 1
    pending = Reservation.objects.filter(status=ReservationStatus.PENDING)
    assert sorted(pending.values_list("product__sku", "quantity")) == [("CUP", 1), ("TEA", 2)]
    assert tea.id not in state["reservation_ids"]
    assert len(state["reservation_ids"]) == 2
    assert StockLevel.objects.get(product__sku="TEA").reserved == 2


def test_extension_fails_with_insufficient_stock_when_a_lost_line_cannot_be_held(
    in_checkout, frozen
):
    tea = Reservation.objects.get(product__sku="TEA")
    inventory.release(reservation_ids=[tea.id], reason=ReleaseReason.STAFF)
    row = StockLevel.objects.get(product__sku="TEA")
    inventory.set_stock(product=row.product, warehouse=row.warehouse, on_hand=1)
    frozen.shift(timedelta(seconds=200))

    response = in_checkout.update({"current_step": 2})

    assert response.status_code == 400
    error = assert_error(response)
    assert error["code"] == "INSUFFICIENT_STOCK"
    assert [(i["sku"], i["available"], i["requested"]) for i in error["details"]["items"]] == [
        ("TEA", 1, 2)
    ]
    cart = Cart.objects.get(id=in_checkout.cart_id)
    assert (cart.status, cart.current_step, cart.extensions_used) == ("checkout", 1, 0)


def test_without_pre_reservation_updates_save_and_nothing_expires(settings, frozen):
    settings.ENABLE_PRE_RESERVATION = False
    stocked(sku="LATER", on_hand=5)
    shopper = Shopper()
    shopper.cart_with(("LATER", 1))
    shopper.start()
    frozen.shift(timedelta(hours=2))

    state = shopper.update({"payment_method": "card"}).json()

    assert state["payment_method"] == "card"
    assert (state["extensions_used"], state["reservation_expires_at"]) == (0, None)
    assert not Reservation.objects.exists()


def test_an_extending_update_costs_the_same_number_of_queries_for_1_or_10_lines(
    frozen, django_assert_num_queries
):
    one, ten = shoppers_with_1_and_10_lines()
    one.start()
    ten.start()
    frozen.shift(timedelta(seconds=200))
    body = {"shipping_address": ADDRESS, "current_step": 2}

    small, large = assert_constant_queries(
        django_assert_num_queries, lambda: one.update(body), lambda: ten.update(body), at_most=11
    )

    assert small.json()["extensions_used"] == large.json()["extensions_used"] == 1


def test_a_plain_update_costs_the_same_number_of_queries_for_1_or_10_lines(
    frozen, django_assert_num_queries
):
    one, ten = shoppers_with_1_and_10_lines()
    one.start()
    ten.start()
    body = {"shipping_address": ADDRESS, "current_step": 2}

    small, large = assert_constant_queries(
        django_assert_num_queries, lambda: one.update(body), lambda: ten.update(body), at_most=7
    )

    assert small.json()["extensions_used"] == large.json()["extensions_used"] == 0
