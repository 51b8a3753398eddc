"""Stock endpoints (staff): PUT inventory/stock/ and GET inventory/availability/."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from inventory import services
from inventory.models import StockLevel
from tests.support import assert_error, reserve
from tests.support.factories import (
    ProductFactory,
    StockLevelFactory,
    WarehouseFactory,
    default_warehouse,
)

pytestmark = pytest.mark.django_db

STOCK = "/api/v1/inventory/stock/"
AVAILABILITY = "/api/v1/inventory/availability/"


# --- PUT inventory/stock/ -----------------------------------------------------------


def test_setting_stock_creates_the_row_in_the_default_warehouse(staff_client):
    product = ProductFactory(sku="MUG-1")

    response = staff_client.put(STOCK, {"sku": "MUG-1", "on_hand": 12}, format="json")

    assert response.status_code == 200, response.content
    assert response.json() == {
        "sku": "MUG-1",
        "product_id": str(product.id),
        "warehouse": "default",
        "on_hand": 12,
        "reserved": 0,
        "available": 12,
        "status": "in_stock",
    }
    row = StockLevel.objects.get(product=product)
    assert (row.warehouse_id, row.on_hand, row.reserved) == (default_warehouse().id, 12, 0)


def test_setting_stock_in_a_named_warehouse_keeps_reservations(staff_client):
    east = WarehouseFactory(code="east")
    stock = StockLevelFactory(warehouse=east, on_hand=10)
    reserve(stock, 4)

    response = staff_client.put(
        STOCK, {"sku": stock.product.sku, "warehouse": "east", "on_hand": 5}, format="json"
    )

    assert response.status_code == 200
    body = response.json()
    assert (body["warehouse"], body["on_hand"], body["reserved"], body["available"]) == (
        "east",
        5,
        4,
        1,
    )
    assert body["status"] == "low_stock"
    stock.refresh_from_db()
    assert (stock.on_hand, stock.reserved) == (5, 4)


def test_stock_below_reserved_is_refused(staff_client):
    stock = StockLevelFactory(on_hand=10)
    reserve(stock, 6)

    response = staff_client.put(STOCK, {"sku": stock.product.sku, "on_hand": 5}, format="json")

    error = assert_error(response, 409, "STOCK_BELOW_RESERVED")
    assert error["details"]["reserved"] == 6
    stock.refresh_from_db()
    assert (stock.on_hand, stock.reserved) == (10, 6)


def test_lapsed_reservations_do_not_block_lowering_stock(staff_client):
    stock = StockLevelFactory(on_hand=10)
    reserve(stock, 6, ttl_seconds=60)

    with time_machine.travel(timezone.now() + timedelta(seconds=61)):
        response = staff_client.put(STOCK, {"sku": stock.product.sku, "on_hand": 2}, format="json")

    assert response.status_code == 200
    assert (response.json()["on_hand"], response.json()["reserved"]) == (2, 0)


def test_unknown_sku_is_product_not_found(staff_client):
    response = staff_client.put(STOCK, {"sku": "NOPE", "on_hand": 1}, format="json")
    error = assert_error(response, 404, "PRODUCT_NOT_FOUND")
    assert error["details"] == {"skus": ["NOPE"]}


def test_unknown_warehouse_is_not_found(staff_client):
    product = ProductFactory()

    response = staff_client.put(
        STOCK, {"sku": product.sku, "warehouse": "mars", "on_hand": 1}, format="json"
    )

    error = assert_error(response, 404, "NOT_FOUND")
    assert error["details"] == {"warehouses": ["mars"]}
    assert not StockLevel.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"sku": "X"}, "on_hand"),
        ({"sku": "X", "on_hand": -1}, "on_hand"),
        ({"sku": "X", "on_hand": 1.5}, "on_hand"),
        ({"sku": "X", "on_hand": "many"}, "on_hand"),
        ({"sku": "X", "on_hand": 10**12}, "on_hand"),
        ({"on_hand": 1}, "sku"),
    ],
)
def test_invalid_stock_bodies_are_validation_errors(staff_client, body, field):
    error = assert_error(staff_client.put(STOCK, body, format="json"), 400, "VALIDATION_ERROR")
    assert list(error["details"]["fields"]) == [field]


def test_setting_stock_is_staff_only(api_client, customer_client):
    product = ProductFactory()
    body = {"sku": product.sku, "on_hand": 5}

    assert_error(api_client.put(STOCK, body, format="json"), 401, "NOT_AUTHENTICATED")
    assert_error(customer_client.put(STOCK, body, format="json"), 403, "PERMISSION_DENIED")
    assert not StockLevel.objects.exists()


# --- GET inventory/availability/ ----------------------------------------------------


def test_availability_lists_each_sku_in_the_order_asked(staff_client, settings):
    settings.LOW_STOCK_THRESHOLD = 5
    a = StockLevelFactory(product__sku="A", on_hand=10)
    b = StockLevelFactory(product__sku="B", on_hand=6)
    reserve(b, 4)
    c = ProductFactory(sku="C")

    response = staff_client.get(AVAILABILITY, {"sku": ["C", "B", "A", "B"]})

    assert response.status_code == 200
    assert response.json() == {
        "items": [
            {
                "product_id": str(c.id),
                "sku": "C",
                "warehouse": "default",
                "on_hand": 0,
                "reserved": 0,
                "available": 0,
                "status": "out_of_stock",
            },
            {
                "product_id": str(b.product_id),
                "sku": "B",
                "warehouse": "default",
                "on_hand": 6,
                "reserved": 4,
                "available": 2,
                "status": "low_stock",
            },
            {
                "product_id": str(a.product_id),
                "sku": "A",
                "warehouse": "default",
                "on_hand": 10,
                "reserved": 0,
                "available": 10,
                "status": "in_stock",
            },
        ]
    }


def test_availability_without_warehouse_lists_every_warehouse_with_stock(staff_client):
    stock = StockLevelFactory(product__sku="A", on_hand=3)
    for code, on_hand in (("west", 7), ("east", 1)):
        services.set_stock(
            product=stock.product, warehouse=WarehouseFactory(code=code), on_hand=on_hand
        )

    items = staff_client.get(AVAILABILITY, {"sku": "A"}).json()["items"]

    assert [(i["warehouse"], i["on_hand"]) for i in items] == [
        ("default", 3),
        ("east", 1),
        ("west", 7),
    ]


def test_availability_in_one_warehouse(staff_client):
    stock = StockLevelFactory(product__sku="A", on_hand=3)
    east = WarehouseFactory(code="east")
    services.set_stock(product=stock.product, warehouse=east, on_hand=9)
    ProductFactory(sku="B")

    items = staff_client.get(AVAILABILITY, {"sku": ["A", "B"], "warehouse": "east"}).json()["items"]

    assert [(i["sku"], i["warehouse"], i["available"], i["status"]) for i in items] == [
        ("A", "east", 9, "in_stock"),
        ("B", "east", 0, "out_of_stock"),
    ]


def test_availability_without_sku_is_validation_error(staff_client):
    error = assert_error(staff_client.get(AVAILABILITY), 400, "VALIDATION_ERROR")
    assert list(error["details"]["fields"]) == ["sku"]
    error = assert_error(staff_client.get(AVAILABILITY, {"sku": ""}), 400, "VALIDATION_ERROR")
    assert list(error["details"]["fields"]) == ["sku"]


def test_availability_of_too_many_skus_is_validation_error(staff_client):
    response = staff_client.get(AVAILABILITY, {"sku": [f"S{i}" for i in range(201)]})
    assert_error(response, 400, "VALIDATION_ERROR")


def test_availability_of_unknown_skus_lists_them(staff_client):
    ProductFactory(sku="A")

    response = staff_client.get(AVAILABILITY, {"sku": ["A", "X", "Y"]})

    error = assert_error(response, 404, "PRODUCT_NOT_FOUND")
    assert error["details"] == {"skus": ["X", "Y"]}


def test_availability_in_unknown_warehouse_is_not_found(staff_client):
    ProductFactory(sku="A")
    response = staff_client.get(AVAILABILITY, {"sku": "A", "warehouse": "mars"})
    assert_error(response, 404, "NOT_FOUND")


def test_availability_is_staff_only(api_client, customer_client):
    ProductFactory(sku="A")
    assert_error(api_client.get(AVAILABILITY, {"sku": "A"}), 401, "NOT_AUTHENTICATED")
    assert_error(customer_client.get(AVAILABILITY, {"sku": "A"}), 403, "PERMISSION_DENIED")


def test_availability_query_count_does_not_grow_with_skus(staff_client, django_assert_num_queries):
    east = WarehouseFactory(code="east")
    few = [StockLevelFactory() for _ in range(2)]
    many = few + [StockLevelFactory() for _ in range(40)]
    for stock in many:
        services.set_stock(product=stock.product, warehouse=east, on_hand=1)
    ProductFactory(sku="NO-STOCK")

    # token+user, products, stock rows, default warehouse
    with django_assert_num_queries(4):
        staff_client.get(AVAILABILITY, {"sku": [s.product.sku for s in few] + ["NO-STOCK"]})
    with django_assert_num_queries(4):
        response = staff_client.get(
            AVAILABILITY, {"sku": [s.product.sku for s in many] + ["NO-STOCK"]}
        )
    assert len(response.json()["items"]) == 2 * 42 + 1
    # In one warehouse: token+user, products, warehouse, stock rows.
    with django_assert_num_queries(4):
        staff_client.get(AVAILABILITY, {"sku": [s.product.sku for s in many], "warehouse": "east"})
