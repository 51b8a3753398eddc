"""Paying for a checkout (SPEC §7.4 step 2, §8): the gateway calls, no row lock held.

Authorize, then capture (a failed capture voids the authorization), timeouts retried
with exponential backoff; every step is written to the Payment row. Any failure releases
the cart's reservations (``payment_failed``) and returns the cart to ``active`` in one
transaction, then raises the payment error. A second confirm that finds a payment in
flight waits for it here (:func:`await_in_flight`).
"""

from __future__ import annotations

import logging
import time
from typing import NoReturn
from uuid import UUID

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from carts.locks import lock_cart
from checkout.errors import (
    PaymentCaptureFailed,
    PaymentDeclined,
    PaymentInFlight,
    PaymentTimeout,
    PaymentUnavailable,
)
from checkout.finalize import ORDER_NOT_WRITTEN, ConfirmResult
from checkout.resolve import retry_after_seconds
from checkout.services import return_to_active
from core import metrics
from core.errors import ApplicationError
from inventory.models import ReleaseReason
from payments import breaker as payment_breaker
from payments.gateway import (
    GatewayDeclined,
    GatewayError,
    GatewayTimeout,
    GatewayUnavailable,
    PaymentGateway,
    PaymentRequest,
    call_with_retries,
    void_reserve,
)
from payments.models import Payment, PaymentStatus

logger = logging.getLogger("checkout.confirm")

POLL_INTERVAL_SECONDS = 0.05
_PAYMENT_ERRORS: dict[str, type[ApplicationError]] = {
    cls.code: cls for cls in (PaymentDeclined, PaymentCaptureFailed, PaymentTimeout)
}


def pay(*, payment: Payment, gateway: PaymentGateway, actor: str) -> None:
    """Authorizes and captures ``payment`` (no locks held); on success the Payment is
    ``captured`` (committed) when this returns, on failure the checkout is undone and
    the payment error raised."""
    request = PaymentRequest(
        reference=str(payment.id),
        amount=payment.amount,
        currency=payment.currency,
        method=payment.method,
    )
    attempts = 0
    try:
        authorization_id, tries = call_with_retries(
            lambda: gateway.authorize(request), reserve=void_reserve()
        )
        attempts += tries
    except GatewayError as exc:
        attempts += exc.attempts
        if isinstance(exc, GatewayUnavailable) and exc.attempts == 1:
            _refused(payment=payment, gateway_error=exc, actor=actor)
        # A breaker that opened between tries: the gateway did not answer in time.
        timed_out = isinstance(exc, (GatewayTimeout, GatewayUnavailable))
        # The provider may have authorized a request whose answer never came: void
        # whatever it holds under this payment's reference (within the deadline).
        voided = not isinstance(exc, GatewayTimeout) or _void(
            gateway=gateway, request=request, authorization_id=""
        )
        _fail(
            payment=payment,
            error=PaymentTimeout() if timed_out else PaymentDeclined(),
            gateway_error=exc,
            status=PaymentStatus.FAILED,
            attempts=attempts,
            outcome=_outcome(exc, otherwise="declined"),
            actor=actor,
            attention=None
            if voided
            else "The authorization timed out and could not be voided; check the payment "
            "at the provider and void it.",
        )
    now = timezone.now()
    payment.status = PaymentStatus.AUTHORIZED
    payment.authorization_id = authorization_id
    payment.authorized_at = now
    payment.attempts = attempts
    payment.save(
        update_fields=["status", "authorization_id", "authorized_at", "attempts", "updated_at"]
    )

    try:
        capture_id, tries = call_with_retries(
            lambda: gateway.capture(request, authorization_id=authorization_id),
            reserve=void_reserve(),
        )
        attempts += tries
    except GatewayError as exc:
        attempts += exc.attempts
        timed_out = isinstance(exc, (GatewayTimeout, GatewayUnavailable))
        voided = _void(gateway=gateway, request=request, authorization_id=authorization_id)
        _fail(
            payment=payment,
            error=PaymentTimeout() if timed_out else PaymentCaptureFailed(),
            gateway_error=exc,
            status=PaymentStatus.VOIDED if voided else PaymentStatus.FAILED,
            attempts=attempts,
            outcome=_outcome(exc, otherwise="capture_failed"),
            actor=actor,
            attention=None
            if voided
            else "The authorization could not be voided; void it at the provider.",
        )
    now = timezone.now()
    payment.status = PaymentStatus.CAPTURED
    payment.payment_id = capture_id
    payment.captured_at = now
    payment.attempts = attempts
    payment.save(update_fields=["status", "payment_id", "captured_at", "attempts", "updated_at"])
    metrics.payments_total.labels(outcome="captured").inc()
    logger.info(
        "payment.captured",
        extra={
            "event": "payment.captured",
            "cart_id": str(payment.cart_id),
            "payment_id": str(payment.id),
            "amount": str(payment.amount),
            "attempts": attempts,
            "actor": actor,
        },
    )


