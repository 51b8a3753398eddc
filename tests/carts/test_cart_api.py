"""The cart API as a shopper uses it (API.md "Carts")."""

from __future__ import annotations

import hashlib
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from carts.models import Cart, CartItem, CartStatus
from inventory.models import StockLevel, Warehouse
from tests.support import (
    API,
    Shopper,
    assert_constant_queries,
    assert_error,
    shoppers_with_1_and_10_lines,
    stocked,
)
from tests.support.factories import UserFactory, WarehouseFactory

pytestmark = pytest.mark.django_db

CART_FIELDS = {
    "id",
    "status",
    "currency",
    "items",
    "subtotal",
    "expires_at",
    "created_at",
    "updated_at",
}
ITEM_FIELDS = {
    "id",
    "product_id",
    "sku",
    "name",
    "quantity",
    "unit_price",
    "line_total",
    "warehouse",
}


def test_create_returns_an_empty_active_cart_with_its_token_shown_once():
    shopper = Shopper()
    body = shopper.create_cart()

    assert set(body) == CART_FIELDS | {"token"}
    assert body["status"] == "active"
    assert body["currency"] == "USD"
    assert body["items"] == []
    assert body["subtotal"] == "0.00"
    assert body["expires_at"] is None
    read = shopper.cart()
    assert read.status_code == 200
    assert set(read.json()) == CART_FIELDS


def test_only_a_hash_of_the_token_is_stored():
    shopper = Shopper()
    body = shopper.create_cart()

    cart = Cart.objects.get(id=body["id"])
    assert cart.token_hash == hashlib.sha256(body["token"].encode()).hexdigest()
    assert body["token"] not in cart.token_hash
    assert cart.customer_id is None


def test_create_accepts_an_iso_currency():
    shopper = Shopper()
    assert shopper.create_cart(currency="EUR")["currency"] == "EUR"


@pytest.mark.parametrize("currency", ["XYZ", "usd", "EURO", "", 5])
def test_create_refuses_a_currency_that_is_not_iso_4217(currency):
    response = APIClient().post(f"{API}/carts/", {"currency": currency}, format="json")

    assert response.status_code == 400
    error = assert_error(response)
    assert error["code"] == "VALIDATION_ERROR"
    assert "currency" in error["details"]["fields"]


def test_a_logged_in_customer_owns_the_cart_they_create_and_needs_no_token():
    customer = UserFactory()
    client = APIClient()
    client.force_authenticate(customer)
    shopper = Shopper(client)
    body = shopper.create_cart()

    assert Cart.objects.get(id=body["id"]).customer_id == customer.id
    assert shopper.cart(token="").status_code == 200
    stocked(sku="OWN-1")
    assert shopper.add("OWN-1", 1, token="").status_code == 201


def test_add_item_answers_201_with_the_line_and_money_as_strings():
    row = stocked(sku="TEA-1", name="Green tea", price=Decimal("12.50"))
    shopper = Shopper()
    shopper.create_cart()

    response = shopper.add("TEA-1", 3)

    assert response.status_code == 201
    body = response.json()
    assert set(body) == CART_FIELDS
    [item] = body["items"]
    assert set(item) == ITEM_FIELDS
    assert item["product_id"] == str(row.product_id)
    assert item["sku"] == "TEA-1"
    assert item["name"] == "Green tea"
    assert item["quantity"] == 3
    assert item["unit_price"] == "12.50"
    assert item["line_total"] == "37.50"
    assert item["warehouse"] is None  # unpinned: any active warehouse (API.md v1.1)
    assert body["subtotal"] == "37.50"


def test_subtotal_sums_every_line():
    stocked(sku="A", price=Decimal("1.10"))
    stocked(sku="B", price=Decimal("0.05"))
    body = Shopper().cart_with(("A", 3), ("B", 7))

    assert body["subtotal"] == "3.65"


def test_adding_the_same_sku_again_adds_to_its_line():
    stocked(sku="SAME")
    shopper = Shopper()
    shopper.create_cart()
    shopper.add("SAME", 2)

    body = shopper.add("SAME", 5).json()

    assert [(i["sku"], i["quantity"]) for i in body["items"]] == [("SAME", 7)]


