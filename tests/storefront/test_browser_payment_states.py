"""The storefront tells the shopper what happens at every step of a payment that is not
simply paid (SPEC §13): removing a held line during checkout asks first and says what was
released; a payment still in flight is "being checked" with a countdown, after which
placing the order again finishes it."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from inventory.models import ReleaseReason, Reservation, ReservationStatus
from orders.models import Order
from payments.models import Payment, PaymentStatus
from tests.storefront.browser import (
    add_to_cart,
    expect_confirmation,
    place_order,
    stock,
    two_mugs_ready_to_pay,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_removing_a_held_line_asks_first_and_says_the_hold_was_released(browser, stocked_product):
    page = browser.page
    mug = stocked_product(name="Blue mug", on_hand=5, price="12.50")
    lamp = stocked_product(name="Desk lamp", on_hand=5, price="40.00")
    browser.open("/")
    add_to_cart(page, mug, 2)
    add_to_cart(page, lamp, 1)
    page.get_by_role("link", name=re.compile(r"^Cart")).click()
    page.get_by_role("button", name="Go to checkout").click()
    expect(page).to_have_url(re.compile(r"/checkout/$"))
    expect(page.locator("[data-countdown]")).to_have_text(re.compile(r"^\d+:\d\d$"))
    browser.open("/cart/")
    row = page.locator("tr", has_text="Blue mug")
    expect(row).to_be_visible()

    # Asked first; saying no keeps the line and its hold.
    questions: list[str] = []
    page.once("dialog", lambda dialog: (questions.append(dialog.message), dialog.dismiss()))
    row.get_by_role("button", name="Remove Blue mug").click()
    expect(page.locator("tr", has_text="Blue mug")).to_be_visible()
    assert questions == [
        "Remove Blue mug from your order? We are holding 2 items for you; they will be "
        "released and other shoppers may buy them."
    ]
    assert (stock(mug).on_hand, stock(mug).reserved) == (5, 2)

    # Saying yes releases the hold, and the page says so.
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Remove Blue mug").click()
    expect(page.locator("[data-notice]")).to_contain_text(
        "Removed Blue mug. Your hold on 2 items was released."
    )
    expect(page.locator("tr", has_text="Blue mug")).to_have_count(0)
    assert (stock(mug).on_hand, stock(mug).reserved) == (5, 0)
    released = Reservation.objects.get(product=mug)
    assert released.status == ReservationStatus.RELEASED
    assert released.release_reason != ReleaseReason.PAYMENT_FAILED
    assert (stock(lamp).on_hand, stock(lamp).reserved) == (5, 1)


def test_a_payment_in_flight_is_being_checked_with_a_countdown_then_finishes(
    browser, stocked_product, settings
):
    settings.CHECKOUT_CONFIRM_WAIT_SECONDS = 0
    settings.PAYMENT_IN_FLIGHT_TIMEOUT_SECONDS = 4
    page = browser.page
    mug, cart_id = two_mugs_ready_to_pay(browser, stocked_product)
    # An earlier attempt (another tab, a dropped connection) is still paying.
    interrupted = Payment.objects.create(
        cart_id=cart_id,
        gateway="dummy",
        method="card",
        amount=Decimal("25.00"),
        currency="USD",
        status=PaymentStatus.PENDING,
    )

    place_order(page)

    alert = page.locator('[data-notice] [data-error-code="PAYMENT_BEING_CHECKED"]')
    expect(alert).to_contain_text("Your payment is being checked")
    expect(alert).to_contain_text("You will not be charged twice")
    expect(alert).to_contain_text(re.compile(r"You can place your order again in [1-4] s\."))
    expect(alert).not_to_contain_text("cannot be changed")
    assert not Order.objects.filter(cart_id=cart_id).exists()

    again = alert.get_by_role("button", name="Place your order again")
    expect(again).to_be_visible(timeout=8_000)
    expect(alert).to_contain_text("You can place your order again now.")
    again.click()

    order = expect_confirmation(page)
    assert str(order.cart_id) == cart_id
    interrupted.refresh_from_db()
    assert interrupted.status == PaymentStatus.FAILED  # the gateway never saw it
    assert Payment.objects.filter(cart_id=cart_id, status=PaymentStatus.CAPTURED).count() == 1
    assert (stock(mug).on_hand, stock(mug).reserved) == (3, 0)
