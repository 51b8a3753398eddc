"""Refunds of cancelled orders (SPEC §13): the captured amount goes back exactly once.

1. :func:`request_refund` runs inside the transaction that cancels the order (the caller
   holds the order's lock): the captured Payment becomes ``refund_pending`` with its
   refund idempotency key, and :func:`attempt_refund` is scheduled for after the commit.
   No gateway call is made while the order (or any other row) is locked.
2. :func:`attempt_refund` first records the attempt in its own short transaction
   (``refund_attempts`` + 1, next attempt pushed back by the backoff), commits, then asks
   the gateway to refund under the payment's key; a gateway is idempotent per key, so a
   repeat after a crash, a timeout or a concurrent worker refunds once. Success →
   ``refunded`` with ``refunded_amount``; failure → stays ``refund_pending`` and
   :func:`retry_due_refunds` (the reconcile job) tries again after
   ``REFUND_RETRY_BASE_SECONDS`` x 1, 2, 4, ...; after ``REFUND_MAX_ATTEMPTS`` the payment
   is flagged for staff (``needs_attention``).

Invariant: a captured amount is on an order that is not cancelled, or refunded, or owed
as ``refund_pending`` (being retried or flagged for staff).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from uuid import UUID

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core import metrics
from payments import breaker
from payments.gateway import (
    GatewayError,
    PaymentRequest,
    call_with_retries,
    get_gateway,
    payment_deadline,
)
from payments.models import Payment, PaymentStatus

logger = logging.getLogger("payments.refunds")


def refund_key_of(payment: Payment) -> str:
    """The idempotency key of the (single, full) refund of ``payment`` at the gateway."""
    return f"refund-{payment.id}"


def retry_delay(attempts: int) -> timedelta:
    """Backoff before the next attempt after ``attempts`` attempts."""
    return timedelta(seconds=settings.REFUND_RETRY_BASE_SECONDS * 2 ** max(0, attempts - 1))


def request_refund(*, payment: Payment, actor: str) -> bool:
    """Owes the refund of ``payment`` (locked by the caller, or belonging to an order the
    caller holds locked) and schedules the gateway call for after the commit. Only a
    ``captured`` payment is refunded; returns whether a refund was requested."""
    if payment.status != PaymentStatus.CAPTURED:
        return False
    now = timezone.now()
    payment.status = PaymentStatus.REFUND_PENDING
    payment.refund_key = refund_key_of(payment)
    payment.refund_requested_at = now
    payment.refund_next_attempt_at = now
    payment.save(
        update_fields=[
            "status",
            "refund_key",
            "refund_requested_at",
            "refund_next_attempt_at",
            "updated_at",
        ]
    )
    logger.info(
        "payment.refund_requested",
        extra={
            "event": "payment.refund_requested",
            "payment_id": str(payment.id),
            "amount": str(payment.amount),
            "actor": actor,
        },
    )
    payment_id = payment.id
    transaction.on_commit(lambda: attempt_refund(payment_id=payment_id, actor=actor))
    return True


def _claim_attempt(payment_id: UUID, *, force: bool) -> Payment | None:
    """Records one attempt (committed before the gateway is called); None when the
    payment is not owed a refund now (refunded already, flagged, not due, or another
    worker is attempting it)."""
    now = timezone.now()
    with transaction.atomic():
        payment = (
            Payment.objects.select_for_update(of=("self",), skip_locked=True)
            .filter(id=payment_id, status=PaymentStatus.REFUND_PENDING, needs_attention=False)
            .first()
        )
        if payment is None:
            return None
        due = payment.refund_next_attempt_at is None or payment.refund_next_attempt_at <= now
        if not due and not force:
            return None
        payment.refund_attempts += 1
        payment.refund_next_attempt_at = now + retry_delay(payment.refund_attempts)
        payment.save(update_fields=["refund_attempts", "refund_next_attempt_at", "updated_at"])
    return payment


def attempt_refund(*, payment_id: UUID, actor: str, force: bool = False) -> Payment | None:
    """One refund attempt for a ``refund_pending`` payment that is due (``force``: due or
    not, e.g. a staff action). Never called with a row lock held: it takes its own short
    transactions around the gateway call. Returns the payment as left, or None if nothing
    was attempted."""
    if breaker.is_open():
        # The gateway's circuit breaker refuses calls: back off without using an attempt;
        # the refund stays due and the reconcile job tries again once it lets calls through.
        return None
    payment = _claim_attempt(payment_id, force=force)
    if payment is None:
        return None
    request = PaymentRequest(
        reference=str(payment.id),
        amount=payment.amount,
        currency=payment.currency,
        method=payment.method,
    )
    gateway = get_gateway()
    try:
        with payment_deadline():
            refund_id, _ = call_with_retries(
                lambda: gateway.refund(
                    request,
                    payment_id=payment.payment_id,
                    amount=payment.amount,
                    idempotency_key=payment.refund_key or refund_key_of(payment),
                )
            )
    except GatewayError as exc:
        return _refund_failed(payment, exc, actor=actor)
    now = timezone.now()
    Payment.objects.filter(id=payment.id, status=PaymentStatus.REFUND_PENDING).update(
        status=PaymentStatus.REFUNDED,
        refunded_amount=payment.amount,
        refund_id=refund_id,
        refunded_at=now,
        refund_next_attempt_at=None,
        error_code="",
        error_message="",
        updated_at=now,
    )
    metrics.payments_refunds_total.labels(outcome="refunded").inc()
    logger.info(
        "payment.refunded",
        extra={
            "event": "payment.refunded",
            "payment_id": str(payment.id),
            "refund_id": refund_id,
            "amount": str(payment.amount),
            "attempts": payment.refund_attempts,
            "actor": actor,
        },
    )
    payment.refresh_from_db()
    return payment


def _refund_failed(payment: Payment, exc: GatewayError, *, actor: str) -> Payment:
    flag = payment.refund_attempts >= settings.REFUND_MAX_ATTEMPTS
    changes: dict[str, object] = {
        "error_code": "REFUND_FAILED",
        "error_message": exc.message[:2000],
        "updated_at": timezone.now(),
    }
    if flag:
        changes["needs_attention"] = True
        changes["attention_reason"] = (
            f"The refund of {payment.amount} {payment.currency} failed "
            f"{payment.refund_attempts} times ({exc.message}); refund it at the provider "
            f"(idempotency key {payment.refund_key}) and mark the payment handled."
        )
    Payment.objects.filter(id=payment.id, status=PaymentStatus.REFUND_PENDING).update(**changes)
    metrics.payments_refunds_total.labels(outcome="flagged" if flag else "failed").inc()
    logger.warning(
        "payment.refund_failed",
        extra={
            "event": "payment.refund_failed",
            "payment_id": str(payment.id),
            "attempts": payment.refund_attempts,
            "flagged": flag,
            "gateway_error": exc.message,
            "actor": actor,
        },
    )
    payment.refresh_from_db()
    return payment


def retry_due_refunds(*, batch_size: int, actor: str = "reconcile") -> int:
    """Attempts every refund that is due (at most ``batch_size``); returns how many were
    attempted. Safe on many workers: each attempt is claimed with ``SKIP LOCKED`` and
    pushes the next attempt back before the gateway is called."""
    ids = list(
        Payment.objects.refunds_due()
        .order_by("refund_next_attempt_at", "id")
        .values_list("id", flat=True)[:batch_size]
    )
    attempted = 0
    for payment_id in ids:
        if attempt_refund(payment_id=payment_id, actor=actor) is not None:
            attempted += 1
    return attempted
