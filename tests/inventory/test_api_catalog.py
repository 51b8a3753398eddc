"""Catalog endpoints: products (anyone reads, staff creates) and warehouses (staff)."""

from __future__ import annotations

import threading
import uuid
from decimal import Decimal

import pytest
from django.db import connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from inventory import services
from inventory.models import Product, Warehouse
from tests.support.envelope import assert_error
from tests.support.factories import (
    ProductFactory,
    StaffFactory,
    StockLevelFactory,
    WarehouseFactory,
    default_warehouse,
)

pytestmark = pytest.mark.django_db

PRODUCTS = "/api/v1/products/"
WAREHOUSES = "/api/v1/warehouses/"


# --- GET products/ ----------------------------------------------------------------


def test_product_list_is_paginated_and_shows_availability_to_anyone(api_client, settings):
    settings.LOW_STOCK_THRESHOLD = 5
    plenty = StockLevelFactory(product__sku="A-1", product__price=Decimal("12.5"), on_hand=10)
    low = StockLevelFactory(product__sku="B-1", on_hand=3)
    ProductFactory(sku="C-1")  # no stock row at all

    response = api_client.get(PRODUCTS)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 3
    assert body["next"] is None and body["previous"] is None
    assert [p["sku"] for p in body["results"]] == ["A-1", "B-1", "C-1"]
    assert body["results"][0] == {
        "id": str(plenty.product_id),
        "sku": "A-1",
        "name": plenty.product.name,
        "price": "12.50",
        "currency": "USD",
        "available": 10,
        "stock_status": "in_stock",
        "max_per_order": None,
        "max_per_customer": None,
    }
    assert body["results"][1]["id"] == str(low.product_id)
    assert (body["results"][1]["available"], body["results"][1]["stock_status"]) == (
        3,
        "low_stock",
    )
    assert (body["results"][2]["available"], body["results"][2]["stock_status"]) == (
        0,
        "out_of_stock",
    )


def test_product_available_sums_every_warehouse_minus_reservations(api_client):
    stock = StockLevelFactory(on_hand=4)
    east = WarehouseFactory(code="east")
    services.set_stock(product=stock.product, warehouse=east, on_hand=6)
    services.reserve(
        lines=[services.ReservationLine(stock.product_id, stock.warehouse_id, 3)],
        ttl_seconds=300,
    )

    [product] = api_client.get(PRODUCTS).json()["results"]

    assert product["available"] == 4 - 3 + 6


def test_product_list_filters_by_exact_sku(api_client):
    ProductFactory(sku="MUG-1")
    ProductFactory(sku="MUG-10")

    body = api_client.get(PRODUCTS, {"sku": "MUG-1"}).json()

    assert [p["sku"] for p in body["results"]] == ["MUG-1"]


def test_product_list_searches_sku_and_name_case_insensitively(api_client):
    ProductFactory(sku="TEA-1", name="Green tea")
    ProductFactory(sku="CUP-1", name="Teacup")
    ProductFactory(sku="MUG-1", name="Mug")

    body = api_client.get(PRODUCTS, {"search": "tea"}).json()

    assert [p["sku"] for p in body["results"]] == ["CUP-1", "TEA-1"]


def test_blank_product_filters_mean_no_filter(api_client):
    ProductFactory.create_batch(2)

    assert api_client.get(PRODUCTS, {"search": "", "sku": ""}).json()["count"] == 2


def test_product_list_pages_follow_next_links(api_client):
    ProductFactory.create_batch(5)

    first = api_client.get(PRODUCTS, {"page_size": 2}).json()
    second = api_client.get(first["next"]).json()

    assert first["count"] == 5
    assert len(first["results"]) == 2
    assert second["previous"] is not None
    assert {p["sku"] for p in first["results"]}.isdisjoint(p["sku"] for p in second["results"])


def test_product_list_page_out_of_range_is_not_found_envelope(api_client):
    assert_error(api_client.get(PRODUCTS, {"page": 99}), 404, "NOT_FOUND")


