"""Starting checkout (SPEC §7.1): validate, reserve every line or none, move the cart to
``checkout`` with the reservations' expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from carts.models import Cart, CartStatus
from inventory import services as inventory
from inventory.models import Reservation, ReservationStatus, StockLevel
from inventory.services import ReservationLine
from tests.support import (
    Shopper,
    assert_constant_queries,
    assert_error,
    shoppers_with_1_and_10_lines,
    stocked,
)
from tests.support.factories import ProductFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2031, 3, 1, 12, 0, tzinfo=UTC)
STATE_FIELDS = {
    "cart_id",
    "status",
    "current_step",
    "email",
    "shipping_address",
    "billing_address",
    "payment_method",
    "shipping_method_id",
    "reservation_ids",
    "reservation_map",
    "allocations",
    "reservation_expires_at",
    "checkout_started_at",
    "extensions_used",
    "extensions_left",
    "warnings",
    "cart",
}


@pytest.fixture
def frozen(time_machine):
    time_machine.move_to(NOW, tick=False)
    return time_machine


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def test_start_reserves_every_line_and_moves_the_cart_to_checkout(frozen, settings):
    settings.CHECKOUT_RESERVATION_TTL_SECONDS = 300
    tea = stocked(sku="TEA", on_hand=20)
    cup = stocked(sku="CUP", on_hand=20)
    shopper = Shopper()
    shopper.cart_with(("TEA", 2), ("CUP", 3))

    response = shopper.start()

    assert response.status_code == 201
    state = response.json()
    assert set(state) == STATE_FIELDS
    reservations = list(Reservation.objects.order_by("id"))
    assert [(r.product_id, r.quantity, r.status) for r in reservations] == [
        (tea.product_id, 2, ReservationStatus.PENDING),
        (cup.product_id, 3, ReservationStatus.PENDING),
    ]
    assert all(str(r.cart_id) == shopper.cart_id for r in reservations)
    assert state["reservation_ids"] == [r.id for r in reservations]
    assert state["reservation_map"] == {str(r.product_id): r.id for r in reservations}
    expires = NOW + timedelta(seconds=300)
    assert all(r.expires_at == expires for r in reservations)
    assert state["reservation_expires_at"] == iso(expires)
    assert state["cart"]["expires_at"] == iso(expires)
    assert state["checkout_started_at"] == iso(NOW)
    assert state["status"] == "checkout"
    assert state["cart"]["status"] == "checkout"
    assert state["cart_id"] == shopper.cart_id
    assert (state["extensions_used"], state["extensions_left"]) == (0, 3)
    assert state["current_step"] == 1
    assert state["warnings"] == []
    cart = Cart.objects.get(id=shopper.cart_id)
    assert (cart.status, cart.expires_at, cart.checkout_started_at) == (
        CartStatus.CHECKOUT,
        expires,
        NOW,
    )
    assert list(StockLevel.objects.order_by("id").values_list("on_hand", "reserved")) == [
        (20, 2),
        (20, 3),
    ]


def test_second_start_returns_the_same_state_and_reserves_nothing_more(frozen):
    stocked(sku="ONCE", on_hand=10)
    shopper = Shopper()
    shopper.cart_with(("ONCE", 4))
    first = shopper.start()
    frozen.shift(timedelta(seconds=30))

    second = shopper.start()

    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json() == first.json()
    assert Reservation.objects.count() == 1
    assert StockLevel.objects.get().reserved == 4


def test_stock_unavailable_lists_every_short_line_and_leaves_the_cart_active():
    ok = stocked(sku="OK", on_hand=10)
    short = stocked(sku="SHORT", on_hand=1)
    gone = stocked(sku="GONE", on_hand=0)
    shopper = Shopper()
    shopper.cart_with(("OK", 1), ("SHORT", 2), ("GONE", 1))

    response = shopper.start()

    assert response.status_code == 400
    error = assert_error(response)
    assert error["code"] == "INSUFFICIENT_STOCK"
    assert sorted(error["details"]["items"], key=lambda i: i["sku"]) == [
        {
            "product_id": str(gone.product_id),
            "sku": "GONE",
            "warehouse": None,  # an unpinned line (API.md v1.1)
            "available": 0,
            "requested": 1,
        },
        {
            "product_id": str(short.product_id),
            "sku": "SHORT",
            "warehouse": None,  # an unpinned line (API.md v1.1)
            "available": 1,
            "requested": 2,
        },
    ]
    assert str(ok.product_id) not in str(error["details"])
    cart = Cart.objects.get(id=shopper.cart_id)
    assert (cart.status, cart.expires_at, cart.checkout_started_at) == ("active", None, None)
    assert not Reservation.objects.exists()
    assert set(StockLevel.objects.values_list("reserved", flat=True)) == {0}


def test_partial_stock_reserves_nothing_until_the_short_line_is_removed():
    stocked(sku="HAVE", on_hand=5)
    stocked(sku="LACK", on_hand=0)
    shopper = Shopper()
    body = shopper.cart_with(("HAVE", 2), ("LACK", 1))

    assert shopper.start().status_code == 400
    assert not Reservation.objects.exists()

    lack_item = next(i["id"] for i in body["items"] if i["sku"] == "LACK")
    assert shopper.remove(lack_item).status_code == 200
    response = shopper.start()

    assert response.status_code == 201
    assert [i["sku"] for i in response.json()["cart"]["items"]] == ["HAVE"]
    assert StockLevel.objects.get(product__sku="HAVE").reserved == 2


def test_a_product_with_no_stock_row_is_reported_short():
    ProductFactory(sku="NEVER-STOCKED")
    shopper = Shopper()
    shopper.cart_with(("NEVER-STOCKED", 1))

    response = shopper.start()

    assert response.status_code == 400
    [item] = assert_error(response)["details"]["items"]
    assert (item["sku"], item["available"], item["requested"]) == ("NEVER-STOCKED", 0, 1)


def test_an_empty_cart_cannot_start_checkout():
    shopper = Shopper()
    shopper.create_cart()

    response = shopper.start()

    assert response.status_code == 400
    assert assert_error(response) == {
        "code": "CART_EMPTY",
        "message": "The cart has no items",
        "details": {},
    }
    assert Cart.objects.get(id=shopper.cart_id).status == "active"


def test_a_completed_cart_cannot_start_checkout():
    stocked(sku="DONE", on_hand=5)
    shopper = Shopper()
    shopper.cart_with(("DONE", 1))
    Cart.objects.filter(id=shopper.cart_id).update(status=CartStatus.COMPLETED)

    response = shopper.start()

    assert response.status_code == 409
    error = assert_error(response)
    assert (error["code"], error["details"]) == ("INVALID_CART_STATUS", {"status": "completed"})
    assert not Reservation.objects.exists()


def test_low_stock_is_a_warning_in_the_answer_not_an_error(settings):
    settings.LOW_STOCK_THRESHOLD = 5
    stocked(sku="LOW", on_hand=6)
    stocked(sku="LOTS", on_hand=100)
    shopper = Shopper()
    shopper.cart_with(("LOW", 2), ("LOTS", 2))

    response = shopper.start()

    assert response.status_code == 201
    # Low stock also makes the line's product one in high demand (SPEC §15).
    assert response.json()["warnings"] == [
        {"code": "LOW_STOCK", "sku": "LOW", "available": 4},
        {"code": "HIGH_DEMAND", "sku": "LOW", "ttl_seconds": 120},
    ]


def test_the_last_units_are_reserved_with_a_warning_of_zero_left(settings):
    settings.LOW_STOCK_THRESHOLD = 5
    stocked(sku="LAST", on_hand=2)
    shopper = Shopper()
    shopper.cart_with(("LAST", 2))

    response = shopper.start()

    assert response.status_code == 201
    assert response.json()["warnings"] == [
        {"code": "LOW_STOCK", "sku": "LAST", "available": 0},
        {"code": "HIGH_DEMAND", "sku": "LAST", "ttl_seconds": 120},
    ]


def test_an_abandoned_cart_restarts_with_new_reservations(frozen):
    stocked(sku="BACK", on_hand=5)
    shopper = Shopper()
    shopper.cart_with(("BACK", 2))
    first_ids = shopper.start().json()["reservation_ids"]
    frozen.shift(timedelta(seconds=301))
    assert shopper.state().status_code == 410

    response = shopper.start()

    assert response.status_code == 201
    new_ids = response.json()["reservation_ids"]
    assert new_ids and not set(new_ids) & set(first_ids)
    assert Reservation.objects.get(id=first_ids[0]).status == ReservationStatus.EXPIRED
    assert StockLevel.objects.get().reserved == 2
    assert response.json()["checkout_started_at"] == iso(NOW + timedelta(seconds=301))


def test_starting_an_expired_checkout_cleans_it_up_and_starts_afresh(frozen):
    stocked(sku="AGAIN", on_hand=5)
    shopper = Shopper()
    shopper.cart_with(("AGAIN", 2))
    first_ids = shopper.start().json()["reservation_ids"]
    frozen.shift(timedelta(seconds=400))

    response = shopper.start()

    assert response.status_code == 201
    assert response.json()["reservation_ids"] != first_ids
    assert Reservation.objects.get(id=first_ids[0]).status == ReservationStatus.EXPIRED
    assert StockLevel.objects.get().reserved == 2


def test_an_expired_reservation_of_another_shopper_never_blocks_a_start(frozen):
    row = stocked(sku="ONE-LEFT", on_hand=1)
    stale = inventory.reserve(
        lines=[ReservationLine(row.product_id, row.warehouse_id, 1)], ttl_seconds=60
    )
    frozen.shift(timedelta(seconds=61))
    shopper = Shopper()
    shopper.cart_with(("ONE-LEFT", 1))

    response = shopper.start()

    assert response.status_code == 201
    assert Reservation.objects.get(id=stale[0].id).status == ReservationStatus.EXPIRED
    assert StockLevel.objects.get().reserved == 1


def test_without_pre_reservation_start_validates_stock_but_reserves_nothing(settings):
    settings.ENABLE_PRE_RESERVATION = False
    stocked(sku="LATER", on_hand=5)
    shopper = Shopper()
    shopper.cart_with(("LATER", 2))

    response = shopper.start()

    assert response.status_code == 201
    state = response.json()
    assert state["status"] == "checkout"
    assert (state["reservation_ids"], state["reservation_map"]) == ([], {})
    assert state["reservation_expires_at"] is None
    assert state["cart"]["expires_at"] is None
    assert state["checkout_started_at"] is not None
    assert not Reservation.objects.exists()
    assert StockLevel.objects.get().reserved == 0


def test_without_pre_reservation_a_short_line_still_refuses_the_start(settings):
    settings.ENABLE_PRE_RESERVATION = False
    row = stocked(sku="THIN", on_hand=1)
    shopper = Shopper()
    shopper.cart_with(("THIN", 3))

    response = shopper.start()

    assert response.status_code == 400
    assert assert_error(response)["details"]["items"] == [
        {
            "product_id": str(row.product_id),
            "sku": "THIN",
            "warehouse": None,  # an unpinned line (API.md v1.1)
            "available": 1,
            "requested": 3,
        }
    ]
    assert Cart.objects.get(id=shopper.cart_id).status == "active"


def test_start_costs_the_same_number_of_queries_for_1_or_10_lines(django_assert_num_queries):
    one, ten = shoppers_with_1_and_10_lines()

    small, large = assert_constant_queries(
        django_assert_num_queries, one.start, ten.start, at_most=12
    )

    assert (small.status_code, large.status_code) == (201, 201)
    assert len(large.json()["reservation_ids"]) == 10


def test_stock_validations_at_start_are_counted_by_outcome():
    from prometheus_client import REGISTRY

    def sample(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    stocked(sku="COUNTED", on_hand=1)
    ok_before = sample("stock_validations_total", outcome="ok")
    short_before = sample("stock_validations_total", outcome="insufficient")
    short = Shopper()
    short.cart_with(("COUNTED", 2))
    fine = Shopper()
    fine.cart_with(("COUNTED", 1))

    assert short.start().status_code == 400
    assert fine.start().status_code == 201

    assert sample("stock_validations_total", outcome="insufficient") == short_before + 1
    assert sample("stock_validations_total", outcome="ok") == ok_before + 1


def test_an_unsupported_method_answers_in_the_envelope():
    stocked(sku="PUT", on_hand=1)
    shopper = Shopper()
    shopper.cart_with(("PUT", 1))

    response = shopper.call("put", f"carts/{shopper.cart_id}/checkout/", {})

    assert response.status_code == 405
    assert assert_error(response)["code"] == "METHOD_NOT_ALLOWED"
