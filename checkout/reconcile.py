"""Reconciliation of payments (SPEC §7.4, §9): a captured payment is never lost.

A payment ``captured`` without an order means the order could not be written right
after the capture (the confirm answered 202). :func:`reconcile_captured_payments` writes
the order from the cart (its reservations if still pending, or stock reserved again) or,
if that cannot be done, flags the Payment for staff (``needs_attention`` with
``attention_reason``, visible in the admin). It also resolves payments left ``pending``
or ``authorized`` past ``PAYMENT_IN_FLIGHT_TIMEOUT_SECONDS`` by an interrupted confirm,
from the gateway's answer (``checkout.resolve``), and retries the refunds of cancelled
orders that are due (``payments.refunds``); no lock is held during those gateway calls.

Safe on many workers at once: carts and payments are taken with ``SKIP LOCKED`` (a
shopper's confirm still writing its order holds the Cart row, so it is skipped), and a
payment captured less than ``GRACE_SECONDS`` ago is left to its own confirm.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from checkout import locks
from checkout.finalize import finalize_order
from checkout.resolve import resolve_stale_payments
from payments import locks as payment_locks
from payments.models import Payment
from payments.refunds import retry_due_refunds

logger = logging.getLogger("checkout.reconcile")

GRACE_SECONDS = 60
ACTOR = "reconcile"


def reconcile_captured_payments(*, batch_size: int) -> int:
    """Handles one batch: at most ``batch_size`` carts with captured payments without an
    order (each payment gets its order or is flagged), plus at most ``batch_size``
    interrupted in-flight payments (resolved) and ``batch_size`` due refunds (attempted). Returns how many payments it handled; 0
    means nothing is left that another worker is not already handling.

    Locks: Cart rows (``SKIP LOCKED``, ascending pk), then their Payment rows (``SKIP
    LOCKED``), then stock rows and reservations through the reservation service — the
    project's lock order. One savepoint per payment, so one failure flags that payment
    without undoing the others.
    """
    now = timezone.now()
    handled = 0
    with transaction.atomic():
        cart_ids = locks.lock_carts_with_captured_payments(
            captured_before=now - timedelta(seconds=GRACE_SECONDS), limit=batch_size
        )
        payments = payment_locks.lock_captured_payments(
            cart_ids=cart_ids, captured_before=now - timedelta(seconds=GRACE_SECONDS)
        )
        for payment in payments:
            try:
                with transaction.atomic():
                    order = finalize_order(
                        cart_id=payment.cart_id, payment_id=payment.id, actor=ACTOR
                    )
            except Exception as exc:
                _flag(payment, f"The order could not be written: {_describe(exc)}")
            else:
                logger.info(
                    "payment.reconciled",
                    extra={
                        "event": "payment.reconciled",
                        "payment_id": str(payment.id),
                        "cart_id": str(payment.cart_id),
                        "order_id": str(order.id),
                        "number": order.number,
                    },
                )
            handled += 1

    # Gateway calls, so after the transaction above and without any lock held: payments
    # left in flight by an interrupted confirm are resolved from the gateway's answer,
    # and refunds that are due are attempted again.
    handled += resolve_stale_payments(batch_size=batch_size, actor=ACTOR)
    handled += retry_due_refunds(batch_size=batch_size, actor=ACTOR)
    return handled


def _describe(exc: Exception) -> str:
    details = getattr(exc, "details", None)
    text = f"{exc.__class__.__name__}: {exc}"
    if details:
        text += f" {details}"
    return text[:2000]


def _flag(payment: Payment, reason: str) -> None:
    Payment.objects.filter(id=payment.id).update(
        needs_attention=True, attention_reason=reason, updated_at=timezone.now()
    )
    logger.error(
        "payment.needs_attention",
        extra={
            "event": "payment.needs_attention",
            "payment_id": str(payment.id),
            "cart_id": str(payment.cart_id),
            "payment_status": payment.status,
            "reason": reason,
        },
    )
