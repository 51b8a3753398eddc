"""Refunds of cancelled orders (SPEC §13): the captured amount goes back exactly once;
a refused refund stays owed (``refund_pending``), is retried by the reconcile job with
backoff and is flagged for staff after ``REFUND_MAX_ATTEMPTS``."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone
from prometheus_client import REGISTRY

from checkout.confirm import confirm_checkout
from checkout.reconcile import reconcile_captured_payments
from orders.models import Order, OrderStatus
from orders.services import cancel_order, change_order_status
from payments.gateway import DummyGateway, GatewayState, PaymentRequest
from payments.models import Payment, PaymentStatus
from payments.refunds import attempt_refund, refund_key_of
from tests.support import API, TOKEN, cart_in_checkout, numbers, stocked

pytestmark = pytest.mark.django_db


def place_order(*lines, payment_method: str = "card") -> Order:
    cart = cart_in_checkout(*lines, payment_method=payment_method)
    result = confirm_checkout(cart_id=cart.id)
    assert result.created
    return result.order


def at_gateway(payment: Payment):
    return DummyGateway().status(
        PaymentRequest(
            reference=str(payment.id),
            amount=payment.amount,
            currency=payment.currency,
            method=payment.method,
        )
    )


def refunds_counted(outcome: str) -> float:
    return REGISTRY.get_sample_value("payments_refunds_total", {"outcome": outcome}) or 0.0


def money_unaccounted() -> Decimal:
    """Captured money that is on no live order, not refunded and not owed/flagged."""
    lost = Decimal("0")
    for payment in Payment.objects.exclude(payment_id=""):
        if payment.status == PaymentStatus.REFUNDED:
            continue
        if payment.status == PaymentStatus.REFUND_PENDING:
            continue  # owed: being retried, or flagged for staff
        order = payment.order
        if order is None or order.status == OrderStatus.CANCELLED:
            lost += payment.amount
    return lost


def test_shopper_cancel_refunds_the_captured_amount_once(
    api_client, django_capture_on_commit_callbacks
):
    stock = stocked(on_hand=5, price="4.25")
    order = place_order((stock, 2))
    before = refunds_counted("refunded")

    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post(
            f"{API}/orders/{order.id}/cancel/", {}, format="json", HTTP_X_CART_TOKEN=TOKEN
        )

    assert response.status_code == 200
    payment = Payment.objects.get(order=order)
    assert payment.status == PaymentStatus.REFUNDED
    assert payment.refunded_amount == Decimal("8.50") == order.total
    assert payment.refund_attempts == 1 and payment.refund_id.startswith("refund_")
    assert at_gateway(payment).state == GatewayState.REFUNDED
    assert at_gateway(payment).refund_ids == (payment.refund_id,)
    assert refunds_counted("refunded") == before + 1
    assert numbers(stock) == (5, 0)

    shown = api_client.get(f"{API}/orders/{order.id}/", HTTP_X_CART_TOKEN=TOKEN).json()
    assert shown["status"] == "cancelled"
    assert shown["payment"]["status"] == "refunded"
    assert shown["payment"]["refunded_amount"] == "8.50"
    assert money_unaccounted() == 0


def test_staff_cancel_through_the_status_flow_refunds_too(django_capture_on_commit_callbacks):
    order = place_order((stocked(), 1))
    change_order_status(order_id=order.id, status=OrderStatus.CONFIRMED, actor="staff")

    with django_capture_on_commit_callbacks(execute=True):
        change_order_status(order_id=order.id, status=OrderStatus.CANCELLED, actor="staff")

    assert Payment.objects.get(order=order).status == PaymentStatus.REFUNDED


def test_the_gateway_is_called_after_the_commit_not_under_the_order_lock(
    django_capture_on_commit_callbacks,
):
    order = place_order((stocked(), 1))

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        cancel_order(order_id=order.id, actor="staff", by_staff=True)

    # Inside the transaction only the intent was recorded; the gateway is untouched.
    payment = Payment.objects.get(order=order)
    assert payment.status == PaymentStatus.REFUND_PENDING
    assert payment.refund_key == refund_key_of(payment)
    assert payment.refund_attempts == 0
    assert at_gateway(payment).state == GatewayState.CAPTURED
    refund_calls = [cb for cb in callbacks if "request_refund" in cb.__qualname__]
    assert len(refund_calls) == 1
    refund_calls[0]()
    assert Payment.objects.get(order=order).status == PaymentStatus.REFUNDED


def test_a_repeated_attempt_with_the_same_key_refunds_once(django_capture_on_commit_callbacks):
    order = place_order((stocked(), 1))
    with django_capture_on_commit_callbacks(execute=False):
        cancel_order(order_id=order.id, actor="staff", by_staff=True)
    payment = Payment.objects.get(order=order)
    # A worker refunded at the gateway and died before recording it.
    DummyGateway().refund(
        PaymentRequest(str(payment.id), payment.amount, payment.currency, payment.method),
        payment_id=payment.payment_id,
        amount=payment.amount,
        idempotency_key=payment.refund_key,
    )

    attempt_refund(payment_id=payment.id, actor="reconcile")
    attempt_refund(payment_id=payment.id, actor="reconcile", force=True)

    payment.refresh_from_db()
    assert payment.status == PaymentStatus.REFUNDED
    assert len(at_gateway(payment).refund_ids) == 1
    assert at_gateway(payment).refund_ids == (payment.refund_id,)


def test_a_refused_refund_stays_owed_is_retried_with_backoff_and_then_flagged(
    settings, django_capture_on_commit_callbacks
):
    settings.REFUND_MAX_ATTEMPTS = 3
    settings.REFUND_RETRY_BASE_SECONDS = 60
    stock = stocked(on_hand=5)
    order = place_order((stock, 1), payment_method="test_refund_fail")
    failed, flagged = refunds_counted("failed"), refunds_counted("flagged")

    with django_capture_on_commit_callbacks(execute=True):
        cancel_order(order_id=order.id, actor="shopper", by_staff=False)

    order.refresh_from_db()
    payment = Payment.objects.get(order=order)
    assert order.status == OrderStatus.CANCELLED
    assert numbers(stock) == (5, 0)
    assert payment.status == PaymentStatus.REFUND_PENDING
    assert payment.refund_attempts == 1 and not payment.needs_attention
    assert payment.error_code == "REFUND_FAILED"
    assert refunds_counted("failed") == failed + 1

    # Not due yet: the job leaves it alone.
    assert reconcile_captured_payments(batch_size=10) == 0
    # Due after the backoff (60 s, then 120 s): retried, still refused.
    now = timezone.now()
    with time_machine.travel(now + timedelta(seconds=61)):
        assert reconcile_captured_payments(batch_size=10) == 1
        assert reconcile_captured_payments(batch_size=10) == 0
    payment.refresh_from_db()
    assert payment.refund_attempts == 2 and not payment.needs_attention
    with time_machine.travel(now + timedelta(seconds=61 + 121)):
        assert reconcile_captured_payments(batch_size=10) == 1
    payment.refresh_from_db()
    assert payment.refund_attempts == 3
    assert payment.status == PaymentStatus.REFUND_PENDING
    assert payment.needs_attention and "refund" in payment.attention_reason.lower()
    assert refunds_counted("failed") == failed + 2
    assert refunds_counted("flagged") == flagged + 1
    # Flagged: staff own it, the job stops.
    with time_machine.travel(now + timedelta(days=1)):
        assert reconcile_captured_payments(batch_size=10) == 0
    assert at_gateway(payment).state == GatewayState.CAPTURED
    assert money_unaccounted() == 0


def test_cancelling_an_order_whose_refund_is_owed_does_not_refund_twice(
    django_capture_on_commit_callbacks,
):
    order = place_order((stocked(), 1))
    with django_capture_on_commit_callbacks(execute=True):
        cancel_order(order_id=order.id, actor="staff", by_staff=True)
    payment = Payment.objects.get(order=order)

    assert attempt_refund(payment_id=payment.id, actor="staff", force=True) is None
    assert len(at_gateway(payment).refund_ids) == 1