def test_product_list_rejects_overlong_search(api_client):
    error = assert_error(api_client.get(PRODUCTS, {"search": "x" * 101}), 400, "VALIDATION_ERROR")
    assert list(error["details"]["fields"]) == ["search"]


def test_product_list_query_count_does_not_grow_with_products(
    api_client, django_assert_num_queries
):
    StockLevelFactory.create_batch(3)
    with django_assert_num_queries(3):  # count, page, availability of the page
        assert len(api_client.get(PRODUCTS).json()["results"]) == 3
    StockLevelFactory.create_batch(30)
    WarehouseFactory(code="east")
    with django_assert_num_queries(3):
        assert len(api_client.get(PRODUCTS).json()["results"]) == 33


# --- GET products/{id}/ ----------------------------------------------------------


def test_product_detail_is_public(api_client):
    stock = StockLevelFactory(on_hand=7)

    response = api_client.get(f"{PRODUCTS}{stock.product_id}/")

    assert response.status_code == 200
    assert response.json()["sku"] == stock.product.sku
    assert response.json()["available"] == 7


# Fixed ids: xdist workers must collect the same test names (each draws its own uuid4).
@pytest.mark.parametrize(
    "product_id",
    [str(uuid.uuid4()), "not-a-uuid", "12345"],
    ids=["unknown-uuid", "not-a-uuid", "12345"],
)
def test_unknown_or_malformed_product_id_is_product_not_found(api_client, product_id):
    assert_error(api_client.get(f"{PRODUCTS}{product_id}/"), 404, "PRODUCT_NOT_FOUND")


# --- POST products/ ---------------------------------------------------------------


def test_staff_creates_a_product(staff_client):
    response = staff_client.post(
        PRODUCTS,
        {"sku": "NEW-1", "name": "New thing", "price": "12.50", "currency": "EUR"},
        format="json",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    product = Product.objects.get(sku="NEW-1")
    assert body == {
        "id": str(product.id),
        "sku": "NEW-1",
        "name": "New thing",
        "price": "12.50",
        "currency": "EUR",
        "available": 0,
        "stock_status": "out_of_stock",
        "max_per_order": None,
        "max_per_customer": None,
    }
    assert product.price == Decimal("12.50")


def test_product_currency_defaults_to_usd(staff_client):
    response = staff_client.post(
        PRODUCTS, {"sku": "NEW-2", "name": "Thing", "price": "1"}, format="json"
    )

    assert response.status_code == 201
    assert (response.json()["currency"], response.json()["price"]) == ("USD", "1.00")


def test_duplicate_sku_is_validation_error_on_sku(staff_client):
    ProductFactory(sku="DUP-1")

    response = staff_client.post(
        PRODUCTS, {"sku": "DUP-1", "name": "Again", "price": "1.00"}, format="json"
    )

    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert list(error["details"]["fields"]) == ["sku"]
    assert Product.objects.filter(sku="DUP-1").count() == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("price", "-0.01"),
        ("price", "12.505"),
        ("price", "abc"),
        ("price", "NaN"),
        ("currency", "usd"),
        ("currency", "US"),
        ("currency", "USDX"),
        ("sku", ""),
        ("sku", "x" * 65),
        ("name", ""),
    ],
)
def test_invalid_product_fields_are_rejected(staff_client, field, value):
    body = {"sku": "OK-1", "name": "Fine", "price": "1.00", "currency": "USD", field: value}

    error = assert_error(staff_client.post(PRODUCTS, body, format="json"), 400, "VALIDATION_ERROR")

    assert list(error["details"]["fields"]) == [field]
    assert not Product.objects.exists()


def test_missing_product_fields_are_each_listed(staff_client):
    error = assert_error(staff_client.post(PRODUCTS, {}, format="json"), 400, "VALIDATION_ERROR")
    assert set(error["details"]["fields"]) == {"sku", "name", "price"}


def test_anonymous_cannot_create_products(api_client):
    response = api_client.post(PRODUCTS, {"sku": "X", "name": "X", "price": "1"}, format="json")
    assert_error(response, 401, "NOT_AUTHENTICATED")


