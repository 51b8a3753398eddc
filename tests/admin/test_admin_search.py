"""Staff find a shopper's carts and orders in the admin by the email given at checkout,
the name on the delivery address, the order number or a product's sku."""

from __future__ import annotations

import pytest
from django.urls import reverse

from carts.models import Cart
from checkout.confirm import confirm_checkout
from checkout.services import update_checkout
from orders.models import Order
from tests.support import ADDRESS, cart_in_checkout, stocked

pytestmark = pytest.mark.django_db


def shown(client, model, query: str) -> set:
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    response = client.get(url, {"q": query})
    assert response.status_code == 200
    return {obj.pk for obj in response.context["cl"].result_list}


@pytest.fixture
def two_shoppers(db):
    """Ada ordered two ALPHA-1 and a BRAVO-2; Grace has a cart in checkout with a CHARLIE-3."""
    alpha, bravo = stocked(sku="ALPHA-1"), stocked(sku="BRAVO-2")
    charlie = stocked(sku="CHARLIE-3")
    ada_cart = cart_in_checkout((alpha, 2), (bravo, 1), token="ada-token")
    update_checkout(cart_id=ada_cart.id, changes={"email": "ada@example.org"}, actor="test")
    order = confirm_checkout(cart_id=ada_cart.id).order
    grace_cart = cart_in_checkout(
        (charlie, 1), token="grace-token", shipping_address={**ADDRESS, "name": "Grace Hopper"}
    )
    update_checkout(cart_id=grace_cart.id, changes={"email": "grace@navy.example"}, actor="test")
    return order, grace_cart


@pytest.mark.parametrize(
    ("query", "who"),
    [
        ("ada@example.org", "ada"),
        ("ADA@EXAMPLE", "ada"),  # part of the email, any case
        ("lovelace", "ada"),  # the name on the delivery address
        ("BRAVO-2", "ada"),
        ("grace@navy", "grace"),
        ("Grace Hopper", "grace"),
        ("charlie-3", "grace"),
        ("nobody@example.org", None),
    ],
)
def test_carts_are_found_by_email_name_and_sku(staff_browser, two_shoppers, query, who):
    order, grace_cart = two_shoppers
    expected = {"ada": {order.cart_id}, "grace": {grace_cart.id}, None: set()}[who]

    assert shown(staff_browser, Cart, query) == expected


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("ada@example.org", True),
        ("Ada Lovelace", True),
        ("lovelace", True),
        ("ALPHA-1", True),
        ("alpha", True),
        ("grace@navy.example", False),  # no order yet
        ("CHARLIE-3", False),
    ],
)
def test_orders_are_found_by_email_name_and_sku(staff_browser, two_shoppers, query, found):
    order, _ = two_shoppers

    assert shown(staff_browser, Order, query) == ({order.id} if found else set())


def test_orders_and_carts_are_found_by_the_order_number(staff_browser, two_shoppers):
    order, _ = two_shoppers

    assert shown(staff_browser, Order, order.number) == {order.id}
    assert shown(staff_browser, Cart, order.number) == {order.cart_id}


def test_an_order_with_two_lines_is_listed_once_for_a_search_matching_both(
    staff_browser, two_shoppers
):
    order, _ = two_shoppers

    response = staff_browser.get(
        reverse("admin:orders_order_changelist"), {"q": "-"}
    )  # both skus hold a dash
    assert [o.pk for o in response.context["cl"].result_list].count(order.id) == 1


def test_the_email_is_shown_on_the_order_and_cart_pages(staff_browser, two_shoppers):
    order, grace_cart = two_shoppers

    assert (
        b"ada@example.org"
        in staff_browser.get(reverse("admin:orders_order_change", args=[order.pk])).content
    )
    assert (
        b"grace@navy.example"
        in staff_browser.get(reverse("admin:carts_cart_change", args=[grace_cart.pk])).content
    )
