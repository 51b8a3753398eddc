"""The storefront as a crawler or a browser without JavaScript gets it: the product list
and product pages hold the products in their HTML, adding to the cart works as a plain
form post that keeps the cart in the same cookie the scripts use, and unknown pages and
server errors get styled pages (API paths keep the JSON envelope)."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from carts import services as cart_services
from carts.models import Cart, CartStatus
from carts.tokens import token_matches
from inventory import services as inventory_services
from storefront.cart_cookie import COOKIE_NAME
from storefront.views import PRODUCTS_PER_PAGE
from tests.support import assert_error, cart_in_checkout, stocked

pytestmark = pytest.mark.django_db

TIMES = "\N{MULTIPLICATION SIGN}"


def html(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def card_skus(page: str) -> list[str]:
    return re.findall(r'<article class="product" [^>]*data-sku="([^"]+)"', page)


def add(client: Client, sku: str, quantity="1", next_url: str = "/"):
    return client.post(
        reverse("storefront:cart-add"), {"sku": sku, "quantity": quantity, "next": next_url}
    )


def cookie_cart(client: Client) -> Cart:
    cart_id, _, token = client.cookies[COOKIE_NAME].value.partition(":")
    cart = Cart.objects.get(id=cart_id)
    assert token_matches(token, cart.token_hash)
    return cart


# --- product list and product page -----------------------------------------------------------


def test_the_product_list_holds_names_prices_badges_and_forms(client):
    mug = stocked(on_hand=10, sku="MUG-1", name="Blue mug", price="12.50")
    lamp = stocked(on_hand=3, sku="LAMP-1", name="Desk lamp", price="1040.00")
    gone = stocked(on_hand=0, sku="GONE-1", name="Old kettle")

    page = html(client.get("/"))

    assert card_skus(page) == ["GONE-1", "LAMP-1", "MUG-1"]
    assert "Blue mug" in page and "$12.50" in page and "$1,040.00" in page
    assert 'data-stock-status="in_stock">In stock<' in page
    assert 'data-stock-status="low_stock">Low stock: 3 left<' in page
    assert 'data-stock-status="out_of_stock">Out of stock<' in page
    assert f'href="/products/{mug.product.sku}/"' in page
    assert page.count('action="/cart/add/"') == 3
    assert "Loading products" not in page
    assert lamp.product.name in page and gone.product.name in page


def test_a_large_catalog_is_paginated(client, django_assert_max_num_queries):
    for n in range(PRODUCTS_PER_PAGE + 5):
        stocked(on_hand=n, sku=f"SKU-{n:03d}")

    with django_assert_max_num_queries(6):
        first = html(client.get("/"))
    last = html(client.get("/", {"page": "2"}))
    beyond = html(client.get("/", {"page": "99"}))

    assert len(card_skus(first)) == PRODUCTS_PER_PAGE
    assert card_skus(last) == [
        f"SKU-{n:03d}" for n in range(PRODUCTS_PER_PAGE, PRODUCTS_PER_PAGE + 5)
    ]
    assert card_skus(beyond) == card_skus(last)
    assert "Page 1 of 2" in first and 'rel="next" href="?page=2"' in first
    assert 'rel="prev" href="?page=1"' in last


def test_search_filters_the_rendered_list(client):
    stocked(sku="MUG-1", name="Blue mug")
    stocked(sku="KETTLE-1", name="Copper kettle")

    assert card_skus(html(client.get("/", {"search": "mug"}))) == ["MUG-1"]
    assert "No products match your search." in html(client.get("/", {"search": "teapot"}))


def test_the_product_page_shows_one_product(client):
    stocked(on_hand=2, sku="LAMP-1", name="Desk lamp", price="40.00")

    page = html(client.get("/products/LAMP-1/"))

    assert "<h1" in page and "Desk lamp" in page and "$40.00" in page
    assert "Low stock: 2 left" in page
    assert 'name="sku" value="LAMP-1"' in page


def test_an_unknown_product_page_is_the_styled_404(client):
    response = client.get("/products/NOPE/")

    assert response.status_code == 404
    assert "We could not find that page" in response.content.decode()


# --- add to cart without JavaScript ----------------------------------------------------------


def test_a_form_post_creates_a_cart_keeps_it_in_the_cookie_and_says_so(client):
    stocked(on_hand=5, sku="MUG-1", name="Blue mug")

    response = add(client, "MUG-1", "2", next_url="/products/MUG-1/")

    assert response.status_code == 302 and response["Location"] == "/products/MUG-1/"
    cookie = response.cookies[COOKIE_NAME]
    assert cookie["samesite"] == "Lax" and cookie["path"] == "/" and not cookie["httponly"]
    cart = cookie_cart(client)
    assert [(i.product.sku, i.quantity) for i in cart.items.all()] == [("MUG-1", 2)]
    page = html(client.get("/products/MUG-1/"))
    assert f"Added 2 {TIMES} Blue mug to your cart" in page
    assert '(2<span class="visually-hidden"> items</span>)' in page


def test_a_second_post_adds_to_the_same_cart(client):
    stocked(on_hand=5, sku="MUG-1")
    stocked(on_hand=5, sku="LAMP-1")

    add(client, "MUG-1")
    first = cookie_cart(client)
    add(client, "MUG-1")
    add(client, "LAMP-1")

    assert cookie_cart(client).id == first.id
    assert sorted((i.product.sku, i.quantity) for i in first.items.all()) == [
        ("LAMP-1", 1),
        ("MUG-1", 2),
    ]


def test_a_cart_made_by_the_api_is_used_by_the_form_post(client):
    stocked(on_hand=5, sku="MUG-1")
    cart, token = cart_services.create_cart()
    client.cookies[COOKIE_NAME] = f"{cart.id}:{token}"

    add(client, "MUG-1")

    assert [i.quantity for i in cart.items.all()] == [1]
    assert Cart.objects.count() == 1


@pytest.mark.parametrize("cookie", ["garbage", "{id}:wrong-token", "{id}:{token}"])
def test_an_unusable_cart_in_the_cookie_is_replaced_by_a_new_one(client, cookie):
    stocked(on_hand=5, sku="MUG-1")
    old, token = cart_services.create_cart()
    if cookie == "{id}:{token}":
        Cart.objects.filter(id=old.id).update(status=CartStatus.COMPLETED)
    client.cookies[COOKIE_NAME] = cookie.format(id=old.id, token=token)

    add(client, "MUG-1")

    new = cookie_cart(client)
    assert new.id != old.id
    assert not old.items.exists()


def test_a_cart_in_checkout_is_not_changed_and_the_shopper_is_told(client):
    stock = stocked(on_hand=5, sku="MUG-1")
    cart = cart_in_checkout((stock, 1), token="the-token")
    client.cookies[COOKIE_NAME] = f"{cart.id}:the-token"

    response = add(client, "MUG-1")

    assert cart.items.get().quantity == 1
    assert "Your cart is in checkout" in html(client.get(response["Location"]))


@pytest.mark.parametrize("quantity", ["0", "1001", "lots", ""])
def test_a_bad_quantity_is_refused_without_making_a_cart(client, quantity):
    stocked(on_hand=5, sku="MUG-1")

    response = add(client, "MUG-1", quantity)

    assert "Enter a quantity between 1 and 1000." in html(client.get(response["Location"]))
    assert Cart.objects.count() == 0


def test_next_may_not_leave_the_site(client):
    stocked(on_hand=5, sku="MUG-1")

    response = add(client, "MUG-1", next_url="https://evil.example/")

    assert response["Location"] == "/"


def test_the_cart_page_lists_the_cookie_cart_for_a_browser_without_javascript(client):
    stocked(on_hand=5, sku="MUG-1", name="Blue mug", price="3.00")
    add(client, "MUG-1", "3")

    page = html(client.get("/cart/"))

    noscript = page[page.index("<noscript") : page.index("</noscript>")]
    assert "Blue mug" in noscript and "$9.00" in noscript


def test_adding_needs_the_csrf_token(db):
    stocked(on_hand=5, sku="MUG-1")
    client = Client(enforce_csrf_checks=True)

    assert add(client, "MUG-1").status_code == 403


# --- error pages -----------------------------------------------------------------------------


def test_an_unknown_page_is_the_styled_404_with_the_storefront_layout(client):
    response = client.get("/no-such-page/")

    assert response.status_code == 404
    page = response.content.decode()
    assert "We could not find that page" in page
    assert "/static/storefront/storefront.css" in page
    assert 'href="/"' in page


def test_an_unknown_api_path_still_answers_the_envelope(client):
    assert_error(client.get("/api/v1/no-such-thing/"), 404, "NOT_FOUND")


def test_a_server_error_is_the_styled_500(db, settings):
    settings.ROOT_URLCONF = "tests.storefront.urls_for_errors"
    client = Client(raise_request_exception=False)

    response = client.get("/boom/")

    assert response.status_code == 500
    page = response.content.decode()
    assert "Something went wrong on our side" in page
    assert "/static/storefront/storefront.css" in page


def test_stock_changes_show_on_the_next_render(client):
    stock = stocked(on_hand=10, sku="MUG-1")
    inventory_services.set_stock(
        product=stock.product, warehouse=stock.warehouse, on_hand=2, actor="test"
    )

    assert "Low stock: 2 left" in html(client.get("/"))