def test_a_line_may_not_grow_past_1000():
    stocked(sku="BULK")
    shopper = Shopper()
    shopper.create_cart()
    shopper.add("BULK", 600)

    response = shopper.add("BULK", 401)

    assert response.status_code == 400
    error = assert_error(response)
    assert error["code"] == "VALIDATION_ERROR"
    assert "quantity" in error["details"]["fields"]
    assert CartItem.objects.get(cart_id=shopper.cart_id).quantity == 600
    assert shopper.add("BULK", 400).json()["items"][0]["quantity"] == 1000


@pytest.mark.parametrize(
    "body",
    [
        {"sku": "Q", "quantity": 0},
        {"sku": "Q", "quantity": 1001},
        {"sku": "Q", "quantity": -1},
        {"sku": "Q", "quantity": "many"},
        {"sku": "Q"},
        {"quantity": 1},
    ],
)
def test_add_item_refuses_a_bad_body(body):
    stocked(sku="Q")
    shopper = Shopper()
    shopper.create_cart()

    response = shopper.call("post", f"carts/{shopper.cart_id}/items/", body)

    assert response.status_code == 400
    assert assert_error(response)["code"] == "VALIDATION_ERROR"
    assert not CartItem.objects.exists()


def test_add_item_refuses_a_body_that_is_not_json():
    shopper = Shopper()
    shopper.create_cart()

    response = shopper.client.post(
        f"{API}/carts/{shopper.cart_id}/items/",
        "{not json",
        content_type="application/json",
        HTTP_X_CART_TOKEN=shopper.token,
    )

    assert response.status_code == 400
    assert assert_error(response)["code"] == "VALIDATION_ERROR"


def test_an_unknown_sku_is_product_not_found():
    shopper = Shopper()
    shopper.create_cart()

    response = shopper.add("NOPE", 1)

    assert response.status_code == 404
    error = assert_error(response)
    assert error["code"] == "PRODUCT_NOT_FOUND"
    assert error["details"] == {"sku": "NOPE"}


def test_a_product_in_another_currency_cannot_join_the_cart():
    stocked(sku="EUR-1", currency="EUR")
    shopper = Shopper()
    shopper.create_cart()

    response = shopper.add("EUR-1", 1)

    assert response.status_code == 400
    error = assert_error(response)
    assert error["code"] == "VALIDATION_ERROR"
    assert "sku" in error["details"]["fields"]


def test_a_line_can_come_from_a_named_warehouse():
    north = WarehouseFactory(code="north")
    row = stocked(sku="W-1")
    StockLevel.objects.create(product=row.product, warehouse=north, on_hand=4)
    shopper = Shopper()
    shopper.create_cart()

    body = shopper.add("W-1", 1, warehouse="north").json()

    assert body["items"][0]["warehouse"] == "north"
    refused = shopper.add("W-1", 1, warehouse="default")
    assert refused.status_code == 400
    assert "warehouse" in assert_error(refused)["details"]["fields"]
    assert shopper.add("W-1", 1).json()["items"][0]["quantity"] == 2


def test_an_unknown_warehouse_is_not_found():
    stocked(sku="W-2")
    shopper = Shopper()
    shopper.create_cart()

    response = shopper.add("W-2", 1, warehouse="atlantis")

    assert response.status_code == 404
    assert assert_error(response)["code"] == "NOT_FOUND"


def test_a_line_without_a_warehouse_needs_no_default_warehouse():
    stocked(sku="W-3")
    Warehouse.objects.filter(is_default=True).update(is_default=False)
    shopper = Shopper()
    shopper.create_cart()

    response = shopper.add("W-3", 1)

    assert response.status_code == 201
    assert response.json()["items"][0]["warehouse"] is None


def test_an_unpinned_line_refuses_a_named_warehouse_later():
    stocked(sku="W-4")
    shopper = Shopper()
    shopper.create_cart()
    shopper.add("W-4", 1)

    refused = shopper.add("W-4", 1, warehouse="default")

    assert refused.status_code == 400
    assert "warehouse" in assert_error(refused)["details"]["fields"]
    assert shopper.add("W-4", 2).json()["items"][0]["quantity"] == 3


def test_patch_sets_the_quantity_of_a_line():
    stocked(sku="P-1", price=Decimal("2.00"))
    shopper = Shopper()
    item_id = shopper.cart_with(("P-1", 1))["items"][0]["id"]

    response = shopper.set_quantity(item_id, 4)

    assert response.status_code == 200
    assert response.json()["items"][0]["quantity"] == 4
    assert response.json()["subtotal"] == "8.00"


