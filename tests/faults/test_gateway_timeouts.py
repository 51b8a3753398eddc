"""The payment provider stops answering in the middle of a confirm.

After a successful authorization, a capture that times out (every retry) voids the
authorization, releases the reservations and returns the cart to ``active``: 504
``PAYMENT_TIMEOUT``, nothing charged, no stock held, and the shopper can pay again. If
even the void gets no answer, the payment is flagged for staff. A timeout at the
authorization itself (the dummy gateway's ``test_timeout``) releases the stock too.
"""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings

from carts.models import Cart
from inventory.models import Reservation, StockLevel
from orders.models import Order
from payments.models import Payment, PaymentStatus
from tests.faults import gateways
from tests.support import ADDRESS, assert_error, assert_stock_invariants

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_calls():
    gateways.CALLS.clear()
    yield
    gateways.CALLS.clear()


def _stock() -> list[tuple[int, int]]:
    return [(s.on_hand, s.reserved) for s in StockLevel.objects.order_by("id")]


def _assert_stock_released(ready) -> None:
    assert _stock() == [(10, 0)] * 2
    released = Reservation.objects.filter(cart_id=ready.cart_id)
    assert released.count() == 2
    assert {(r.status, r.release_reason) for r in released} == {("released", "payment_failed")}
    assert Cart.objects.get(id=ready.cart_id).status == "active"
    assert Order.objects.count() == 0
    assert_stock_invariants()


def test_capture_timeout_after_authorization_voids_it_and_releases_the_stock(
    ready_checkout, settings
):
    settings.PAYMENT_GATEWAY = "tests.faults.gateways.CaptureTimeoutGateway"
    ready = ready_checkout(payment_method="test_capture_timeout")

    response = ready.confirm()

    assert_error(response, 504, "PAYMENT_TIMEOUT")
    payment = Payment.objects.get()
    assert payment.status == PaymentStatus.VOIDED
    assert payment.voided_at is not None
    assert payment.authorization_id and not payment.payment_id
    assert payment.attempts == 1 + django_settings.PAYMENT_MAX_TRIES
    assert not payment.needs_attention
    ref = str(payment.id)
    calls = list(gateways.CALLS)
    assert calls == [
        ("authorize", ref, ""),
        *[("capture", ref, payment.authorization_id)] * django_settings.PAYMENT_MAX_TRIES,
        ("void", ref, payment.authorization_id),
    ]
    _assert_stock_released(ready)

    # The shopper starts again and pays with a working card: one order, stock taken once.
    client = ready.client()
    assert client.post(f"{ready.base}/checkout/", {}, format="json").status_code == 201
    patched = client.patch(
        f"{ready.base}/checkout/",
        {"shipping_address": ADDRESS, "payment_method": "card"},
        format="json",
    )
    assert patched.status_code == 200
    assert ready.confirm("confirm-2").status_code == 201
    assert _stock() == [(8, 0)] * 2
    assert Payment.objects.filter(status=PaymentStatus.CAPTURED).count() == 1
    assert_stock_invariants()


def test_capture_and_void_timeouts_flag_the_payment_for_staff(ready_checkout, settings):
    settings.PAYMENT_GATEWAY = "tests.faults.gateways.CaptureAndVoidTimeoutGateway"
    ready = ready_checkout(payment_method="test_capture_timeout")

    response = ready.confirm()

    assert_error(response, 504, "PAYMENT_TIMEOUT")
    payment = Payment.objects.get()
    assert payment.status == PaymentStatus.FAILED
    assert payment.needs_attention
    assert "void" in payment.attention_reason.lower()
    voids = [call for call in gateways.CALLS if call[0] == "void"]
    assert len(voids) == django_settings.PAYMENT_MAX_TRIES
    _assert_stock_released(ready)


def test_authorization_timeout_releases_the_stock(ready_checkout, settings):
    settings.PAYMENT_GATEWAY = "tests.faults.gateways.RecordingGateway"
    ready = ready_checkout(payment_method="test_timeout")

    response = ready.confirm()

    assert_error(response, 504, "PAYMENT_TIMEOUT")
    payment = Payment.objects.get()
    assert payment.status == PaymentStatus.FAILED
    assert payment.attempts == django_settings.PAYMENT_MAX_TRIES
    assert not payment.authorization_id
    # The provider may have authorized a request whose answer never came: whatever it
    # holds under the payment's reference is voided.
    ref = str(payment.id)
    expected = [("authorize", ref, "")] * django_settings.PAYMENT_MAX_TRIES
    calls = list(gateways.CALLS)
    assert calls == [*expected, ("void", ref, "")]
    assert not payment.needs_attention
    _assert_stock_released(ready)
