"""Confirming a checkout (SPEC §7.4): payment, then the order, exactly once per cart.

``confirm_checkout`` runs in three steps, and no row lock is held across a gateway call:

1. **prepare** — one short transaction under the Cart lock: replay an ``Idempotency-Key``
   that already produced an order, refuse a key reused with another request, detect a
   payment of this cart already in flight (or captured without an order), check the
   cart (status, expiry, items, address and payment method), refuse with 503
   ``PAYMENT_UNAVAILABLE`` while the gateway's circuit breaker is open (nothing written,
   the holds kept as they are; ``payments.breaker``), make sure a pending
   reservation covers every line (re-reserving lines whose reservation lapsed; short →
   ``INSUFFICIENT_STOCK``, reservations released, cart back to ``active``), extend the
   reservations to ``CHECKOUT_PAYMENT_TTL_SECONDS``, record the key and create the
   Payment in status ``pending``. That pending Payment is the in-flight marker: a
   second confirm of the cart sees it under the same lock and does not pay again.
2. **pay** — no locks: authorize, then capture (a failed capture voids the
   authorization), timeouts retried with exponential backoff. Every step is written to
   the Payment row. Any failure releases the reservations (``payment_failed``) and
   returns the cart to ``active`` in one transaction, then answers with the error.
3. **finalize** — one transaction, Cart lock first: the order and its items (linked to
   their reservations), reservation confirmation (stock deducted), the Payment linked to
   the order, the cart ``completed``. If this fails after the capture the Payment stays
   ``captured`` without an order, the shopper is told the order is being finalised
   (202), and the shopper's retry — or else ``checkout.reconcile`` — finishes it
   (reconciliation flags it for staff if it cannot be written).

A second confirm that finds a payment in flight polls it for up to
``CHECKOUT_CONFIRM_WAIT_SECONDS``: it then answers with the same order (200), the same
payment error, or — if the first is still running — 409 ``INVALID_CART_STATUS``
(``details.status`` ``"checkout"``, "Confirmation in progress", with
``details.retry_after_seconds`` and ``Retry-After``: when the payment will count as
interrupted). One that finds the payment captured without an order writes the order
itself (201, never a second payment; 202 again if it still cannot, or if the payment is
flagged for staff). One that finds a payment left in flight past
``PAYMENT_IN_FLIGHT_TIMEOUT_SECONDS`` (its confirm was interrupted) resolves it with the
gateway first (``checkout.resolve``): captured → its order (201); otherwise it goes on
to pay for the cart as it is now; a gateway that cannot say → 504 ``PAYMENT_TIMEOUT``,
items released, the payment flagged for staff.
The gateway part (step 2) runs within ``PAYMENT_DEADLINE_SECONDS``
(``payments.gateway.payment_deadline``).
At most one order per cart is also guaranteed by the unique ``Order.cart``.

This module is the orchestrator and step 1; the other steps live in modules of their
own: ``checkout.idempotency`` (the key), ``checkout.holds`` (every line has a live
hold), ``checkout.payment_flow`` (step 2 and waiting for a payment in flight) and
``checkout.finalize`` (step 3).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from carts.errors import CartEmpty, InvalidCartStatus
from carts.locks import CartCheck, lock_cart
from carts.models import Cart, CartItem, CartStatus
from checkout.errors import (
    CheckoutExpired,
    MissingCheckoutData,
    PaymentInFlight,
    PaymentTimeout,
    PaymentUnavailable,
)
from checkout.finalize import ConfirmResult, cart_lines, cart_total, write_order
from checkout.holds import ensure_live_holds
from checkout.idempotency import (
    IDEMPOTENCY_KEY_MAX_LENGTH,
    bind_idempotency_key,
    idempotency_key_of,
    record_idempotency_key,
)
from checkout.limits import customer_limit
from checkout.payment_flow import await_in_flight, pay
from checkout.resolve import is_stale, resolve_stale_payment
from checkout.services import abandon_checkout, return_to_active
from core import metrics
from core.errors import ApplicationError
from inventory import services as inventory
from inventory.errors import InsufficientStock
from inventory.models import ReleaseReason
from orders.models import Order
from payments import breaker as payment_breaker
from payments.gateway import PaymentGateway, get_gateway, payment_deadline
from payments.models import Payment, PaymentStatus


@dataclass(frozen=True)
class _InFlight:
    payment_id: UUID


@dataclass(frozen=True)
class _Interrupted:
    """A payment of the cart left in flight past ``PAYMENT_IN_FLIGHT_TIMEOUT_SECONDS``."""

    payment_id: UUID


def confirm_checkout(
    *,
    cart_id: UUID,
    idempotency_key: str = "",
    fingerprint: str = "",
    actor: str = "shopper",
    authorize: CartCheck | None = None,
) -> ConfirmResult:
    """Pays for the cart and turns it into an order, exactly once (see the module doc).

    Raises ``INVALID_CART_STATUS`` (409), ``CHECKOUT_EXPIRED`` (410, after cleanup),
    ``CART_EMPTY``/``MISSING_CHECKOUT_DATA``/``INSUFFICIENT_STOCK`` (400),
    ``PAYMENT_DECLINED``/``PAYMENT_CAPTURE_FAILED`` (402), ``PAYMENT_TIMEOUT`` (504),
    ``PAYMENT_UNAVAILABLE`` (503, the gateway's circuit breaker is open: nothing charged,
    the cart still in checkout with its holds),
    ``IDEMPOTENCY_CONFLICT`` (409); ``CART_NOT_FOUND`` (404) if ``authorize`` refuses the
    locked cart.
    """
    if len(idempotency_key) > IDEMPOTENCY_KEY_MAX_LENGTH:
        raise ValueError("idempotency key too long")
    gateway = get_gateway()
    prepared = _prepare(
        cart_id=cart_id,
        idempotency_key=idempotency_key,
        fingerprint=fingerprint,
        gateway=gateway,
        actor=actor,
        authorize=authorize,
    )
    if isinstance(prepared, _Interrupted):
        # An earlier confirm died mid-payment: ask the gateway what became of it first
        # (no lock held), then go on as the shopper asked — never paying twice.
        resolution = resolve_stale_payment(
            payment_id=prepared.payment_id, actor=actor, keep_checkout=True
        )
        if resolution.result is not None:
            if resolution.result.order is not None and idempotency_key:
                _bind_key(
                    cart_id=cart_id,
                    key=idempotency_key,
                    fingerprint=fingerprint,
                    order=resolution.result.order,
                )
            return resolution.result
        if resolution.outcome == "deferred":
            raise PaymentUnavailable(resolution.retry_after)
        if resolution.outcome == "unknown":
            raise PaymentTimeout(
                "Your earlier payment could not be checked with the provider; your items "
                "were released and staff will verify the payment. Nothing more was charged."
            )
        prepared = _prepare(
            cart_id=cart_id,
            idempotency_key=idempotency_key,
            fingerprint=fingerprint,
            gateway=gateway,
            actor=actor,
            authorize=authorize,
        )
        if isinstance(prepared, _Interrupted):  # pragma: no cover - resolved just above
            raise PaymentInFlight(1)
    if isinstance(prepared, _InFlight):
        prepared = await_in_flight(payment_id=prepared.payment_id)
    if isinstance(prepared, ConfirmResult):
        paid_without_order = prepared.processing and prepared.payment is not None
        if paid_without_order and not prepared.payment.needs_attention:
            # A retry after the order could not be written: write it now rather than
            # leave the shopper waiting for reconciliation (staff own flagged payments).
            return write_order(cart_id=cart_id, payment=prepared.payment, actor=actor)
        return prepared

    payment = prepared
    with payment_deadline():
        pay(payment=payment, gateway=gateway, actor=actor)
    return write_order(cart_id=cart_id, payment=payment, actor=actor)


def _bind_key(*, cart_id: UUID, key: str, fingerprint: str, order: Order) -> None:
    """The key of the confirm that finished an interrupted payment replays its order."""
    with transaction.atomic():
        cart = lock_cart(cart_id)
        if idempotency_key_of(cart=cart, key=key, fingerprint=fingerprint) is None:
            record_idempotency_key(cart=cart, key=key, fingerprint=fingerprint)
        bind_idempotency_key(cart=cart, key=key, order=order)


# --- 1. prepare ---------------------------------------------------------------------


def _prepare(
    *,
    cart_id: UUID,
    idempotency_key: str,
    fingerprint: str,
    gateway: PaymentGateway,
    actor: str,
    authorize: CartCheck | None,
) -> Payment | ConfirmResult | _InFlight | _Interrupted:
    # Failures that must commit their cleanup first (expiry, stock) are raised after the
    # transaction; the others roll back a transaction that wrote nothing.
    failure: ApplicationError
    with transaction.atomic():
        cart = lock_cart(cart_id, authorize=authorize)
        key_row = idempotency_key_of(cart=cart, key=idempotency_key, fingerprint=fingerprint)
        if key_row is not None and key_row.order_id is not None:
            order = Order.objects.get(id=key_row.order_id)
            return ConfirmResult(order=order, payment=None)

        now = timezone.now()
        # One query: the payments holding the cart, and any left in flight by an
        # interrupted confirm (past PAYMENT_IN_FLIGHT_TIMEOUT_SECONDS).
        candidates = list(
            (Payment.objects.holding_cart(now=now) | Payment.objects.stale_in_flight(now=now))
            .filter(cart=cart)
            .order_by("-created_at")
        )
        interrupted = [p for p in candidates if is_stale(p, now=now)]
        unfinished = [p for p in candidates if not is_stale(p, now=now)]
        captured = next((p for p in unfinished if p.status == PaymentStatus.CAPTURED), None)
        if captured is not None:
            # Paid already: never pay twice; the order is being finalised.
            return ConfirmResult(order=None, payment=captured)
        if unfinished:
            return _InFlight(payment_id=unfinished[0].id)
        if interrupted:
            return _Interrupted(payment_id=interrupted[-1].id)

        items = cart_lines(cart.id)
        if not items:
            raise CartEmpty()
        if cart.status != CartStatus.CHECKOUT:
            raise InvalidCartStatus(
                cart.status, f"A cart in status '{cart.status}' cannot be confirmed"
            )
        if cart.expires_at is not None and cart.expires_at <= now:
            # Same cleanup as every other path that finds a lapsed checkout (it re-takes
            # the Cart lock this transaction holds); committed before the 410.
            abandon_checkout(cart_id=cart.id, reason="expired", actor=actor)
            failure = CheckoutExpired()
        else:
            missing = [
                name
                for name, value in (
                    ("shipping_address", cart.shipping_address),
                    ("payment_method", cart.payment_method),
                )
                if not value
            ]
            if missing:
                raise MissingCheckoutData(missing)
            # Before the holds are extended to the payment TTL: while the gateway's circuit
            # breaker is open nothing is written and the cart keeps its holds as they are.
            retry_after = payment_breaker.retry_after_seconds()
            if retry_after:
                raise PaymentUnavailable(retry_after)
            try:
                expires_at = _secure_stock(cart=cart, items=items, actor=actor)
            except InsufficientStock as exc:
                return_to_active(
                    cart=cart,
                    reason=ReleaseReason.CHECKOUT_CANCELLED,
                    actor=actor,
                    why="insufficient_stock",
                )
                transaction.on_commit(metrics.checkout_confirm_stock_failures_total.inc)
                failure = exc
            else:
                cart.expires_at = expires_at
                cart.save(update_fields=["expires_at", "updated_at"])
                if idempotency_key and key_row is None:
                    record_idempotency_key(cart=cart, key=idempotency_key, fingerprint=fingerprint)
                return Payment.objects.create(
                    cart=cart,
                    idempotency_key=idempotency_key,
                    gateway=gateway.name,
                    method=cart.payment_method,
                    amount=cart_total(items),
                    currency=cart.currency,
                    status=PaymentStatus.PENDING,
                )
    raise failure


def _secure_stock(*, cart: Cart, items: list[CartItem], actor: str) -> datetime:
    """Re-validates the cart's stock before payment: every line ends up covered by a
    pending reservation of the right quantity, expiring ``CHECKOUT_PAYMENT_TTL_SECONDS``
    from now (existing ones extended, missing ones reserved — with
    ``ENABLE_PRE_RESERVATION`` off that is every line). Returns the new expiry; raises
    :class:`InsufficientStock` listing every short line, or ``PurchaseLimitReached`` when
    a line it reserves would take a customer over a ``max_per_customer`` (SPEC §15).
    Constant queries in the lines."""
    limit = customer_limit(cart=cart, items=items)
    holds = ensure_live_holds(
        cart_id=cart.id,
        items=items,
        ttl_seconds=settings.CHECKOUT_PAYMENT_TTL_SECONDS,
        actor=actor,
        limit_check=limit.limit_check,
        serialize_products=limit.serialize_products,
    )
    expires_at = (
        holds.fresh[0].expires_at
        if holds.fresh
        else timezone.now() + timedelta(seconds=settings.CHECKOUT_PAYMENT_TTL_SECONDS)
    )
    kept = [r.id for r in holds.kept]
    if kept:
        inventory.extend(reservation_ids=kept, expires_at=expires_at, actor=actor)
    return expires_at
