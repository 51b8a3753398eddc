"""The storefront while the payment gateway's circuit breaker is open: the shopper is told
payments are unavailable with a countdown to the next try, the hold (and its countdown)
stays, and placing the order again once the breaker lets payments through succeeds."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from carts.models import Cart
from payments import breaker
from payments.gateway import GatewayTimeout, PaymentRequest, get_gateway
from payments.models import Payment
from tests.storefront.browser import (
    expect_confirmation,
    pending_reservations,
    place_order,
    stock,
    two_mugs_ready_to_pay,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def open_the_breaker() -> None:
    """The provider stops answering: enough timed-out calls to open the breaker."""
    request = PaymentRequest(reference="r", amount=Decimal("1"), currency="USD", method="")
    hanging = PaymentRequest(**{**request.__dict__, "method": "test_timeout"})
    gateway = get_gateway()
    for _ in range(2):
        with pytest.raises(GatewayTimeout):
            gateway.authorize(hanging)
    assert breaker.is_open()


def test_payments_unavailable_keeps_the_hold_and_counts_down_to_the_next_try(
    browser, stocked_product, settings
):
    settings.PAYMENT_BREAKER_FAILURES = 2
    settings.PAYMENT_BREAKER_RESET_SECONDS = 4
    page = browser.page
    mug, cart_id = two_mugs_ready_to_pay(browser, stocked_product)
    open_the_breaker()

    place_order(page)

    alert = page.locator('[data-notice] [data-error-code="PAYMENT_UNAVAILABLE"]')
    expect(alert).to_contain_text("Payments are unavailable at the moment")
    expect(alert).to_contain_text("did not try to charge you")
    expect(alert).to_contain_text(re.compile(r"Payments are unavailable, try again in [1-4] s\."))
    expect(alert).to_be_focused()
    # The hold is kept, and so is its countdown.
    expect(page.locator("[data-countdown]")).to_have_text(re.compile(r"^\d+:\d\d$"))
    expect(page.locator("[data-hold]")).not_to_contain_text("no longer held")
    assert Cart.objects.get(id=cart_id).status == "checkout"
    assert pending_reservations(cart_id) == 1
    assert stock(mug).reserved == 2
    assert not Payment.objects.filter(cart_id=cart_id).exists()

    # The countdown runs out; the breaker lets the next payment through as its trial.
    expect(alert).to_contain_text("You can try again now.", timeout=10_000)
    alert.get_by_role("button", name="Place your order again").click()
    order = expect_confirmation(page)
    assert str(order.cart_id) == cart_id
    assert Payment.objects.filter(cart_id=cart_id, status="captured").count() == 1
    assert (stock(mug).on_hand, stock(mug).reserved) == (3, 0)
    assert breaker.snapshot().state == "closed"
