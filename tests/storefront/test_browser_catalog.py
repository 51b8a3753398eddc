"""The server-rendered storefront in a real headless Chromium: the product list and the
product page with and without JavaScript, the order lookup page and the 404 page.

With ``UPDATE_SCREENSHOTS=1`` each page is also saved at 1280 and 375 px wide in
``docs/screenshots/``.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from carts.models import Cart
from checkout.confirm import confirm_checkout
from checkout.services import update_checkout
from inventory import services
from inventory.models import StockLevel
from orders.models import Order
from tests.storefront.browser import (
    TIMES,
    add_to_cart,
    expect_confirmation,
    fill_details,
    place_order,
    product_card,
    start_checkout_from_cart,
)
from tests.support import cart_in_checkout

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NO_JAVASCRIPT = pytest.mark.parametrize("browser", [{"javascript": False}], indirect=True)


def snapshots(browser, name: str) -> None:
    """The current page at 1280 and 375 px wide (saved only with UPDATE_SCREENSHOTS=1),
    checked to fit its window at both widths."""
    page = browser.page
    for width in (1280, 375):
        page.set_viewport_size({"width": width, "height": 800})
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), width
        browser.snapshot(f"{name}-{width}")


def set_stock(product, on_hand: int) -> None:
    stock = StockLevel.objects.get(product=product)
    services.set_stock(product=product, warehouse=stock.warehouse, on_hand=on_hand, actor="test")


# --- without JavaScript ----------------------------------------------------------------------


@NO_JAVASCRIPT
def test_without_javascript_the_shopper_sees_the_products_and_adds_to_the_cart(
    browser, stocked_product
):
    page = browser.page
    mug = stocked_product(name="Blue mug", on_hand=10, price="12.50")
    lamp = stocked_product(name="Desk lamp", on_hand=3, price="40.00")
    stocked_product(name="Old kettle", on_hand=0)

    browser.open("/")
    expect(page.locator("article.product")).to_have_count(3)
    expect(product_card(page, mug).locator(".badge")).to_have_text("In stock")
    expect(product_card(page, lamp).locator(".badge")).to_have_text("Low stock: 3 left")
    expect(page.get_by_role("button", name="Sold out")).to_be_disabled()
    expect(product_card(page, mug).locator(".price")).to_contain_text("$12.50")
    expect(page.get_by_text("Loading")).to_have_count(0)

    product_card(page, mug).get_by_label("Quantity").fill("2")
    product_card(page, mug).get_by_role("button", name="Add Blue mug to cart").click()
    expect(page.locator("[data-server-notice]")).to_contain_text(
        f"Added 2 {TIMES} Blue mug to your cart"
    )
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.locator("[data-cart-count]")).to_have_text("(2 items)")
    snapshots(browser, "products-no-javascript")

    product_card(page, lamp).get_by_role("link", name="Desk lamp").click()
    expect(page).to_have_url(re.compile(rf"/products/{lamp.sku}/$"))
    page.get_by_role("button", name="Add Desk lamp to cart").click()
    expect(page).to_have_url(re.compile(rf"/products/{lamp.sku}/$"))
    expect(page.locator("[data-server-notice]")).to_contain_text(
        f"Added 1 {TIMES} Desk lamp to your cart"
    )

    page.get_by_role("link", name=re.compile(r"^Cart")).click()
    expect(page.get_by_role("table", name="Items in your cart")).to_contain_text("Blue mug")
    expect(page.get_by_role("table", name="Items in your cart")).to_contain_text("Desk lamp")
    expect(page.get_by_text("Loading your cart")).to_be_hidden()
    snapshots(browser, "cart-no-javascript")
    [cart] = Cart.objects.all()
    assert sorted((i.product.name, i.quantity) for i in cart.items.all()) == [
        ("Blue mug", 2),
        ("Desk lamp", 1),
    ]


# --- with JavaScript: the same pages enhanced ----------------------------------------------


def test_the_product_page_adds_without_a_reload_and_refreshes_its_badge(browser, stocked_product):
    page = browser.page
    lamp = stocked_product(name="Desk lamp", on_hand=3, price="40.00")

    browser.open(f"/products/{lamp.sku}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Desk lamp")
    expect(page.locator("[data-stock] .badge")).to_have_text("Low stock: 3 left")
    page.evaluate("window.stillTheSamePage = true")
    set_stock(lamp, 1)  # someone else bought two meanwhile

    page.get_by_role("button", name="Add Desk lamp to cart").click()

    expect(page.locator("[data-notice]")).to_contain_text(f"Added 1 {TIMES} Desk lamp to your cart")
    expect(page.locator("[data-stock] .badge")).to_have_text("Low stock: 1 left")
    assert page.evaluate("window.stillTheSamePage") is True
    expect(page.locator("[data-cart-count]")).to_have_text("(1 item)")
    snapshots(browser, "product-page")
    # The cart the script made is the one the pages' form posts use (the shared cookie).
    [cart] = Cart.objects.all()
    cookie = {c["name"]: c["value"] for c in page.context.cookies()}["storefront_cart"]
    assert cookie.startswith(f"{cart.id}:")


def test_badges_on_the_list_refresh_while_the_page_is_open(browser, stocked_product, settings):
    settings.STOREFRONT_STOCK_POLL_SECONDS = 1
    page = browser.page
    mug = stocked_product(name="Blue mug", on_hand=10)

    stocked_product(name="Desk lamp", on_hand=3, price="40.00")
    browser.open("/")
    expect(product_card(page, mug).locator(".badge")).to_have_text("In stock")
    snapshots(browser, "products")
    set_stock(mug, 0)

    expect(product_card(page, mug).locator(".badge")).to_have_text("Out of stock", timeout=5_000)
    expect(product_card(page, mug).get_by_role("button", name="Sold out")).to_be_disabled()


def test_a_cart_started_without_javascript_is_the_one_the_scripts_use(browser, stocked_product):
    """Same cookie both ways: a form post's cart is found by the cart page's script."""
    page = browser.page
    mug = stocked_product(name="Blue mug", on_hand=10, price="2.00")
    browser.open("/")
    page.evaluate(
        """(sku) => {
            const form = document.querySelector(`form[data-sku="${sku}"]`);
            HTMLFormElement.prototype.submit.call(form);  // the plain post, not the script
        }""",
        mug.sku,
    )
    expect(page.locator("[data-server-notice]")).to_contain_text("Added 1")

    page.get_by_role("link", name=re.compile(r"^Cart")).click()
    expect(page.locator("tbody[data-lines] tr")).to_have_count(1)
    expect(page.locator("[data-subtotal]")).to_have_text("$2.00")


def test_the_checkout_email_is_kept_on_the_order(browser, stocked_product):
    page = browser.page
    mug = stocked_product(name="Blue mug", on_hand=5, price="12.50")
    browser.open("/")
    add_to_cart(page, mug, 1)
    start_checkout_from_cart(page)

    page.get_by_label("Email address").fill("ada@example.org")
    fill_details(page)
    snapshots(browser, "checkout-with-email")
    place_order(page)

    order = expect_confirmation(page)
    assert order.email == "ada@example.org"


# --- order lookup ----------------------------------------------------------------------------


def test_a_shopper_finds_an_order_by_number_and_email(browser, stocked_product, settings):
    settings.ORDER_LOOKUP_THROTTLE = "1000/min"
    page = browser.page
    mug = stocked_product(name="Blue mug", on_hand=5, price="12.50")
    cart = cart_in_checkout((StockLevel.objects.get(product=mug), 2), token="another-device")
    update_checkout(cart_id=cart.id, changes={"email": "ada@example.org"}, actor="test")
    order: Order = confirm_checkout(cart_id=cart.id).order

    browser.open("/")
    page.get_by_role("link", name="Find an order").click()
    expect(page).to_have_url(re.compile(r"/orders/lookup/$"))
    page.get_by_label("Order number").fill(order.number)
    page.get_by_label("Email address").fill("someone@example.org")
    snapshots(browser, "order-lookup")
    page.get_by_role("button", name="Find my order").click()
    expect(page.locator("[data-notice]")).to_contain_text(
        "We could not find an order with that number and email"
    )

    page.get_by_label("Email address").fill("ADA@example.org")
    page.get_by_role("button", name="Find my order").click()

    expect(page).to_have_url(re.compile(rf"/orders/{order.id}/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Order {order.number}")
    expect(page.locator("[data-number]")).to_have_text(order.number)
    expect(page.locator("tbody[data-lines]")).to_contain_text("Blue mug")
    expect(page.locator("[data-total]")).to_have_text("$25.00")
    snapshots(browser, "order-found")
    page.reload()  # the token was kept for this order
    expect(page.locator("[data-number]")).to_have_text(order.number)


# --- 404 -------------------------------------------------------------------------------------


def test_an_unknown_address_shows_the_styled_404(browser):
    page = browser.page

    response = page.goto(browser.base_url + "/no-such-page/")

    assert response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("We could not find that page")
    expect(page.get_by_role("link", name="Browse products")).to_have_attribute("href", "/")
    snapshots(browser, "not-found")
