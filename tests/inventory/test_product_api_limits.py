"""A product's purchase limits (SPEC §15, API.md v1.1): ``max_per_order`` and
``max_per_customer`` (an integer of at least 1, or null for no limit) in the product
representation, set by staff when creating a product or with ``PATCH products/{id}/``,
and in the product admin."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from inventory.models import Product
from tests.support import API, assert_error, stocked
from tests.support.factories import ProductFactory, StaffFactory, UserFactory, WarehouseFactory

pytestmark = pytest.mark.django_db


def detail(product: Product) -> str:
    return f"{API}/products/{product.id}/"


def test_a_product_shows_its_limits_null_when_there_are_none(api_client):
    stock = stocked(sku="NO-LIMITS")
    limited = stocked(sku="LIMITED", max_per_order=2, max_per_customer=5)

    plain = api_client.get(detail(stock.product)).json()
    listed = api_client.get(f"{API}/products/", {"sku": "LIMITED"}).json()["results"]

    assert (plain["max_per_order"], plain["max_per_customer"]) == (None, None)
    assert [(p["max_per_order"], p["max_per_customer"]) for p in listed] == [(2, 5)]
    assert listed[0]["id"] == str(limited.product_id)


def test_staff_create_a_product_with_limits(staff_client):
    response = staff_client.post(
        f"{API}/products/",
        {"sku": "NEW-LIM", "name": "Limited", "price": "3.00", "max_per_order": 2},
        format="json",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["max_per_order"], body["max_per_customer"]) == (2, None)
    product = Product.objects.get(sku="NEW-LIM")
    assert (product.max_per_order, product.max_per_customer) == (2, None)


@pytest.mark.parametrize("value", [0, -1, "two", 1.5])
def test_a_limit_must_be_a_whole_number_of_at_least_one(staff_client, value):
    created = staff_client.post(
        f"{API}/products/",
        {"sku": "BAD-LIM", "name": "Bad", "price": "1.00", "max_per_customer": value},
        format="json",
    )
    product = ProductFactory()
    patched = staff_client.patch(detail(product), {"max_per_order": value}, format="json")

    assert "max_per_customer" in assert_error(created, 400, "VALIDATION_ERROR")["details"]["fields"]
    assert "max_per_order" in assert_error(patched, 400, "VALIDATION_ERROR")["details"]["fields"]
    assert not Product.objects.filter(sku="BAD-LIM").exists()
    product.refresh_from_db()
    assert product.max_per_order is None


def test_staff_patch_only_the_fields_they_give(staff_client):
    product = stocked(sku="PATCH-ME", on_hand=7, max_per_customer=4).product

    response = staff_client.patch(
        detail(product), {"max_per_order": 3, "price": "9.99"}, format="json"
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["max_per_order"], body["max_per_customer"]) == (3, 4)
    assert (body["price"], body["name"], body["available"]) == ("9.99", product.name, 7)
    product.refresh_from_db()
    assert (product.max_per_order, product.max_per_customer) == (3, 4)
    assert product.price == Decimal("9.99")


def test_null_lifts_a_limit(staff_client):
    product = ProductFactory(max_per_order=2, max_per_customer=6)

    response = staff_client.patch(detail(product), {"max_per_customer": None}, format="json")

    assert response.status_code == 200
    assert (response.json()["max_per_order"], response.json()["max_per_customer"]) == (2, None)
    product.refresh_from_db()
    assert product.max_per_customer is None


def test_sku_and_currency_do_not_change_with_a_patch(staff_client):
    product = ProductFactory(sku="KEEP-SKU", currency="USD")

    response = staff_client.patch(
        detail(product), {"sku": "OTHER", "currency": "EUR", "name": "Renamed"}, format="json"
    )

    assert response.status_code == 200
    product.refresh_from_db()
    assert (product.sku, product.currency, product.name) == ("KEEP-SKU", "USD", "Renamed")


def test_staff_rename_a_product_and_a_warehouse(staff_client):
    product = ProductFactory(name="Old name")
    WarehouseFactory(code="rename-me", name="Old")

    renamed = staff_client.patch(detail(product), {"name": "New name"}, format="json")
    warehouse = staff_client.patch(f"{API}/warehouses/rename-me/", {"name": "New"}, format="json")

    assert (renamed.status_code, renamed.json()["name"]) == (200, "New name")
    assert (warehouse.status_code, warehouse.json()["name"]) == (200, "New")


def test_patching_an_unknown_or_malformed_product_answers_product_not_found(staff_client):
    unknown = staff_client.patch(
        f"{API}/products/{uuid.uuid4()}/", {"max_per_order": 1}, format="json"
    )
    malformed = staff_client.patch(f"{API}/products/nope/", {"max_per_order": 1}, format="json")

    assert_error(unknown, 404, "PRODUCT_NOT_FOUND")
    assert_error(malformed, 404, "PRODUCT_NOT_FOUND")


def test_only_staff_patch_a_product(api_client):
    product = ProductFactory()
    anonymous = api_client.patch(detail(product), {"max_per_order": 1}, format="json")
    api_client.force_authenticate(UserFactory())
    customer = api_client.patch(detail(product), {"max_per_order": 1}, format="json")

    assert_error(anonymous, 401, "NOT_AUTHENTICATED")
    assert_error(customer, 403, "PERMISSION_DENIED")
    product.refresh_from_db()
    assert product.max_per_order is None


# --- admin --------------------------------------------------------------------------------


@pytest.fixture
def admin_browser(db) -> Client:
    client = Client()
    client.force_login(StaffFactory(username="limits-admin", is_superuser=True))
    return client


def admin_form(product: Product, **changes: object) -> dict[str, object]:
    """The product change form as posted, for a product without stock rows (its read-only
    stock inline has no forms)."""
    data: dict[str, object] = {
        "sku": product.sku,
        "name": product.name,
        "price": str(product.price),
        "currency": product.currency,
        "max_per_order": "",
        "max_per_customer": "",
        "stock_levels-TOTAL_FORMS": "0",
        "stock_levels-INITIAL_FORMS": "0",
        "stock_levels-MIN_NUM_FORMS": "0",
        "stock_levels-MAX_NUM_FORMS": "0",
    }
    data.update(changes)
    return data


def test_staff_see_and_set_the_limits_in_the_admin(admin_browser):
    product = ProductFactory(sku="ADMIN-LIM", max_per_order=2)
    url = reverse("admin:inventory_product_change", args=[product.pk])

    listed = admin_browser.get(reverse("admin:inventory_product_changelist"))
    form = admin_browser.get(url)
    saved = admin_browser.post(url, admin_form(product, max_per_order="", max_per_customer="4"))

    assert b"column-max_per_order" in listed.content
    assert b'name="max_per_customer"' in form.content
    assert saved.status_code == 302, saved.content
    product.refresh_from_db()
    assert (product.max_per_order, product.max_per_customer) == (None, 4)


def test_the_admin_refuses_a_limit_of_zero(admin_browser):
    product = ProductFactory(sku="ADMIN-ZERO")
    url = reverse("admin:inventory_product_change", args=[product.pk])

    response = admin_browser.post(url, admin_form(product, max_per_order="0"))

    assert response.status_code == 200  # the form again, with its error
    assert response.context["adminform"].form.errors["max_per_order"]
    product.refresh_from_db()
    assert product.max_per_order is None
