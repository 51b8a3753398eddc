"""A payment left in flight by an interrupted confirm never strands the shopper (SPEC
§13): past ``PAYMENT_IN_FLIGHT_TIMEOUT_SECONDS`` the shopper's next confirm, the
reconcile job or staff ask the gateway (``status``) and resolve it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from carts.models import Cart, CartStatus
from checkout.confirm import _prepare
from checkout.reconcile import reconcile_captured_payments
from inventory.models import Reservation, ReservationStatus
from orders.models import Order
from payments.gateway import DummyGateway, GatewayError, GatewayState, PaymentRequest, get_gateway
from payments.models import Payment, PaymentStatus
from tests.support import assert_error, assert_stock_invariants, cart_in_checkout, confirm, numbers
from tests.support import stocked as make_stock

pytestmark = pytest.mark.django_db


class StatusUnknownGateway(DummyGateway):
    """A provider that cannot say what became of a payment."""

    def status(self, payment: PaymentRequest):
        raise GatewayError("status lookup failed")


def interrupted(cart: Cart, *, at_gateway: str) -> Payment:
    """The Payment a confirm left behind when its worker died: prepared exactly as the
    confirm prepares it (holds extended to the payment TTL), then the gateway got as far
    as ``at_gateway`` (``none``, ``authorized`` or ``captured``), then the clock moved past
    the in-flight timeout."""
    payment = _prepare(
        cart_id=cart.id,
        idempotency_key="",
        fingerprint="",
        gateway=get_gateway(),
        actor="shopper",
        authorize=None,
    )
    assert isinstance(payment, Payment)
    request = PaymentRequest(str(payment.id), payment.amount, payment.currency, payment.method)
    gateway = DummyGateway()
    if at_gateway in ("authorized", "captured"):
        authorization_id = gateway.authorize(request)
        Payment.objects.filter(id=payment.id).update(
            status=PaymentStatus.AUTHORIZED, authorization_id=authorization_id
        )
        if at_gateway == "captured":
            gateway.capture(request, authorization_id=authorization_id)
    age = django_settings.PAYMENT_IN_FLIGHT_TIMEOUT_SECONDS + 1
    Payment.objects.filter(id=payment.id).update(created_at=timezone.now() - timedelta(seconds=age))
    return Payment.objects.get(id=payment.id)


def test_while_in_flight_the_confirm_answers_409_with_the_time_left(api_client, settings):
    settings.CHECKOUT_CONFIRM_WAIT_SECONDS = 0
    cart = cart_in_checkout((make_stock(), 1))
    payment = interrupted(cart, at_gateway="authorized")
    left = 30
    Payment.objects.filter(id=payment.id).update(
        created_at=timezone.now()
        - timedelta(seconds=settings.PAYMENT_IN_FLIGHT_TIMEOUT_SECONDS - left)
    )

    response = confirm(api_client, cart)

    error = assert_error(response, 409, "INVALID_CART_STATUS")
    assert error["details"]["status"] == "checkout"
    assert left - 2 <= error["details"]["retry_after_seconds"] <= left
    assert response["Retry-After"] == str(error["details"]["retry_after_seconds"])


def test_captured_at_the_gateway_the_next_confirm_gets_the_order(api_client):
    stock = make_stock(on_hand=10)
    cart = cart_in_checkout((stock, 2))
    payment = interrupted(cart, at_gateway="captured")

    response = confirm(api_client, cart, key="after-crash")

    assert response.status_code == 201, response.content
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.CAPTURED and payment.resolved_at is not None
    assert str(payment.order_id) == response.json()["id"]
    # Charged once, stock taken once.
    assert Payment.objects.filter(cart=cart).count() == 1
    assert numbers(stock) == (8, 0)
    assert_stock_invariants()


def test_authorized_at_the_gateway_it_is_voided_and_the_confirm_pays_afresh(api_client):
    stock = make_stock(on_hand=10)
    cart = cart_in_checkout((stock, 2))
    payment = interrupted(cart, at_gateway="authorized")

    response = confirm(api_client, cart)

    assert response.status_code == 201, response.content
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.VOIDED and not payment.needs_attention
    request = PaymentRequest(str(payment.id), payment.amount, payment.currency, payment.method)
    assert DummyGateway().status(request).state == GatewayState.VOIDED
    fresh = Payment.objects.get(cart=cart, status=PaymentStatus.CAPTURED)
    assert str(fresh.order_id) == response.json()["id"]
    assert numbers(stock) == (8, 0)
    assert_stock_invariants()


def test_unknown_at_the_gateway_the_stock_is_released_and_staff_are_told(api_client, settings):
    settings.PAYMENT_GATEWAY = "tests.checkout.test_stale_payments.StatusUnknownGateway"
    stock = make_stock(on_hand=10)
    cart = cart_in_checkout((stock, 2))
    payment = interrupted(cart, at_gateway="authorized")

    response = confirm(api_client, cart)

    assert_error(response, 504, "PAYMENT_TIMEOUT")
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.FAILED
    assert payment.needs_attention and "provider" in payment.attention_reason
    cart.refresh_from_db()
    assert cart.status == CartStatus.ACTIVE
    assert numbers(stock) == (10, 0)
    assert Order.objects.count() == 0
    # Not a lock-out: the shopper starts again and pays.
    settings.PAYMENT_GATEWAY = "payments.gateway.DummyGateway"
    from checkout.services import start_checkout

    start_checkout(cart_id=cart.id, actor="test")
    assert confirm(api_client, cart).status_code == 201
    assert numbers(stock) == (8, 0)


def test_the_reconcile_job_writes_the_order_of_a_payment_captured_at_the_gateway():
    stock = make_stock(on_hand=10)
    cart = cart_in_checkout((stock, 2))
    payment = interrupted(cart, at_gateway="captured")

    assert reconcile_captured_payments(batch_size=10) == 1
    assert reconcile_captured_payments(batch_size=10) == 0

    payment.refresh_from_db()
    assert payment.status == PaymentStatus.CAPTURED and payment.order_id is not None
    assert Cart.objects.get(id=cart.id).status == CartStatus.COMPLETED
    assert numbers(stock) == (8, 0)
    assert_stock_invariants()


def test_the_reconcile_job_releases_a_payment_the_gateway_never_saw():
    stock = make_stock(on_hand=10)
    cart = cart_in_checkout((stock, 2))
    payment = interrupted(cart, at_gateway="none")

    assert reconcile_captured_payments(batch_size=10) == 1

    payment.refresh_from_db()
    assert payment.status == PaymentStatus.FAILED and not payment.needs_attention
    assert Cart.objects.get(id=cart.id).status == CartStatus.ACTIVE
    assert not Reservation.objects.filter(cart=cart, status=ReservationStatus.PENDING).exists()
    assert numbers(stock) == (10, 0)


def test_staff_resolve_from_the_admin(admin_client):
    stock = make_stock(on_hand=10)
    cart = cart_in_checkout((stock, 1))
    payment = interrupted(cart, at_gateway="captured")

    response = admin_client.post(
        "/admin/payments/payment/",
        {"action": "reconcile_now", "_selected_action": [str(payment.id)]},
        follow=True,
    )

    assert response.status_code == 200
    payment.refresh_from_db()
    assert payment.order_id is not None
    assert numbers(stock) == (9, 0)