def _outcome(exc: GatewayError, *, otherwise: str) -> str:
    """The ``payments_total`` label of a failed step: a timeout, an answer of the
    provider (``otherwise``), or an error of the gateway itself."""
    if isinstance(exc, (GatewayTimeout, GatewayUnavailable)):
        return "timeout"
    if isinstance(exc, GatewayDeclined):
        return otherwise
    return "error"


def _refused(*, payment: Payment, gateway_error: GatewayUnavailable, actor: str) -> NoReturn:
    """The gateway's circuit breaker opened between the confirm's own check and its first
    gateway call (another worker tripped it): nothing was sent to the provider. The
    payment is recorded as failed with ``PAYMENT_UNAVAILABLE`` and, as when the confirm's
    check refuses, the cart stays in checkout with its holds (already extended to the
    payment TTL here); the shopper confirms again once the breaker lets calls through."""
    error = PaymentUnavailable(gateway_error.retry_after)
    payment.status = PaymentStatus.FAILED
    payment.error_code = error.code
    payment.error_message = gateway_error.message[:2000]
    payment.attempts = 0
    payment.save(update_fields=["status", "error_code", "error_message", "attempts", "updated_at"])
    metrics.payments_total.labels(outcome="unavailable").inc()
    logger.warning(
        "payment.refused",
        extra={
            "event": "payment.refused",
            "cart_id": str(payment.cart_id),
            "payment_id": str(payment.id),
            "code": error.code,
            "retry_after_seconds": error.retry_after_seconds,
            "actor": actor,
        },
    )
    raise error


def _void(*, gateway: PaymentGateway, request: PaymentRequest, authorization_id: str) -> bool:
    try:
        call_with_retries(lambda: gateway.void(request, authorization_id=authorization_id))
    except GatewayError:
        logger.exception(
            "payment.void_failed",
            extra={"event": "payment.void_failed", "payment_id": request.reference},
        )
        return False
    return True


def _fail(
    *,
    payment: Payment,
    error: ApplicationError,
    gateway_error: GatewayError,
    status: str,
    attempts: int,
    outcome: str,
    actor: str,
    attention: str | None = None,
) -> NoReturn:
    """Records the failed payment, releases the cart's reservations (``payment_failed``)
    and returns the cart to ``active``, in one transaction under the Cart lock; then
    raises ``error``. The shopper can start the checkout again and pay."""
    now = timezone.now()
    with transaction.atomic():
        cart = lock_cart(payment.cart_id)
        payment.status = status
        payment.error_code = error.code
        payment.error_message = gateway_error.message[:2000]
        payment.attempts = attempts
        fields = ["status", "error_code", "error_message", "attempts", "updated_at"]
        if status == PaymentStatus.VOIDED:
            payment.voided_at = now
            fields.append("voided_at")
        if attention:
            payment.needs_attention = True
            payment.attention_reason = attention
            fields += ["needs_attention", "attention_reason"]
        payment.save(update_fields=fields)
        return_to_active(
            cart=cart, reason=ReleaseReason.PAYMENT_FAILED, actor=actor, why="payment_failed"
        )
    metrics.payments_total.labels(outcome=outcome).inc()
    logger.warning(
        "payment.failed",
        extra={
            "event": "payment.failed",
            "cart_id": str(payment.cart_id),
            "payment_id": str(payment.id),
            "code": error.code,
            "gateway_error": gateway_error.message,
            "attempts": attempts,
            "payment_status": status,
            "actor": actor,
        },
    )
    raise error


def await_in_flight(*, payment_id: UUID) -> ConfirmResult:
    """Polls the in-flight payment of another confirm of the same cart (no locks held)
    for up to ``CHECKOUT_CONFIRM_WAIT_SECONDS`` and answers as that confirm did: the same
    order, the same payment error, or 409 ``INVALID_CART_STATUS`` while it still runs."""
    deadline = time.monotonic() + settings.CHECKOUT_CONFIRM_WAIT_SECONDS
    while True:
        payment = Payment.objects.select_related("order").get(id=payment_id)
        if payment.order is not None:
            return ConfirmResult(order=payment.order, payment=payment)
        if payment.status == PaymentStatus.CAPTURED and payment.error_code == ORDER_NOT_WRITTEN:
            return ConfirmResult(order=None, payment=payment)
        if payment.status in (PaymentStatus.FAILED, PaymentStatus.VOIDED):
            if payment.error_code == PaymentUnavailable.code:
                raise PaymentUnavailable(payment_breaker.retry_after_seconds())
            raise _PAYMENT_ERRORS.get(payment.error_code, PaymentDeclined)()
        if time.monotonic() >= deadline:
            raise PaymentInFlight(retry_after_seconds(payment))
        time.sleep(POLL_INTERVAL_SECONDS)
