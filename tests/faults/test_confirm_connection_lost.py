"""The database connection of a confirm is lost at a chosen statement (the backend is
terminated with ``pg_terminate_backend`` while it waits on a table lock this test holds):
nothing is half-written, and the shopper's retry gets the order.

* lost **before the payment** (inserting the Payment row of the prepare step): the
  whole prepare rolls back — no payment, no idempotency record, reservations exactly as
  they were; the answer is 503 ``SERVICE_UNAVAILABLE``; a retry with the same
  ``Idempotency-Key`` pays once and answers 201.
* lost **after the capture** (inserting the order's items): no order and no order item
  exist, stock is not deducted, reservations stay pending, and the captured payment is
  kept as the recovery record (answer 202 processing); the shopper's retry writes the
  order from those reservations without paying again (201), a repeat answers 200 with
  it, and reconciliation finds nothing left to do.
"""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.utils import timezone

from carts.models import Cart
from checkout.models import IdempotencyKey
from inventory.models import Reservation, ReservationEvent, StockLevel
from orders.models import Order, OrderItem
from payments.models import Payment, PaymentStatus
from tests.faults.dbfaults import InThread, raw_connection, terminate, wait_for_backend
from tests.support import assert_error, assert_stock_invariants

pytestmark = pytest.mark.django_db(transaction=True)


def _state(cart_id: str) -> dict:
    cart = Cart.objects.get(id=cart_id)
    return {
        "cart": (cart.status, cart.expires_at),
        "reservations": list(
            Reservation.objects.filter(cart_id=cart_id)
            .order_by("id")
            .values_list("id", "status", "quantity", "expires_at", "extension_count")
        ),
        "stock": list(StockLevel.objects.order_by("id").values_list("id", "on_hand", "reserved")),
        "events": ReservationEvent.objects.count(),
        "payments": Payment.objects.count(),
        "keys": IdempotencyKey.objects.count(),
        "orders": Order.objects.count(),
    }


def _confirm_losing_connection_at(ready, *, table: str, key: str):
    """Confirms while ``table`` is share-locked; terminates the confirm's backend once it
    waits to insert into ``table``; returns the answer."""
    with raw_connection() as locker, raw_connection() as killer:
        with locker.transaction():
            locker.execute(f'LOCK TABLE "{table}" IN SHARE MODE')
            request = InThread(lambda: ready.confirm(key))
            pid = wait_for_backend(killer, query_like=f'INSERT INTO "{table}"%')
            terminate(killer, pid)
        return request.join()


def test_connection_lost_before_payment_rolls_back_and_a_retry_succeeds(ready_checkout):
    ready = ready_checkout()
    before = _state(ready.cart_id)

    response = _confirm_losing_connection_at(ready, table="payments_payment", key="k-1")

    assert_error(response, 503, "SERVICE_UNAVAILABLE")
    assert response["Retry-After"] == "1"
    assert _state(ready.cart_id) == before
    assert before["payments"] == before["keys"] == before["orders"] == 0
    assert_stock_invariants()

    retry = ready.confirm("k-1")
    assert retry.status_code == 201, retry.content
    assert Payment.objects.get().status == PaymentStatus.CAPTURED
    assert [(s.on_hand, s.reserved) for s in StockLevel.objects.order_by("id")] == [(8, 0)] * 2
    assert ready.confirm("k-1").json()["id"] == retry.json()["id"]
    assert_stock_invariants()


def test_connection_lost_after_capture_keeps_the_payment_and_a_retry_writes_the_order(
    ready_checkout,
):
    ready = ready_checkout()
    reserved_before = _state(ready.cart_id)["reservations"]

    response = _confirm_losing_connection_at(ready, table="orders_orderitem", key="k-1")

    assert response.status_code == 202, response.content
    payment = Payment.objects.get()
    assert response.json()["status"] == "processing"
    assert response.json()["payment_id"] == str(payment.id)
    # Nothing of the order was written; the money is recorded.
    assert Order.objects.count() == 0
    assert OrderItem.objects.count() == 0
    assert payment.status == PaymentStatus.CAPTURED
    assert payment.order_id is None
    assert payment.payment_id
    assert Cart.objects.get(id=ready.cart_id).status == "checkout"
    assert [r[:3] for r in _state(ready.cart_id)["reservations"]] == [
        r[:3] for r in reserved_before
    ]
    assert [(s.on_hand, s.reserved) for s in StockLevel.objects.order_by("id")] == [(10, 2)] * 2
    assert_stock_invariants()

    retry = ready.confirm("k-1")
    assert retry.status_code == 201, retry.content
    order = Order.objects.get()
    assert retry.json()["id"] == str(order.id)
    payment.refresh_from_db()
    assert payment.order_id == order.id and not payment.needs_attention
    assert Payment.objects.count() == 1  # never a second payment
    assert sorted(Reservation.objects.filter(order=order).values_list("id", flat=True)) == [
        r[0] for r in reserved_before
    ]
    assert set(Reservation.objects.values_list("status", flat=True)) == {"confirmed"}
    assert [(s.on_hand, s.reserved) for s in StockLevel.objects.order_by("id")] == [(8, 0)] * 2
    assert_stock_invariants()

    with time_machine.travel(timezone.now() + timedelta(minutes=2), tick=True):
        out = StringIO()
        call_command("reconcile_payments", "--no-progress", stdout=out)
    assert Order.objects.count() == 1
    final = ready.confirm("k-1")
    assert final.status_code == 200
    assert final.json()["id"] == str(order.id)
    assert Payment.objects.count() == 1
    assert_stock_invariants()
