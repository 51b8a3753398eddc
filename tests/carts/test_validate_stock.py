"""``GET carts/{id}/validate-stock/``: what the cart could hold now, line by line."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from inventory import services as inventory
from inventory.services import ReservationLine
from tests.support import Shopper, assert_constant_queries, shoppers_with_1_and_10_lines, stocked

pytestmark = pytest.mark.django_db

LINE_FIELDS = {
    "item_id",
    "product_id",
    "sku",
    "warehouse",
    "requested",
    "available",
    "reserved",
    "status",
}


def lines_by_sku(response) -> dict[str, dict]:
    assert response.status_code == 200, response.content
    return {line["sku"]: line for line in response.json()["items"]}


def test_each_line_reports_requested_available_and_a_status(settings):
    settings.LOW_STOCK_THRESHOLD = 5
    plenty = stocked(sku="PLENTY", on_hand=50)
    stocked(sku="FEW", on_hand=3)
    stocked(sku="NONE", on_hand=0)
    stocked(sku="SHORT", on_hand=4)
    shopper = Shopper()
    cart = shopper.cart_with(("PLENTY", 2), ("FEW", 1), ("NONE", 1), ("SHORT", 6))

    response = shopper.validate_stock()

    assert response.json()["ok"] is False
    lines = lines_by_sku(response)
    assert set(lines["PLENTY"]) == LINE_FIELDS
    assert lines["PLENTY"] == {
        "item_id": cart["items"][0]["id"],
        "product_id": str(plenty.product_id),
        "sku": "PLENTY",
        "warehouse": None,  # unpinned: counts every active warehouse
        "requested": 2,
        "available": 50,
        "reserved": 0,
        "status": "in_stock",
    }
    assert (lines["FEW"]["available"], lines["FEW"]["status"]) == (3, "low_stock")
    assert (lines["NONE"]["available"], lines["NONE"]["status"]) == (0, "out_of_stock")
    assert (lines["SHORT"]["available"], lines["SHORT"]["status"]) == (4, "insufficient")


def test_ok_when_every_line_can_be_held():
    stocked(sku="OK-1", on_hand=2)
    shopper = Shopper()
    shopper.cart_with(("OK-1", 2))

    response = shopper.validate_stock()

    assert response.json()["ok"] is True
    assert lines_by_sku(response)["OK-1"]["status"] == "low_stock"


def test_a_product_without_a_stock_row_is_out_of_stock():
    from tests.support.factories import ProductFactory

    ProductFactory(sku="GHOST")
    shopper = Shopper()
    shopper.cart_with(("GHOST", 1))

    line = lines_by_sku(shopper.validate_stock())["GHOST"]

    assert (line["available"], line["status"]) == (0, "out_of_stock")


def test_the_carts_own_reservations_count_as_available_to_it():
    stocked(sku="MINE", on_hand=4)
    shopper = Shopper()
    shopper.cart_with(("MINE", 3))
    assert shopper.start().status_code == 201

    response = shopper.validate_stock()

    line = lines_by_sku(response)["MINE"]
    assert response.json()["ok"] is True
    assert (line["requested"], line["available"], line["reserved"]) == (3, 4, 3)


def test_other_shoppers_reservations_are_not_available():
    row = stocked(sku="THEIRS", on_hand=4)
    inventory.reserve(lines=[ReservationLine(row.product_id, row.warehouse_id, 3)], ttl_seconds=300)
    shopper = Shopper()
    shopper.cart_with(("THEIRS", 2))

    line = lines_by_sku(shopper.validate_stock())["THEIRS"]

    assert (line["available"], line["reserved"], line["status"]) == (1, 0, "insufficient")


def test_a_lapsed_reservation_of_someone_else_does_not_count_against_the_cart(time_machine):
    time_machine.move_to(timezone.now(), tick=False)
    row = stocked(sku="LAPSED", on_hand=4)
    inventory.reserve(lines=[ReservationLine(row.product_id, row.warehouse_id, 3)], ttl_seconds=300)
    shopper = Shopper()
    shopper.cart_with(("LAPSED", 2))
    time_machine.shift(timedelta(seconds=301))

    line = lines_by_sku(shopper.validate_stock())["LAPSED"]

    assert (line["available"], line["status"]) == (4, "low_stock")


def test_an_empty_cart_is_ok():
    shopper = Shopper()
    shopper.create_cart()

    assert shopper.validate_stock().json() == {"ok": True, "items": []}


def test_validate_stock_costs_the_same_number_of_queries_for_1_or_10_lines(
    django_assert_num_queries,
):
    one, ten = shoppers_with_1_and_10_lines()

    # cart, its lines, stock rows with the reservations that count for this cart
    small, large = assert_constant_queries(
        django_assert_num_queries, one.validate_stock, ten.validate_stock, at_most=3
    )

    assert (len(small.json()["items"]), len(large.json()["items"])) == (1, 10)