@pytest.mark.parametrize("quantity", [0, 1001, None])
def test_patch_refuses_a_quantity_out_of_range(quantity):
    stocked(sku="P-2")
    shopper = Shopper()
    item_id = shopper.cart_with(("P-2", 1))["items"][0]["id"]

    response = shopper.set_quantity(item_id, quantity)

    assert response.status_code == 400
    assert "quantity" in assert_error(response)["details"]["fields"]


def test_patch_or_delete_of_a_line_that_is_not_in_this_cart_is_not_found():
    stocked(sku="X-1")
    other = Shopper()
    other_item = other.cart_with(("X-1", 1))["items"][0]["id"]
    shopper = Shopper()
    shopper.create_cart()

    for response in (shopper.set_quantity(other_item, 2), shopper.remove(other_item)):
        assert response.status_code == 404
        assert assert_error(response)["code"] == "NOT_FOUND"
    assert CartItem.objects.get(id=other_item).quantity == 1


def test_delete_removes_the_line():
    stocked(sku="D-1")
    stocked(sku="D-2")
    shopper = Shopper()
    body = shopper.cart_with(("D-1", 1), ("D-2", 2))

    response = shopper.remove(body["items"][0]["id"])

    assert response.status_code == 200
    assert [i["sku"] for i in response.json()["items"]] == ["D-2"]


def test_lines_cannot_be_added_or_changed_during_checkout():
    stocked(sku="C-1", on_hand=10)
    stocked(sku="C-2", on_hand=10)
    shopper = Shopper()
    item_id = shopper.cart_with(("C-1", 3))["items"][0]["id"]
    assert shopper.start().status_code == 201

    for response in (
        shopper.add("C-2", 1),
        shopper.add("C-1", 1),
        shopper.set_quantity(item_id, 5),
        shopper.set_quantity(item_id, 1),
    ):
        assert response.status_code == 409
        error = assert_error(response)
        assert error["code"] == "INVALID_CART_STATUS"
        assert error["details"] == {"status": "checkout"}
    assert list(CartItem.objects.values_list("quantity", flat=True)) == [3]
    assert StockLevel.objects.get(product__sku="C-1").reserved == 3


def test_a_completed_cart_cannot_be_edited():
    stocked(sku="F-1")
    shopper = Shopper()
    item_id = shopper.cart_with(("F-1", 1))["items"][0]["id"]
    Cart.objects.filter(id=shopper.cart_id).update(status=CartStatus.COMPLETED)

    for response in (
        shopper.add("F-1", 1),
        shopper.set_quantity(item_id, 2),
        shopper.remove(item_id),
    ):
        assert response.status_code == 409
        assert assert_error(response)["details"] == {"status": "completed"}
    assert CartItem.objects.filter(id=item_id, quantity=1).exists()


def test_editing_an_abandoned_cart_makes_it_active_again():
    stocked(sku="AB-1")
    shopper = Shopper()
    shopper.cart_with(("AB-1", 1))
    Cart.objects.filter(id=shopper.cart_id).update(status=CartStatus.ABANDONED)

    response = shopper.add("AB-1", 1)

    assert response.status_code == 201
    assert response.json()["status"] == "active"
    assert response.json()["items"][0]["quantity"] == 2


def test_unknown_cart_is_cart_not_found():
    shopper = Shopper()
    shopper.create_cart()
    shopper.cart_id = "00000000-0000-0000-0000-000000000000"

    response = shopper.cart()

    assert response.status_code == 404
    assert assert_error(response) == {
        "code": "CART_NOT_FOUND",
        "message": "Cart not found",
        "details": {},
    }


def test_reading_a_cart_costs_the_same_number_of_queries_for_1_or_10_lines(
    django_assert_num_queries,
):
    one, ten = shoppers_with_1_and_10_lines()

    # the cart and its lines (with products and warehouses)
    small, large = assert_constant_queries(django_assert_num_queries, one.cart, ten.cart, at_most=2)

    assert (len(small.json()["items"]), len(large.json()["items"])) == (1, 10)


def test_adding_an_item_costs_the_same_number_of_queries_for_1_or_10_lines(
    django_assert_num_queries,
):
    one, ten = shoppers_with_1_and_10_lines()
    sku = stocked().product.sku

    small, large = assert_constant_queries(
        django_assert_num_queries, lambda: one.add(sku, 1), lambda: ten.add(sku, 1), at_most=8
    )

    assert (len(small.json()["items"]), len(large.json()["items"])) == (2, 11)
