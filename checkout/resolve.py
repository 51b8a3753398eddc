"""Resolving an interrupted payment (SPEC §13, "a payment can never strand a shopper").

A confirm whose worker died (killed, crash, deploy) leaves its Payment ``pending`` or
``authorized``. Once it is older than ``PAYMENT_IN_FLIGHT_TIMEOUT_SECONDS`` (longer than
any request lives, so its confirm is surely gone) whichever comes first — the shopper's
next confirm of the cart, the reconcile job, or staff (the payment admin's action) —
asks the gateway for the payment's real state (``status``) and acts on the answer:

* **captured** at the gateway → the Payment is recorded ``captured`` and the order is
  written from the cart (:func:`checkout.finalize.write_order`; if it cannot be, the
  payment stays captured without an order, which reconciliation finishes or flags);
* **authorized** → the authorization is **voided** and the reservations released (the
  cart back to ``active``). Voiding rather than capturing is deliberate: the shopper's
  last word was a confirm that never answered, the cart may have changed since, and a
  fresh confirm pays for exactly what the cart holds then; capturing later could charge
  for a purchase the shopper already gave up;
* **not found**, **voided** or **declined** → nothing was taken: the Payment is closed
  (``failed``/``voided``) and the reservations released;
* **unknown** (the gateway cannot say, or does not answer) → the reservations are
  released and the Payment is flagged for staff (``needs_attention``).

When the shopper's own confirm resolves it (``keep_checkout``), the cart stays in
checkout with its holds in the "authorized"/"not found" cases, so that the same request
goes on to pay for the cart as it is now: the shopper is never locked out and never
charged twice for one confirm.

No lock is held during the gateway calls; each outcome is written in one short
transaction (Cart lock, then Payment lock) that first checks the Payment is still the
same interrupted one, so two resolvers at once (a shopper and the job) act once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from uuid import UUID

from django.db import transaction
from django.utils import timezone

from carts.locks import lock_cart
from carts.models import CartStatus
from checkout.finalize import ConfirmResult, write_order
from checkout.services import return_to_active
from core import metrics
from inventory.models import ReleaseReason
from payments import locks as payment_locks
from payments.gateway import (
    GatewayError,
    GatewayState,
    GatewayStatus,
    GatewayUnavailable,
    PaymentGateway,
    PaymentRequest,
    call_with_retries,
    get_gateway,
    payment_deadline,
)
from payments.models import IN_FLIGHT_STATUSES, Payment, PaymentStatus, in_flight_window

logger = logging.getLogger("checkout.resolve")

INTERRUPTED = "PAYMENT_INTERRUPTED"


@dataclass(frozen=True)
class Resolution:
    """What resolving did: ``outcome`` is ``captured``, ``voided``, ``not_found``,
    ``unknown``, ``deferred`` (the gateway's circuit breaker is open: nothing asked, try
    again in ``retry_after`` seconds) or ``none`` (the payment was not an interrupted one
    any more); ``result`` is the order written for a captured payment."""

    outcome: str
    result: ConfirmResult | None = None
    retry_after: int = 0


def is_stale(payment: Payment, *, now=None) -> bool:
    """Left in flight past ``PAYMENT_IN_FLIGHT_TIMEOUT_SECONDS`` and not flagged."""
    now = now or timezone.now()
    return (
        payment.status in IN_FLIGHT_STATUSES
        and not payment.needs_attention
        and payment.created_at < now - in_flight_window()
    )


def retry_after_seconds(payment: Payment, *, now=None) -> int:
    """Seconds until ``payment`` counts as interrupted (at least 1)."""
    now = now or timezone.now()
    left = (payment.created_at + in_flight_window() - now).total_seconds()
    return max(1, int(left + 0.999))


def _request(payment: Payment) -> PaymentRequest:
    return PaymentRequest(
        reference=str(payment.id),
        amount=payment.amount,
        currency=payment.currency,
        method=payment.method,
    )


def _ask(gateway: PaymentGateway, payment: Payment) -> GatewayStatus:
    """The gateway's answer; ``unknown`` if it fails or does not answer. A refusal of the
    circuit breaker (nothing asked) is raised: the payment is left for later."""
    try:
        status, _ = call_with_retries(lambda: gateway.status(_request(payment)))
    except GatewayUnavailable:
        raise
    except GatewayError as exc:
        logger.warning(
            "payment.status_unavailable",
            extra={
                "event": "payment.status_unavailable",
                "payment_id": str(payment.id),
                "gateway_error": exc.message,
            },
        )
        return GatewayStatus(state=GatewayState.UNKNOWN)
    return status


def resolve_stale_payment(
    *, payment_id: UUID, actor: str, keep_checkout: bool = False
) -> Resolution:
    """Resolves one interrupted in-flight payment from the gateway's answer (see the
    module doc). Idempotent and safe to run concurrently."""
    payment = Payment.objects.get(id=payment_id)
    if not is_stale(payment):
        return Resolution("none")
    gateway = get_gateway()
    with payment_deadline():
        try:
            status = _ask(gateway, payment)
        except GatewayUnavailable as exc:
            return Resolution("deferred", retry_after=exc.retry_after)
        if status.state == GatewayState.AUTHORIZED:
            try:
                call_with_retries(
                    lambda: gateway.void(
                        _request(payment), authorization_id=status.authorization_id
                    )
                )
            except GatewayError as exc:
                status = GatewayStatus(state=GatewayState.UNKNOWN)
                logger.warning(
                    "payment.void_failed",
                    extra={
                        "event": "payment.void_failed",
                        "payment_id": str(payment.id),
                        "gateway_error": exc.message,
                    },
                )

    if status.state in (GatewayState.CAPTURED, GatewayState.REFUNDED):
        return _captured(payment, status, actor=actor)
    if status.state == GatewayState.AUTHORIZED:
        return _close(
            payment,
            outcome="voided",
            status=PaymentStatus.VOIDED,
            authorization_id=status.authorization_id,
            actor=actor,
            release=not keep_checkout,
        )
    if status.state in (GatewayState.NOT_FOUND, GatewayState.VOIDED, GatewayState.DECLINED):
        return _close(
            payment,
            outcome="voided" if status.state == GatewayState.VOIDED else "not_found",
            status=PaymentStatus.VOIDED
            if status.state == GatewayState.VOIDED
            else PaymentStatus.FAILED,
            authorization_id=status.authorization_id,
            actor=actor,
            release=not keep_checkout,
        )
    return _close(
        payment,
        outcome="unknown",
        status=PaymentStatus.FAILED,
        authorization_id=status.authorization_id,
        actor=actor,
        release=True,
        attention=(
            "The confirm was interrupted and the gateway could not say what became of the "
            "payment; check it at the provider (it may have been captured) and void or "
            "refund it."
        ),
    )


def _captured(payment: Payment, status: GatewayStatus, *, actor: str) -> Resolution:
    now = timezone.now()
    with transaction.atomic():
        lock_cart(payment.cart_id)
        locked = payment_locks.lock_payment(payment.id)
        if not is_stale(locked, now=now):
            return Resolution("none")
        locked.status = PaymentStatus.CAPTURED
        locked.authorization_id = status.authorization_id or locked.authorization_id
        locked.payment_id = status.payment_id
        locked.captured_at = now
        locked.authorized_at = locked.authorized_at or now
        locked.resolved_at = now
        locked.save(
            update_fields=[
                "status",
                "authorization_id",
                "payment_id",
                "captured_at",
                "authorized_at",
                "resolved_at",
                "updated_at",
            ]
        )
    _log(locked, "captured", actor)
    result = write_order(cart_id=locked.cart_id, payment=locked, actor=actor)
    return Resolution("captured", result=result)


def _close(
    payment: Payment,
    *,
    outcome: str,
    status: str,
    authorization_id: str,
    actor: str,
    release: bool,
    attention: str | None = None,
) -> Resolution:
    now = timezone.now()
    with transaction.atomic():
        cart = lock_cart(payment.cart_id)
        locked = payment_locks.lock_payment(payment.id)
        if not is_stale(locked, now=now):
            return Resolution("none")
        locked.status = status
        locked.authorization_id = authorization_id or locked.authorization_id
        locked.error_code = INTERRUPTED
        locked.error_message = f"The confirm was interrupted; the gateway answered {outcome}."
        locked.resolved_at = now
        fields = [
            "status",
            "authorization_id",
            "error_code",
            "error_message",
            "resolved_at",
            "updated_at",
        ]
        if status == PaymentStatus.VOIDED:
            locked.voided_at = now
            fields.append("voided_at")
        if attention:
            locked.needs_attention = True
            locked.attention_reason = attention
            fields += ["needs_attention", "attention_reason"]
        locked.save(update_fields=fields)
        if release and cart.status == CartStatus.CHECKOUT:
            return_to_active(
                cart=cart,
                reason=ReleaseReason.PAYMENT_FAILED,
                actor=actor,
                why="payment_interrupted",
            )
    _log(locked, outcome, actor)
    return Resolution(outcome)


def _log(payment: Payment, outcome: str, actor: str) -> None:
    metrics.payments_stale_resolved_total.labels(outcome=outcome).inc()
    log = logger.error if outcome == "unknown" else logger.info
    log(
        "payment.resolved",
        extra={
            "event": "payment.resolved",
            "payment_id": str(payment.id),
            "cart_id": str(payment.cart_id),
            "outcome": outcome,
            "actor": actor,
        },
    )


def resolve_stale_payments(*, batch_size: int, actor: str) -> int:
    """Resolves up to ``batch_size`` interrupted payments, oldest first (the reconcile
    job and the admin); returns how many it resolved."""
    ids = list(
        Payment.objects.stale_in_flight()
        .order_by("created_at", "id")
        .values_list("id", flat=True)[:batch_size]
    )
    done = 0
    for payment_id in ids:
        if resolve_stale_payment(payment_id=payment_id, actor=actor).outcome not in (
            "none",
            "deferred",
        ):
            done += 1
    return done