def test_customers_cannot_create_products(customer_client):
    response = customer_client.post(
        PRODUCTS, {"sku": "X", "name": "X", "price": "1"}, format="json"
    )
    assert_error(response, 403, "PERMISSION_DENIED")
    assert not Product.objects.exists()


# --- warehouses/ --------------------------------------------------------------------


def test_staff_lists_warehouses_with_the_migrated_default(staff_client):
    WarehouseFactory(code="east", name="East")

    response = staff_client.get(WAREHOUSES)

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    default = default_warehouse()
    assert body["results"] == [
        {
            "id": default.id,
            "code": "default",
            "name": default.name,
            "is_default": True,
            "priority": 0,
            "is_active": True,
        },
        {
            "id": Warehouse.objects.get(code="east").id,
            "code": "east",
            "name": "East",
            "is_default": False,
            "priority": 0,
            "is_active": True,
        },
    ]


def test_warehouse_list_query_count_is_constant(staff_client, django_assert_num_queries):
    # 1 for the token with its user, 2 for count + page.
    with django_assert_num_queries(3):
        staff_client.get(WAREHOUSES)
    for i in range(20):
        WarehouseFactory(code=f"w{i}")
    with django_assert_num_queries(3):
        assert staff_client.get(WAREHOUSES).json()["count"] == 21


def test_staff_creates_a_plain_warehouse(staff_client):
    response = staff_client.post(WAREHOUSES, {"code": "east", "name": "East"}, format="json")

    assert response.status_code == 201
    east = Warehouse.objects.get(code="east")
    assert response.json() == {
        "id": east.id,
        "code": "east",
        "name": "East",
        "is_default": False,
        "priority": 0,
        "is_active": True,
    }
    assert default_warehouse().code == "default"


def test_new_default_warehouse_takes_the_flag_from_the_old_one(staff_client):
    response = staff_client.post(
        WAREHOUSES, {"code": "main", "name": "Main", "is_default": True}, format="json"
    )

    assert response.status_code == 201
    assert response.json()["is_default"] is True
    assert list(Warehouse.objects.filter(is_default=True).values_list("code", flat=True)) == [
        "main"
    ]


def test_duplicate_warehouse_code_is_validation_error(staff_client):
    response = staff_client.post(WAREHOUSES, {"code": "default", "name": "X"}, format="json")

    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert list(error["details"]["fields"]) == ["code"]


def test_warehouse_code_must_be_a_slug(staff_client):
    response = staff_client.post(WAREHOUSES, {"code": "no spaces", "name": "X"}, format="json")

    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert list(error["details"]["fields"]) == ["code"]


@pytest.mark.parametrize("method", ["get", "post"])
def test_warehouses_are_staff_only(api_client, customer_client, method):
    body = {"code": "east", "name": "East"}
    assert_error(
        getattr(api_client, method)(WAREHOUSES, body, format="json"), 401, "NOT_AUTHENTICATED"
    )
    assert_error(
        getattr(customer_client, method)(WAREHOUSES, body, format="json"), 403, "PERMISSION_DENIED"
    )
    assert not Warehouse.objects.filter(code="east").exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_new_defaults_leave_exactly_one_default():
    # A transactional test starts from whatever the previous one left (maybe a flush).
    if not Warehouse.objects.filter(is_default=True).exists():
        WarehouseFactory(code="default", is_default=True)
    staff = StaffFactory()
    token, _ = Token.objects.get_or_create(user=staff)
    barrier = threading.Barrier(4)
    answers: list[tuple[int, bytes]] = []

    def create(code: str) -> None:
        try:
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
            barrier.wait()
            response = client.post(
                WAREHOUSES, {"code": code, "name": code, "is_default": True}, format="json"
            )
            answers.append((response.status_code, response.content))
        finally:
            connection.close()

    threads = [threading.Thread(target=create, args=(f"dc{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert [status for status, _ in answers] == [201] * 4, answers
    assert Warehouse.objects.filter(is_default=True).count() == 1
    assert Warehouse.objects.get(is_default=True).code.startswith("dc")
