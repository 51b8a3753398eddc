"""The storefront in a real headless Chromium against the live server (SPEC §12).

Each test is what a shopper does; the page talks only to the REST API, and the
assertions check both what the shopper sees and what the database holds afterwards.
Stock numbers are set and changed through ``inventory.services`` only.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from carts.models import Cart
from inventory import services
from inventory.models import ReleaseReason, Reservation, ReservationStatus
from orders.models import Order
from payments.models import Payment
from tests.storefront.browser import (
    TIMES,
    add_to_cart,
    choose_payment,
    expect_confirmation,
    fill_details,
    pending_reservations,
    place_order,
    product_card,
    start_checkout_from_cart,
    stock,
    stored_cart_id,
    two_mugs_ready_to_pay,
)
from tests.support.factories import CartFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


# --- scenarios ------------------------------------------------------------------------


def test_shopper_buys_what_is_in_stock(browser, stocked_product):
    page = browser.page
    mug = stocked_product(name="Blue mug", on_hand=10, price="12.50")
    lamp = stocked_product(name="Desk lamp", on_hand=3, price="40.00")

    browser.open("/")
    expect(product_card(page, mug).locator(".badge")).to_have_text("In stock")
    expect(product_card(page, lamp).locator(".badge")).to_have_text("Low stock: 3 left")
    add_to_cart(page, mug, 2)
    add_to_cart(page, lamp, 1)
    browser.snapshot("products")

    page.get_by_role("link", name=re.compile(r"^Cart")).click()
    rows = page.locator("tbody[data-lines] tr")
    expect(rows).to_have_count(2)
    expect(page.locator(f'tr[data-sku="{mug.sku}"] .badge')).to_have_text("In stock")
    expect(page.locator(f'tr[data-sku="{lamp.sku}"] .badge')).to_have_text("Low stock: 3 left")
    expect(page.locator("[data-subtotal]")).to_have_text("$65.00")
    expect(page.get_by_role("button", name="Go to checkout")).to_be_enabled()
    browser.snapshot("cart")

    page.get_by_role("button", name="Go to checkout").click()
    expect(page).to_have_url(re.compile(r"/checkout/$"))
    # Two lamps left once one is held: a scarce line, held for SCARCITY_TTL_SECONDS (120).
    expect(page.locator("[data-countdown]")).to_have_text(re.compile(r"^(2:00|1:[0-5]\d)$"))
    expect(page.locator("[data-high-demand]")).to_contain_text("High demand: Desk lamp")
    cart_id = stored_cart_id(page)
    assert Cart.objects.get(id=cart_id).status == "checkout"
    assert stock(mug).reserved == 2 and stock(lamp).reserved == 1
    expect(page.locator("[data-total]")).to_have_text("$65.00")
    fill_details(page)
    browser.snapshot("checkout")
    place_order(page)

    order = expect_confirmation(page)
    expect(page.locator("tbody[data-lines] tr")).to_have_count(2)
    expect(page.locator("tbody[data-lines]")).to_contain_text("Blue mug")
    expect(page.locator("[data-total]")).to_have_text("$65.00")
    browser.snapshot("order")
    assert str(order.cart_id) == cart_id
    assert sorted((i.product_id, i.quantity) for i in order.items.all()) == sorted(
        [(mug.id, 2), (lamp.id, 1)]
    )
    assert (stock(mug).on_hand, stock(mug).reserved) == (8, 0)
    assert (stock(lamp).on_hand, stock(lamp).reserved) == (2, 0)
    assert Cart.objects.get(id=cart_id).status == "completed"
    # The next visit starts a new cart rather than reusing the ordered one.
    assert page.evaluate("localStorage.getItem('storefront.cart')") is None


def test_out_of_stock_is_shown_and_blocks_checkout(browser, stocked_product):
    page = browser.page
    sold_out = stocked_product(name="Sold-out scarf", on_hand=0)
    mug = stocked_product(name="Blue mug", on_hand=10)
    lamp = stocked_product(name="Desk lamp", on_hand=2)

    browser.open("/")
    card = product_card(page, sold_out)
    expect(card.locator(".badge")).to_have_text("Out of stock")
    expect(card.get_by_role("button", name="Sold out")).to_be_disabled()
    add_to_cart(page, mug, 1)
    add_to_cart(page, lamp, 2)

    # The last lamps go elsewhere (staff count them out) before the shopper checks out.
    services.set_stock(product=lamp, warehouse=stock(lamp).warehouse, on_hand=0, actor="staff")

    page.get_by_role("link", name=re.compile(r"^Cart")).click()
    expect(page.locator(f'tr[data-sku="{lamp.sku}"] .badge')).to_have_text("Out of stock")
    expect(page.locator(f'tr[data-sku="{mug.sku}"] .badge')).to_have_text("In stock")
    checkout = page.get_by_role("button", name="Go to checkout")
    expect(checkout).to_be_disabled()
    expect(page.locator("[data-stock-notice]")).to_contain_text("Desk lamp is out of stock.")
    browser.snapshot("cart-out-of-stock")

    # Going straight to the checkout page does not start a checkout either.
    browser.open("/checkout/")
    expect(page.get_by_role("alert")).to_contain_text("Desk lamp is out of stock.")
    cart_id = stored_cart_id(page)
    assert Cart.objects.get(id=cart_id).status == "active"
    assert pending_reservations(cart_id) == 0

    browser.open("/cart/")
    page.get_by_role("button", name="Remove Desk lamp").click()
    expect(page.locator("tbody[data-lines] tr")).to_have_count(1)
    expect(page.get_by_role("button", name="Go to checkout")).to_be_enabled()
    expect(page.locator("[data-subtotal]")).to_have_text("$10.00")


def test_stock_taken_during_checkout_warns_within_one_poll(browser, stocked_product, settings):
    settings.STOREFRONT_STOCK_POLL_SECONDS = 2
    page = browser.page
    lamp = stocked_product(name="Desk lamp", on_hand=3, price="40.00")
    mug = stocked_product(name="Blue mug", on_hand=10, price="12.50")

    browser.open("/")
    add_to_cart(page, lamp, 2)
    add_to_cart(page, mug, 1)
    start_checkout_from_cart(page)
    cart_id = stored_cart_id(page)
    expect(page.locator(f'li[data-sku="{lamp.sku}"] .badge')).to_be_visible()
    expect(page.locator("[data-stock-warning]")).to_be_hidden()

    # Operations release this shopper's lamps and another shopper takes two of the three.
    held = Reservation.objects.get(cart_id=cart_id, product=lamp, status=ReservationStatus.PENDING)
    services.release(reservation_ids=[held.id], reason=ReleaseReason.OPS, actor="ops")
    other = CartFactory()
    services.reserve(
        lines=[
            services.ReservationLine(
                product_id=lamp.id, warehouse_id=stock(lamp).warehouse_id, quantity=2
            )
        ],
        ttl_seconds=300,
        cart_id=other.id,
        actor="other shopper",
    )

    warning = page.locator("[data-stock-warning]")
    expect(warning).to_contain_text(
        "Desk lamp: only 1 left, you asked for 2.",
        # one poll interval, plus the time the request takes
        timeout=settings.STOREFRONT_STOCK_POLL_SECONDS * 1000 + 3000,
    )
    expect(page.locator(f'li[data-sku="{lamp.sku}"] .badge')).to_have_text(
        re.compile("Only 1 left")
    )
    expect(page.get_by_role("button", name="Place order")).to_be_disabled()
    browser.snapshot("checkout-stock-changed")

    # Removing a held line asks first (the hold is given up), then says what happened.
    questions: list[str] = []
    page.once("dialog", lambda dialog: (questions.append(dialog.message), dialog.accept()))
    warning.get_by_role("button", name="Remove Desk lamp").click()
    expect(page.locator("[data-notice]")).to_contain_text(
        "Removed Desk lamp. Your hold on 2 items was released."
    )
    assert questions and "holding 2 items" in questions[0]
    expect(page.locator("ul[data-lines] li")).to_have_count(1)
    expect(page.locator("[data-total]")).to_have_text("$12.50")
    expect(warning).to_be_hidden()
    expect(page.get_by_role("button", name="Place order")).to_be_enabled()

    fill_details(page)
    place_order(page)
    order = expect_confirmation(page)
    assert [(i.product_id, i.quantity) for i in order.items.all()] == [(mug.id, 1)]
    assert (stock(lamp).on_hand, stock(lamp).reserved) == (3, 2)


@pytest.mark.parametrize(
    ("method", "code", "title"),
    [
        ("Test card: declined", "PAYMENT_DECLINED", "Your payment was declined"),
        (
            "Test card: capture fails",
            "PAYMENT_CAPTURE_FAILED",
            "We could not complete your payment",
        ),
        (
            "Test card: payment service times out",
            "PAYMENT_TIMEOUT",
            "The payment service did not respond",
        ),
    ],
)
def test_failed_payment_is_explained_and_a_retry_succeeds(
    browser, stocked_product, method, code, title
):
    page = browser.page
    mug, cart_id = two_mugs_ready_to_pay(browser, stocked_product, payment=method)
    place_order(page)

    alert = page.locator(f'[data-notice] [data-error-code="{code}"]')
    expect(alert).to_contain_text(title)
    expect(alert).to_contain_text("no order was placed")
    expect(alert).to_be_focused()
    expect(page.locator("[data-hold]")).to_contain_text("no longer held")
    if code == "PAYMENT_DECLINED":
        browser.snapshot("checkout-payment-declined")
    assert not Order.objects.filter(cart_id=cart_id).exists()
    assert Cart.objects.get(id=cart_id).status == "active"
    assert pending_reservations(cart_id) == 0
    assert stock(mug).reserved == 0

    choose_payment(page, "Card")
    place_order(page)
    order = expect_confirmation(page)
    assert str(order.cart_id) == cart_id
    assert [(i.product_id, i.quantity) for i in order.items.all()] == [(mug.id, 2)]
    assert Payment.objects.filter(cart_id=cart_id, status="captured").count() == 1
    assert (stock(mug).on_hand, stock(mug).reserved) == (3, 0)


def test_expired_checkout_offers_a_restart(browser, stocked_product, settings):
    settings.CHECKOUT_RESERVATION_TTL_SECONDS = 4
    settings.CHECKOUT_EXTENSION_THRESHOLD_SECONDS = 0
    page = browser.page
    # Plenty left after the hold: not a scarce line, so the restart holds for 300 s.
    mug = stocked_product(name="Blue mug", on_hand=20, price="12.50")

    browser.open("/")
    add_to_cart(page, mug, 1)
    start_checkout_from_cart(page)
    cart_id = stored_cart_id(page)
    expect(page.locator("[data-countdown]")).to_have_text(re.compile(r"^0:0[0-4]$"))

    alert = page.locator('[data-notice] [data-error-code="CHECKOUT_EXPIRED"]')
    expect(alert).to_contain_text("Your checkout has expired", timeout=15_000)
    restart = alert.get_by_role("button", name="Start checkout again")
    expect(restart).to_be_visible()
    expect(page.get_by_role("button", name="Place order")).to_be_disabled()
    browser.snapshot("checkout-expired")
    assert Cart.objects.get(id=cart_id).status == "abandoned"
    assert pending_reservations(cart_id) == 0
    assert stock(mug).reserved == 0

    settings.CHECKOUT_RESERVATION_TTL_SECONDS = 300
    restart.click()
    expect(page.locator("[data-notice]")).to_contain_text("Your items are held for you again")
    expect(page.locator("[data-countdown]")).to_have_text(re.compile(r"^[45]:\d\d$"))
    assert Cart.objects.get(id=cart_id).status == "checkout"
    assert stock(mug).reserved == 1

    fill_details(page)
    place_order(page)
    order = expect_confirmation(page)
    assert str(order.cart_id) == cart_id


def test_keyboard_only_purchase_on_a_narrow_screen(browser, stocked_product):
    page = browser.page
    page.set_viewport_size({"width": 360, "height": 740})
    mug = stocked_product(name="Blue mug", on_hand=10, price="12.50")

    def fits_screen() -> bool:
        return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    def unlabelled_controls() -> list[str]:
        return page.evaluate(
            """() => [...document.querySelectorAll('input, select, textarea, button')]
                .filter((el) => el.offsetParent !== null)
                .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                               && !(el.tagName === 'BUTTON' && el.textContent.trim()))
                .map((el) => el.outerHTML)"""
        )

    browser.open("/")
    expect(product_card(page, mug)).to_be_visible()
    assert fits_screen()
    assert unlabelled_controls() == []
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to main content")).to_be_focused()
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    expect(page.get_by_label("Search products")).to_be_focused()
    page.keyboard.press("Tab")  # Search
    page.keyboard.press("Tab")
    expect(product_card(page, mug).get_by_role("link", name="Blue mug")).to_be_focused()
    page.keyboard.press("Tab")
    expect(product_card(page, mug).get_by_label("Quantity")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Add Blue mug to cart")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("[data-notice]")).to_contain_text(f"Added 1 {TIMES} Blue mug to your cart")
    browser.snapshot("products-narrow", full_page=False)

    page.get_by_role("link", name=re.compile(r"^Cart")).focus()
    page.keyboard.press("Enter")
    checkout = page.get_by_role("button", name="Go to checkout")
    expect(checkout).to_be_enabled()
    assert fits_screen()
    assert unlabelled_controls() == []
    checkout.focus()
    page.keyboard.press("Enter")
    expect(page.locator("[data-countdown]")).to_have_text(re.compile(r"^\d+:\d\d$"))
    assert fits_screen()
    assert unlabelled_controls() == []

    page.get_by_role("group", name="Delivery address").get_by_label("Full name").focus()
    for text in ("Ada Lovelace", "12 Analytical Row", None, "London", "N1 9GU"):
        if text is not None:
            page.keyboard.type(text)
        page.keyboard.press("Tab")
    page.keyboard.type("United Kingdom")  # a closed select picks the option typed
    expect(
        page.get_by_role("group", name="Delivery address").get_by_label("Country")
    ).to_have_value("GB")
    browser.snapshot("checkout-narrow")
    page.get_by_role("group", name="Delivery address").get_by_label("Postal code").focus()
    page.keyboard.press("Enter")  # submits the form, as any text field does

    expect_confirmation(page)
    assert fits_screen()


def test_search_history_and_skip_link_keep_the_list(browser, stocked_product):
    page = browser.page
    mug = stocked_product(name="Blue mug", on_hand=10)
    kettle = stocked_product(name="Copper kettle", on_hand=4)
    product_requests: list[str] = []
    page.on(
        "request",
        lambda request: "/api/v1/products/" in request.url and product_requests.append(request.url),
    )

    browser.open("/")
    expect(product_card(page, kettle)).to_be_visible()
    page.get_by_role("link", name="Skip to main content").focus()
    page.keyboard.press("Enter")  # a fragment navigation: fires popstate
    expect(page).to_have_url(re.compile(r"#main$"))
    page.get_by_label("Search products").fill("mug")
    page.get_by_role("button", name="Search").click()
    expect(product_card(page, kettle)).to_have_count(0)
    expect(product_card(page, mug)).to_be_visible()
    # The search is a page of its own (rendered by the server, so it is also a link);
    # each page refreshed its badges once: the skip link did not reload anything.
    expect(page).to_have_url(re.compile(r"/\?search=mug$"))
    assert len(product_requests) == 2, product_requests
    assert "search=mug" in product_requests[1]

    page.go_back()  # back to the unfiltered list
    expect(product_card(page, kettle)).to_be_visible()
    expect(page.get_by_label("Search products")).to_have_value("")
    page.go_forward()
    expect(product_card(page, kettle)).to_have_count(0)
    expect(page.get_by_label("Search products")).to_have_value("mug")


def test_paid_order_still_being_written_is_finished_by_checking_again(browser, stocked_product):
    from tests.support import accept_new_orders, refuse_new_orders

    page = browser.page
    mug, cart_id = two_mugs_ready_to_pay(browser, stocked_product)

    refuse_new_orders()  # the order cannot be written after the capture
    try:
        place_order(page)
        alert = page.locator('[data-notice] [data-error-code="PAYMENT_PROCESSING"]')
        expect(alert).to_contain_text("Your payment was received")
        expect(alert).to_contain_text("You will not be charged again")
        # What happens next, also if the shopper leaves the page.
        expect(alert).to_contain_text("we still finish it for you")
        expect(alert).to_be_focused()
        assert Payment.objects.get(cart_id=cart_id).status == "captured"
        assert not Order.objects.filter(cart_id=cart_id).exists()
    finally:
        accept_new_orders()

    alert.get_by_role("button", name="Check again").click()
    order = expect_confirmation(page)
    assert str(order.cart_id) == cart_id
    assert Payment.objects.filter(cart_id=cart_id).count() == 1
    assert Payment.objects.get(cart_id=cart_id).order_id == order.id
    assert (stock(mug).on_hand, stock(mug).reserved) == (3, 0)
