"""A captured payment is never lost: when the order cannot be written after the capture
(here the database refuses it, through a trigger the test installs), the payment stays
captured, the shopper is told the order is being finalised, and reconciliation writes
the order later — or flags the payment for staff."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from carts.locks import lock_cart
from carts.models import CartStatus
from checkout.reconcile import GRACE_SECONDS, reconcile_captured_payments
from checkout.services import abandon_checkout
from inventory import services as inventory
from inventory.models import (
    Reservation,
    ReservationEvent,
    ReservationEventKind,
    ReservationStatus,
    Warehouse,
)
from orders.models import Order
from payments.gateway import DummyGateway, GatewayState, PaymentRequest
from payments.models import Payment, PaymentStatus
from tests.support import (
    API,
    TOKEN,
    accept_new_orders,
    assert_stock_invariants,
    cart_in_checkout,
    confirm,
    numbers,
    refuse_new_orders,
    stocked,
)


def later(seconds: int = GRACE_SECONDS + 1):
    return time_machine.travel(timezone.now() + timedelta(seconds=seconds))


def confirmed_events(cart) -> int:
    return ReservationEvent.objects.filter(
        kind=ReservationEventKind.CONFIRMED, reservation__cart_id=cart.id
    ).count()


def paid_without_order(api_client, stock, *, quantity: int = 2, key: str | None = None):
    """A cart whose confirm captured the payment but could not write the order."""
    cart = cart_in_checkout((stock, quantity))
    refuse_new_orders()
    response = confirm(api_client, cart, key=key)
    accept_new_orders()
    return cart, response


@pytest.mark.django_db
def test_order_failure_after_capture_keeps_the_payment_and_answers_processing(api_client):
    stock = stocked(on_hand=5)

    cart, response = paid_without_order(api_client, stock, key="k-1")

    assert response.status_code == 202, response.content
    payment = Payment.objects.get(cart=cart)
    assert response.json() == {
        "status": "processing",
        "cart_id": str(cart.id),
        "payment_id": str(payment.id),
        "message": "Your payment was received; your order is being finalised.",
    }
    assert payment.status == PaymentStatus.CAPTURED
    assert payment.order_id is None
    assert payment.error_code == "ORDER_NOT_WRITTEN"
    assert "refused by the test" in payment.error_message
    assert not Order.objects.exists()
    # Nothing was deducted, the stock is still held for this cart.
    assert numbers(stock) == (5, 2)
    cart.refresh_from_db()
    assert cart.status == CartStatus.CHECKOUT

    # While the order still cannot be written, confirming again answers the same 202 and
    # never pays a second time.
    refuse_new_orders()
    for key in ("k-1", None, "k-2"):
        again = confirm(api_client, cart, key=key)
        assert again.status_code == 202
        assert again.json()["payment_id"] == str(payment.id)
    accept_new_orders()
    assert Payment.objects.filter(cart=cart).count() == 1
    assert not Order.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["k-1", None])
def test_a_retry_writes_the_order_of_a_captured_payment(api_client, key):
    stock = stocked(on_hand=5)
    cart, _ = paid_without_order(api_client, stock, key="k-1")
    payment = Payment.objects.get(cart=cart)
    held = sorted(Reservation.objects.filter(cart_id=cart.id).values_list("id", flat=True))

    retry = confirm(api_client, cart, key=key)

    assert retry.status_code == 201, retry.content
    order = Order.objects.get(cart=cart)
    assert retry.json()["id"] == str(order.id)
    payment.refresh_from_db()
    assert payment.order_id == order.id and payment.status == PaymentStatus.CAPTURED
    assert Payment.objects.filter(cart=cart).count() == 1  # paid once
    assert sorted(order.reservations.values_list("id", flat=True)) == held
    assert numbers(stock) == (3, 0)
    assert confirmed_events(cart) == 1
    cart.refresh_from_db()
    assert cart.status == CartStatus.COMPLETED
    # The same key again is a repeat; reconciliation finds nothing left to do.
    repeat = confirm(api_client, cart, key="k-1")
    assert repeat.status_code == 200 and repeat.json()["id"] == str(order.id)
    with later():
        assert reconcile_captured_payments(batch_size=10) == 0


@pytest.mark.django_db
def test_a_retry_leaves_a_payment_flagged_for_staff_alone(api_client):
    stock = stocked(on_hand=5)
    cart, _ = paid_without_order(api_client, stock, key="k-1")
    Payment.objects.filter(cart=cart).update(needs_attention=True, attention_reason="refund it")

    again = confirm(api_client, cart, key="k-1")

    assert again.status_code == 202, again.content
    assert not Order.objects.exists()
    assert numbers(stock) == (5, 2)


@pytest.mark.django_db
def test_reconciliation_writes_the_order_of_a_captured_payment(api_client):
    stock = stocked(on_hand=5)
    cart, _ = paid_without_order(api_client, stock, key="k-1")
    payment = Payment.objects.get(cart=cart)

    # A confirm that just captured is left to finish its own order.
    assert reconcile_captured_payments(batch_size=10) == 0
    with later():
        assert reconcile_captured_payments(batch_size=10) == 1
        assert reconcile_captured_payments(batch_size=10) == 0

    order = Order.objects.get(cart=cart)
    payment.refresh_from_db()
    assert payment.order_id == order.id
    assert payment.status == PaymentStatus.CAPTURED
    assert not payment.needs_attention
    assert numbers(stock) == (3, 0)
    assert confirmed_events(cart) == 1
    item = order.items.get()
    assert item.reservations.get().status == ReservationStatus.CONFIRMED
    assert (order.total, item.quantity) == (Decimal("20.00"), 2)
    cart.refresh_from_db()
    assert cart.status == CartStatus.COMPLETED
    # The shopper's retry with the same key now gets the order.
    retry = confirm(api_client, cart, key="k-1")
    assert (retry.status_code, retry.json()["id"]) == (200, str(order.id))
    seen = api_client.get(f"{API}/orders/{order.id}/", HTTP_X_CART_TOKEN=TOKEN)
    assert seen.json()["payment"]["status"] == "captured"


@pytest.mark.django_db
def test_reconciliation_reserves_again_when_the_checkout_was_abandoned_meanwhile(api_client):
    stock = stocked(on_hand=5)
    cart, _ = paid_without_order(api_client, stock)

    with later(settings.CHECKOUT_PAYMENT_TTL_SECONDS + 1):
        assert inventory.expire_due(batch_size=100) == 1
        assert abandon_checkout(cart_id=cart.id, reason="expired", actor="sweeper")
        assert numbers(stock) == (5, 0)
        assert reconcile_captured_payments(batch_size=10) == 1

    order = Order.objects.get(cart=cart)
    assert Payment.objects.get(cart=cart).order_id == order.id
    assert numbers(stock) == (3, 0)
    assert confirmed_events(cart) == 1
    cart.refresh_from_db()
    assert cart.status == CartStatus.COMPLETED


@pytest.mark.django_db
def test_reconciliation_flags_the_payment_for_staff_when_the_stock_is_gone(api_client):
    stock = stocked(on_hand=2)
    cart, _ = paid_without_order(api_client, stock)
    with later(settings.CHECKOUT_PAYMENT_TTL_SECONDS + 1):
        abandon_checkout(cart_id=cart.id, reason="expired", actor="sweeper")
        inventory.reserve(
            lines=[inventory.ReservationLine(stock.product_id, stock.warehouse_id, 2)],
            ttl_seconds=300,
        )

        assert reconcile_captured_payments(batch_size=10) == 1
        assert reconcile_captured_payments(batch_size=10) == 0

    payment = Payment.objects.get(cart=cart)
    assert payment.needs_attention
    assert payment.attention_reason.startswith("The order could not be written: InsufficientStock")
    assert payment.status == PaymentStatus.CAPTURED and payment.order_id is None
    assert not Order.objects.exists()
    assert numbers(stock) == (2, 2)  # the other shopper's hold, untouched


@pytest.mark.django_db
def test_reconciliation_resolves_payments_left_in_flight_by_an_interrupted_confirm():
    cart = cart_in_checkout((stocked(), 1))
    fields = {"cart": cart, "gateway": "dummy", "method": "card", "currency": "USD"}
    old = Payment.objects.create(**fields, amount=Decimal("10.00"), status=PaymentStatus.AUTHORIZED)
    recent = Payment.objects.create(**fields, amount=Decimal("10.00"))
    # The provider did authorize the interrupted one.
    DummyGateway().authorize(
        PaymentRequest(
            reference=str(old.id), amount=old.amount, currency=old.currency, method="card"
        )
    )
    Payment.objects.filter(id=old.id).update(
        created_at=timezone.now()
        - timedelta(seconds=settings.PAYMENT_IN_FLIGHT_TIMEOUT_SECONDS + 5)
    )

    assert reconcile_captured_payments(batch_size=10) == 1
    assert reconcile_captured_payments(batch_size=10) == 0

    old.refresh_from_db()
    recent.refresh_from_db()
    # Authorized at the gateway → voided there, closed here, the stock released.
    assert old.status == PaymentStatus.VOIDED and not old.needs_attention
    assert (
        DummyGateway()
        .status(
            PaymentRequest(reference=str(old.id), amount=old.amount, currency="USD", method="card")
        )
        .state
        == GatewayState.VOIDED
    )
    assert recent.status == PaymentStatus.PENDING and not recent.needs_attention
    cart.refresh_from_db()
    assert cart.status == CartStatus.ACTIVE
    assert not Reservation.objects.filter(cart=cart, status=ReservationStatus.PENDING).exists()
    assert_stock_invariants()


@pytest.mark.django_db
def test_reconciliation_works_in_batches():
    carts = [cart_in_checkout((stocked(), 1)) for _ in range(3)]
    for cart in carts:
        Payment.objects.create(
            cart=cart,
            gateway="dummy",
            method="card",
            amount=Decimal("10.00"),
            currency="USD",
            status=PaymentStatus.CAPTURED,
            authorization_id="auth_x",
            payment_id="pay_x",
            captured_at=timezone.now(),
        )
    with later():
        assert reconcile_captured_payments(batch_size=2) == 2
        assert reconcile_captured_payments(batch_size=2) == 1
        assert reconcile_captured_payments(batch_size=2) == 0
    assert Order.objects.count() == 3


@pytest.mark.django_db(transaction=True)
def test_reconciliation_skips_a_cart_whose_confirm_holds_it():
    Warehouse.objects.get_or_create(
        code="default", defaults={"name": "Default", "is_default": True}
    )
    cart = cart_in_checkout((stocked(on_hand=5), 1))
    Payment.objects.create(
        cart=cart,
        gateway="dummy",
        method="card",
        amount=Decimal("10.00"),
        currency="USD",
        status=PaymentStatus.CAPTURED,
        captured_at=timezone.now() - timedelta(seconds=GRACE_SECONDS + 1),
    )
    locked, release = threading.Event(), threading.Event()

    def confirm_in_progress() -> None:
        try:
            with transaction.atomic():
                lock_cart(cart.id)
                locked.set()
                release.wait(timeout=10)
        finally:
            connection.close()

    holder = threading.Thread(target=confirm_in_progress)
    holder.start()
    try:
        assert locked.wait(timeout=10)
        assert reconcile_captured_payments(batch_size=10) == 0
    finally:
        release.set()
        holder.join(timeout=10)
    assert reconcile_captured_payments(batch_size=10) == 1
    assert Order.objects.filter(cart=cart).exists()
