"""What a shopper does in the storefront's pages, for the browser tests (Playwright's
``page`` of the ``browser`` fixture), and what the database holds meanwhile."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from inventory.models import Reservation, ReservationStatus, StockLevel
from orders.models import Order

TIMES = "\N{MULTIPLICATION SIGN}"
ORDER_URL = re.compile(r"/orders/([0-9a-f-]{36})/$")


def product_card(page, product):
    return page.locator(f'article.product[data-sku="{product.sku}"]')


def add_to_cart(page, product, quantity: int = 1) -> None:
    card = product_card(page, product)
    card.get_by_label("Quantity").fill(str(quantity))
    button = card.get_by_role("button", name=f"Add {product.name} to cart")
    button.click()
    expect(page.locator("[data-notice]")).to_contain_text(
        f"Added {quantity} {TIMES} {product.name} to your cart"
    )
    # The product name in the button is for screen readers only, also after the click.
    expect(button.locator(".visually-hidden")).to_have_text(f"{product.name} ")
    expect(button).to_be_enabled()


def fill_details(page, *, payment: str = "Card") -> None:
    delivery = page.get_by_role("group", name="Delivery address")
    delivery.get_by_label("Full name").fill("Ada Lovelace")
    delivery.get_by_label("Address line 1").fill("12 Analytical Row")
    delivery.get_by_label("Town or city").fill("London")
    delivery.get_by_label("Postal code").fill("N1 9GU")
    delivery.get_by_label("Country").select_option("GB")
    page.get_by_label("Standard delivery", exact=False).check()
    choose_payment(page, payment)


def choose_payment(page, label: str) -> None:
    page.get_by_role("group", name="Payment method").get_by_label(label, exact=True).check()


def place_order(page) -> None:
    page.get_by_role("button", name="Place order").click()


def stored_cart_id(page) -> str:
    return page.evaluate("JSON.parse(localStorage.getItem('storefront.cart')).id")


def expect_confirmation(page) -> Order:
    expect(page).to_have_url(ORDER_URL, timeout=15_000)
    expect(page.get_by_role("heading", level=1)).to_have_text("Thank you for your order")
    order_id = ORDER_URL.search(page.url).group(1)
    order = Order.objects.get(id=order_id)
    expect(page.locator("[data-number]")).to_have_text(order.number)
    return order


def two_mugs_ready_to_pay(browser, stocked_product, *, payment: str = "Card"):
    """A shopper in checkout with 2 of 5 blue mugs and every detail filled in; returns the
    product and the cart id."""
    mug = stocked_product(name="Blue mug", on_hand=5, price="12.50")
    browser.open("/")
    add_to_cart(browser.page, mug, 2)
    start_checkout_from_cart(browser.page)
    fill_details(browser.page, payment=payment)
    return mug, stored_cart_id(browser.page)


def stock(product) -> StockLevel:
    return StockLevel.objects.get(product=product)


def pending_reservations(cart_id) -> int:
    return Reservation.objects.filter(cart_id=cart_id, status=ReservationStatus.PENDING).count()


def start_checkout_from_cart(page) -> None:
    page.get_by_role("link", name=re.compile(r"^Cart")).click()
    expect(page).to_have_url(re.compile(r"/cart/$"))
    checkout = page.get_by_role("button", name="Go to checkout")
    expect(checkout).to_be_enabled()
    checkout.click()
    expect(page).to_have_url(re.compile(r"/checkout/$"))
    expect(page.locator("[data-countdown]")).to_have_text(re.compile(r"^\d+:\d\d$"))
