"""Scarcity holds (SPEC §15): a checkout holding a line of a product in high demand (a
non-empty waitlist, or less than ``LOW_STOCK_THRESHOLD`` left after the hold) gets the
shorter of ``SCARCITY_TTL_SECONDS`` and the TTL it would otherwise get, at start and at
every extension, and a ``HIGH_DEMAND`` warning; the payment TTL is unchanged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from drf_spectacular.generators import SchemaGenerator

from carts.models import Cart
from inventory import waitlist
from inventory.models import Reservation, ReservationStatus
from tests.support import ADDRESS, Shopper, confirm, stocked
from tests.support.factories import CartFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2031, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def frozen(time_machine, settings):
    settings.LOW_STOCK_THRESHOLD = 5
    settings.SCARCITY_TTL_SECONDS = 120
    settings.CHECKOUT_RESERVATION_TTL_SECONDS = 300
    settings.CHECKOUT_EXTENSION_TTL_SECONDS = 300
    settings.CHECKOUT_EXTENSION_THRESHOLD_SECONDS = 120
    settings.CHECKOUT_PAYMENT_TTL_SECONDS = 900
    time_machine.move_to(NOW, tick=False)
    return time_machine


def at(seconds: float) -> str:
    """The API's rendering of NOW + ``seconds``."""
    return (NOW + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def expiries(cart_id: str) -> set[datetime]:
    return set(
        Reservation.objects.filter(cart_id=cart_id, status=ReservationStatus.PENDING).values_list(
            "expires_at", flat=True
        )
    )


def high_demand(state: dict) -> list[dict]:
    return [w for w in state["warnings"] if w["code"] == "HIGH_DEMAND"]


def test_a_checkout_holding_a_scarce_line_gets_the_scarcity_ttl_and_a_warning(frozen):
    stocked(sku="SCARCE", on_hand=6)  # 4 left after the hold: below the threshold of 5
    shopper = Shopper()
    shopper.cart_with(("SCARCE", 2))

    response = shopper.start()

    assert response.status_code == 201, response.content
    state = response.json()
    assert state["reservation_expires_at"] == at(120)
    assert state["cart"]["expires_at"] == at(120)
    assert expiries(shopper.cart_id) == {NOW + timedelta(seconds=120)}
    assert state["warnings"] == [
        {"code": "LOW_STOCK", "sku": "SCARCE", "available": 4},
        {"code": "HIGH_DEMAND", "sku": "SCARCE", "ttl_seconds": 120},
    ]
    assert shopper.state().json()["warnings"] == state["warnings"]


def test_a_plentiful_checkout_gets_the_start_ttl_and_no_warning(frozen):
    stocked(sku="PLENTY", on_hand=100)
    shopper = Shopper()
    shopper.cart_with(("PLENTY", 2))

    state = shopper.start().json()

    assert state["reservation_expires_at"] == at(300)
    assert Cart.objects.get(id=shopper.cart_id).expires_at == NOW + timedelta(seconds=300)
    assert state["warnings"] == []


def test_one_scarce_line_shortens_the_whole_checkout_and_only_it_is_warned_of(frozen):
    stocked(sku="RARE", on_hand=3)
    stocked(sku="COMMON", on_hand=100)
    shopper = Shopper()
    shopper.cart_with(("COMMON", 1), ("RARE", 1))

    state = shopper.start().json()

    assert expiries(shopper.cart_id) == {NOW + timedelta(seconds=120)}
    assert high_demand(state) == [{"code": "HIGH_DEMAND", "sku": "RARE", "ttl_seconds": 120}]


def test_an_extension_of_a_scarce_checkout_is_shorter(frozen):
    stocked(sku="HOT", on_hand=6)
    shopper = Shopper()
    shopper.cart_with(("HOT", 2))
    shopper.start()
    frozen.shift(timedelta(seconds=60))  # 60 s left: below the extension threshold

    response = shopper.update({"current_step": 2})

    state = response.json()
    assert state["extensions_used"] == 1
    assert state["reservation_expires_at"] == at(60 + 120)
    assert Cart.objects.get(id=shopper.cart_id).expires_at == NOW + timedelta(seconds=180)
    assert high_demand(state) == [{"code": "HIGH_DEMAND", "sku": "HOT", "ttl_seconds": 120}]


def test_a_waitlist_formed_after_the_start_makes_the_next_extension_short(frozen, settings):
    settings.LOW_STOCK_THRESHOLD = 1  # 2 left after the hold: not scarce at the start
    row = stocked(sku="QUEUED", on_hand=10)
    shopper = Shopper()
    shopper.cart_with(("QUEUED", 8))
    started = shopper.start().json()
    assert (started["reservation_expires_at"], started["warnings"]) == (at(300), [])
    waitlist.join(
        cart_id=CartFactory().id, product=row.product, warehouse=None, quantity=5, actor="other"
    )
    frozen.shift(timedelta(seconds=200))

    state = shopper.update({"current_step": 2}).json()

    assert state["reservation_expires_at"] == at(200 + 120)
    # The two units left are withheld for the waiting entry: none is left for others.
    assert state["warnings"] == [
        {"code": "LOW_STOCK", "sku": "QUEUED", "available": 0},
        {"code": "HIGH_DEMAND", "sku": "QUEUED", "ttl_seconds": 120},
    ]


def test_a_scarcity_hold_is_never_longer_than_an_ordinary_one(frozen, settings):
    settings.SCARCITY_TTL_SECONDS = 600
    stocked(sku="LONG", on_hand=3)
    shopper = Shopper()
    shopper.cart_with(("LONG", 1))

    state = shopper.start().json()

    assert state["reservation_expires_at"] == at(300)
    assert high_demand(state) == [{"code": "HIGH_DEMAND", "sku": "LONG", "ttl_seconds": 300}]


def test_a_shorter_extension_ttl_wins_over_the_scarcity_ttl(frozen, settings):
    settings.CHECKOUT_EXTENSION_TTL_SECONDS = 90
    stocked(sku="BRIEF", on_hand=3)
    shopper = Shopper()
    shopper.cart_with(("BRIEF", 1))
    shopper.start()
    frozen.shift(timedelta(seconds=60))

    state = shopper.update({"current_step": 2}).json()

    assert state["reservation_expires_at"] == at(60 + 90)
    assert high_demand(state) == [{"code": "HIGH_DEMAND", "sku": "BRIEF", "ttl_seconds": 90}]


def test_the_payment_ttl_of_a_scarce_checkout_is_unchanged(frozen):
    stocked(sku="PAY-SCARCE", on_hand=2)
    shopper = Shopper()
    shopper.cart_with(("PAY-SCARCE", 2))
    shopper.start()
    shopper.update({"shipping_address": ADDRESS, "payment_method": "card"})
    cart = Cart.objects.get(id=shopper.cart_id)

    response = confirm(shopper.client, cart, token=shopper.token)

    assert response.status_code == 201, response.content
    [held] = Reservation.objects.filter(cart_id=cart.id)
    assert held.status == ReservationStatus.CONFIRMED
    assert held.expires_at == NOW + timedelta(seconds=900)


def test_a_checkout_with_pre_reservation_off_holds_nothing_and_warns_of_no_hold(frozen, settings):
    settings.ENABLE_PRE_RESERVATION = False
    stocked(sku="NO-HOLD", on_hand=3)
    shopper = Shopper()
    shopper.cart_with(("NO-HOLD", 1))

    state = shopper.call("post", f"carts/{shopper.cart_id}/checkout/", {}).json()

    assert state["reservation_expires_at"] is None
    assert high_demand(state) == []
    assert [w["code"] for w in state["warnings"]] == ["LOW_STOCK"]


def test_the_served_schema_describes_both_warnings():
    schemas = SchemaGenerator().get_schema(request=None, public=True)["components"]["schemas"]
    warning = schemas["CheckoutWarning"]
    [code] = warning["properties"]["code"]["allOf"]
    assert schemas[code["$ref"].rsplit("/", 1)[-1]]["enum"] == ["LOW_STOCK", "HIGH_DEMAND"]
    assert set(warning["properties"]) == {"code", "sku", "available", "ttl_seconds"}
    assert sorted(warning["required"]) == ["code", "sku"]
