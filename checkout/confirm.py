"""Confirming a checkout (SPEC §7.4): payment, then the order, exactly once per cart.

``confirm_checkout`` runs in three steps, and no row lock is held across a gateway call:

1. **prepare** — one short transaction under the Cart lock: replay an ``Idempotency-Key``
   that already produced an order, refuse a key reused with another request, detect a
   payment of this cart already in flight (or captured without an order), check the
   cart (status, expiry, items, address and payment method), make sure a pending
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
(``details.status`` ``"checkout"``, "Confirmation in progress"). One that finds the
payment captured without an order writes the order itself (201, never a second payment;
202 again if it still cannot, or if the payment is flagged for staff).
At most one order per cart is also guaranteed by the unique ``Order.cart``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, NoReturn
from uuid import UUID

from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone

from carts.errors import CartEmpty, InvalidCartStatus
from carts.locks import CartCheck, lock_cart
from carts.models import Cart, CartItem, CartStatus
from carts.serializers import line_total
from carts.transitions import transition_cart
from checkout.errors import (
    CheckoutExpired,
    IdempotencyConflict,
    MissingCheckoutData,
    PaymentCaptureFailed,
    PaymentDeclined,
    PaymentTimeout,
)
from checkout.models import IdempotencyKey
from checkout.services import abandon_checkout
from core import metrics
from core.errors import ApplicationError
from inventory import locks as inventory_locks
from inventory import services as inventory
from inventory.errors import InsufficientStock
from inventory.models import ReleaseReason, Reservation, ReservationStatus
from orders import services as orders
from orders.models import Order
from payments import locks as payment_locks
from payments.gateway import (
    GatewayDeclined,
    GatewayError,
    GatewayTimeout,
    PaymentGateway,
    PaymentRequest,
    call_with_retries,
    get_gateway,
)
from payments.models import Payment, PaymentStatus

logger = logging.getLogger("checkout.confirm")

IDEMPOTENCY_KEY_MAX_LENGTH = 255
POLL_INTERVAL_SECONDS = 0.05
# A reservation this close to its expiry is replaced rather than extended, so that it
# cannot lapse between being checked and being extended.
LAPSING_MARGIN = timedelta(seconds=2)
# Payment.error_code of a captured payment whose order could not be written yet.
ORDER_NOT_WRITTEN = "ORDER_NOT_WRITTEN"
_PAYMENT_ERRORS: dict[str, type[ApplicationError]] = {
    cls.code: cls for cls in (PaymentDeclined, PaymentCaptureFailed, PaymentTimeout)
}


@dataclass(frozen=True)
class ConfirmResult:
    """The outcome of a confirm: ``created`` → 201 with the new order; an ``order`` that
    is not ``created`` → 200 (the same order again); no ``order`` → 202, the payment was
    captured and the order is being finalised."""

    order: Order | None
    payment: Payment | None
    created: bool = False

    @property
    def processing(self) -> bool:
        return self.order is None


@dataclass(frozen=True)
class _InFlight:
    payment_id: UUID


def request_fingerprint(*, method: str, path: str, body: Any) -> str:
    """SHA-256 of the request's method, path and (canonical JSON) body: the same
    ``Idempotency-Key`` with a different fingerprint is a conflict."""
    canonical = json.dumps(body if body is not None else {}, sort_keys=True, default=str)
    return hashlib.sha256(f"{method.upper()} {path}\n{canonical}".encode()).hexdigest()


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
    if isinstance(prepared, _InFlight):
        prepared = _await_in_flight(payment_id=prepared.payment_id)
    if isinstance(prepared, ConfirmResult):
        paid_without_order = prepared.processing and prepared.payment is not None
        if paid_without_order and not prepared.payment.needs_attention:
            # A retry after the order could not be written: write it now rather than
            # leave the shopper waiting for reconciliation (staff own flagged payments).
            return _write_order(cart_id=cart_id, payment=prepared.payment, actor=actor)
        return prepared

    payment = prepared
    _pay(payment=payment, gateway=gateway, actor=actor)
    return _write_order(cart_id=cart_id, payment=payment, actor=actor)


def _write_order(*, cart_id: UUID, payment: Payment, actor: str) -> ConfirmResult:
    """Writes the order of the captured ``payment``; if that fails the money is kept:
    the payment stays captured without an order (answer 202) and a retry or
    reconciliation finishes the order (or flags it for staff)."""
    try:
        order, created = _finalize(cart_id=cart_id, payment_id=payment.id, actor=actor)
    except Exception as exc:
        logger.exception(
            "checkout.order_not_written",
            extra={
                "event": "checkout.order_not_written",
                "cart_id": str(cart_id),
                "payment_id": str(payment.id),
            },
        )
        _note_order_not_written(payment, exc)
        return ConfirmResult(order=None, payment=payment)
    return ConfirmResult(order=order, payment=payment, created=created)


def _note_order_not_written(payment: Payment, exc: Exception) -> None:
    """Marks the captured payment as waiting for its order (what a concurrent confirm
    and the admin see). Best effort: reconciliation finds the payment without it."""
    payment.error_code = ORDER_NOT_WRITTEN
    payment.error_message = f"{exc.__class__.__name__}: {exc}"[:2000]
    try:
        Payment.objects.filter(id=payment.id).update(
            error_code=payment.error_code,
            error_message=payment.error_message,
            updated_at=timezone.now(),
        )
    except DatabaseError:
        logger.exception(
            "checkout.order_not_written_unrecorded",
            extra={"event": "checkout.order_not_written_unrecorded", "payment_id": str(payment.id)},
        )


# --- 1. prepare ---------------------------------------------------------------------


def _prepare(
    *,
    cart_id: UUID,
    idempotency_key: str,
    fingerprint: str,
    gateway: PaymentGateway,
    actor: str,
    authorize: CartCheck | None,
) -> Payment | ConfirmResult | _InFlight:
    # Failures that must commit their cleanup first (expiry, stock) are raised after the
    # transaction; the others roll back a transaction that wrote nothing.
    failure: ApplicationError
    with transaction.atomic():
        cart = lock_cart(cart_id, authorize=authorize)
        key_row = None
        if idempotency_key:
            key_row = IdempotencyKey.objects.filter(cart=cart, key=idempotency_key).first()
            if key_row is not None and key_row.fingerprint != fingerprint:
                raise IdempotencyConflict(details={"idempotency_key": idempotency_key})
            if key_row is not None and key_row.order_id is not None:
                order = Order.objects.get(id=key_row.order_id)
                return ConfirmResult(order=order, payment=None)

        now = timezone.now()
        unfinished = list(
            Payment.objects.holding_cart(now=now).filter(cart=cart).order_by("-created_at")
        )
        captured = next((p for p in unfinished if p.status == PaymentStatus.CAPTURED), None)
        if captured is not None:
            # Paid already: never pay twice; the order is being finalised.
            return ConfirmResult(order=None, payment=captured)
        if unfinished:
            return _InFlight(payment_id=unfinished[0].id)

        items = list(
            CartItem.objects.filter(cart=cart).select_related("product", "warehouse").order_by("id")
        )
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
            try:
                expires_at = _secure_stock(cart=cart, items=items, actor=actor)
            except InsufficientStock as exc:
                _return_to_active(
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
                    IdempotencyKey.objects.create(
                        cart=cart, key=idempotency_key, fingerprint=fingerprint
                    )
                return Payment.objects.create(
                    cart=cart,
                    idempotency_key=idempotency_key,
                    gateway=gateway.name,
                    method=cart.payment_method,
                    amount=_total(items),
                    currency=cart.currency,
                    status=PaymentStatus.PENDING,
                )
    raise failure


def _total(items: Sequence[CartItem]) -> Decimal:
    return sum((line_total(item) for item in items), Decimal("0.00"))


@dataclass
class _Matched:
    """The cart's pending reservations against its lines."""

    by_item: dict[int, Reservation]
    unreserved: list[CartItem]
    stale: list[Reservation]
    lapsed: list[Reservation]

    @property
    def needs_repair(self) -> bool:
        return bool(self.unreserved or self.stale or self.lapsed)


def _match_reservations(
    *, cart: Cart, items: Sequence[CartItem], lapsed_ok: bool
) -> tuple[_Matched, list[Reservation]]:
    """Pairs each line with the pending reservation of the same product, warehouse and
    quantity (one query). One that has lapsed (or lapses within ``LAPSING_MARGIN``)
    counts only with ``lapsed_ok``: until someone expires it, it still holds its stock
    and can be confirmed, but it cannot be extended."""
    now = timezone.now()
    pending = list(
        Reservation.objects.filter(cart_id=cart.id, status=ReservationStatus.PENDING).order_by("id")
    )
    by_pair: dict[tuple[UUID, int], Reservation] = {}
    stale: list[Reservation] = []
    lapsed: list[Reservation] = []
    for r in pending:
        pair = (r.product_id, r.warehouse_id)
        if pair in by_pair:
            stale.append(r)
        elif r.expires_at <= now + LAPSING_MARGIN and not lapsed_ok:
            lapsed.append(r)
        else:
            by_pair[pair] = r
    by_item: dict[int, Reservation] = {}
    unreserved: list[CartItem] = []
    for item in items:
        r = by_pair.pop((item.product_id, item.warehouse_id), None)
        if r is not None and r.quantity == item.quantity:
            by_item[item.id] = r
        else:
            if r is not None:
                stale.append(r)
            unreserved.append(item)
    stale.extend(by_pair.values())
    return _Matched(by_item=by_item, unreserved=unreserved, stale=stale, lapsed=lapsed), pending


def _repair_reservations(
    *,
    cart: Cart,
    items: Sequence[CartItem],
    matched: _Matched,
    pending: list[Reservation],
    actor: str,
) -> list[Reservation]:
    """Ends reservations that no longer fit a line and reserves the lines without one
    (``CHECKOUT_PAYMENT_TTL_SECONDS``). All stock rows involved are locked first, in one
    ascending-pk query, so the several service calls below keep the lock order."""
    pairs = {(item.product_id, item.warehouse_id) for item in items}
    pairs |= {(r.product_id, r.warehouse_id) for r in pending}
    inventory_locks.lock_stock_levels_for(pairs)
    now = timezone.now()
    lapsed = [r.id for r in matched.lapsed if r.expires_at <= now]
    ending = [r.id for r in matched.stale] + [r.id for r in matched.lapsed if r.expires_at > now]
    if lapsed:
        inventory.expire(reservation_ids=lapsed, actor=actor)
    if ending:
        inventory.release(reservation_ids=ending, reason=ReleaseReason.ITEM_REMOVED, actor=actor)
    if not matched.unreserved:
        return []
    fresh = inventory.reserve(
        lines=[
            inventory.ReservationLine(item.product_id, item.warehouse_id, item.quantity)
            for item in matched.unreserved
        ],
        ttl_seconds=settings.CHECKOUT_PAYMENT_TTL_SECONDS,
        cart_id=cart.id,
        actor=actor,
    )
    by_pair = {(r.product_id, r.warehouse_id): r for r in fresh}
    for item in matched.unreserved:
        matched.by_item[item.id] = by_pair[(item.product_id, item.warehouse_id)]
    matched.unreserved = []
    return fresh


def _secure_stock(*, cart: Cart, items: Sequence[CartItem], actor: str) -> datetime:
    """Re-validates the cart's stock before payment: every line ends up covered by a
    pending reservation of the right quantity, expiring ``CHECKOUT_PAYMENT_TTL_SECONDS``
    from now (existing ones extended, missing ones reserved — with
    ``ENABLE_PRE_RESERVATION`` off that is every line). Returns the new expiry; raises
    :class:`InsufficientStock` listing every short line. Constant queries in the lines."""
    matched, pending = _match_reservations(cart=cart, items=items, lapsed_ok=False)
    fresh: list[Reservation] = []
    if matched.needs_repair:
        fresh = _repair_reservations(
            cart=cart, items=items, matched=matched, pending=pending, actor=actor
        )
    fresh_ids = {r.id for r in fresh}
    to_extend = [r.id for r in matched.by_item.values() if r.id not in fresh_ids]
    expires_at = (
        fresh[0].expires_at
        if fresh
        else timezone.now() + timedelta(seconds=settings.CHECKOUT_PAYMENT_TTL_SECONDS)
    )
    if to_extend:
        inventory.extend(reservation_ids=to_extend, expires_at=expires_at, actor=actor)
    return expires_at


def _release_cart_reservations(*, cart: Cart, reason: str, actor: str) -> None:
    ids = list(
        Reservation.objects.filter(cart_id=cart.id, status=ReservationStatus.PENDING).values_list(
            "id", flat=True
        )
    )
    if ids:
        inventory.release(reservation_ids=ids, reason=reason, actor=actor)


def _return_to_active(*, cart: Cart, reason: str, actor: str, why: str) -> None:
    """Releases the cart's pending reservations and moves it back to ``active`` (the
    caller holds the Cart lock)."""
    _release_cart_reservations(cart=cart, reason=reason, actor=actor)
    if cart.status == CartStatus.CHECKOUT:
        changed = transition_cart(cart, CartStatus.ACTIVE, actor=actor, reason=why)
        cart.save(update_fields=changed)


# --- 2. pay -------------------------------------------------------------------------


def _pay(*, payment: Payment, gateway: PaymentGateway, actor: str) -> None:
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
        authorization_id, tries = call_with_retries(lambda: gateway.authorize(request))
        attempts += tries
    except GatewayError as exc:
        attempts += exc.attempts
        timed_out = isinstance(exc, GatewayTimeout)
        _fail(
            payment=payment,
            error=PaymentTimeout() if timed_out else PaymentDeclined(),
            gateway_error=exc,
            status=PaymentStatus.FAILED,
            attempts=attempts,
            outcome=_outcome(exc, otherwise="declined"),
            actor=actor,
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
            lambda: gateway.capture(request, authorization_id=authorization_id)
        )
        attempts += tries
    except GatewayError as exc:
        attempts += exc.attempts
        timed_out = isinstance(exc, GatewayTimeout)
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
    if isinstance(exc, GatewayTimeout):
        return "timeout"
    if isinstance(exc, GatewayDeclined):
        return otherwise
    return "error"


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
        _return_to_active(
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


# --- waiting for a payment in flight -----------------------------------------------


def _await_in_flight(*, payment_id: UUID) -> ConfirmResult:
    """Polls the in-flight payment of another confirm of the same cart (no locks held)
    and answers as that confirm did."""
    deadline = time.monotonic() + settings.CHECKOUT_CONFIRM_WAIT_SECONDS
    while True:
        payment = Payment.objects.select_related("order").get(id=payment_id)
        if payment.order is not None:
            return ConfirmResult(order=payment.order, payment=payment)
        if payment.status == PaymentStatus.CAPTURED and payment.error_code == ORDER_NOT_WRITTEN:
            return ConfirmResult(order=None, payment=payment)
        if payment.status in (PaymentStatus.FAILED, PaymentStatus.VOIDED):
            raise _PAYMENT_ERRORS.get(payment.error_code, PaymentDeclined)()
        if time.monotonic() >= deadline:
            raise InvalidCartStatus(CartStatus.CHECKOUT, "Confirmation in progress")
        time.sleep(POLL_INTERVAL_SECONDS)


# --- 3. finalize --------------------------------------------------------------------


class OrderNotWritable(Exception):
    """The order of a captured payment cannot be written as things stand (staff must
    look); carries the reason."""


def finalize_order(*, cart_id: UUID, payment_id: UUID, actor: str) -> Order:
    """Writes the order of a captured payment, in one transaction: Cart lock, Payment
    lock, order and items from the cart (each linked to its reservation), reservations
    confirmed (stock deducted once), Payment linked, cart ``completed``, the
    Idempotency-Key bound to the order.

    Used by confirm right after the capture and by reconciliation later; idempotent (a
    payment that has its order returns it). Lines whose reservation is gone are reserved
    again; if stock is short this raises :class:`InsufficientStock`. A cart that already
    has an order, or whose total no longer matches the captured amount, raises
    :class:`OrderNotWritable`.
    """
    order, _ = _finalize(cart_id=cart_id, payment_id=payment_id, actor=actor)
    return order


def _finalize(*, cart_id: UUID, payment_id: UUID, actor: str) -> tuple[Order, bool]:
    """:func:`finalize_order`, also saying whether this call wrote the order (False: it
    was written already, by a concurrent confirm or by reconciliation)."""
    with transaction.atomic():
        cart = lock_cart(cart_id)
        payment = payment_locks.lock_payment(payment_id)
        if payment.cart_id != cart.id:
            raise ValueError("the payment belongs to another cart")
        if payment.order_id is not None:
            return Order.objects.get(id=payment.order_id), False
        if payment.status != PaymentStatus.CAPTURED:
            raise OrderNotWritable(f"payment is {payment.status}, not captured")
        existing = Order.objects.filter(cart_id=cart.id).values_list("number", flat=True).first()
        if existing is not None:
            raise OrderNotWritable(f"the cart already has order {existing}: refund this payment")
        if cart.status == CartStatus.COMPLETED:
            raise OrderNotWritable("the cart is completed without an order")
        items = list(
            CartItem.objects.filter(cart=cart).select_related("product", "warehouse").order_by("id")
        )
        if not items:
            raise OrderNotWritable("the cart has no items")
        total = _total(items)
        if total != payment.amount:
            raise OrderNotWritable(
                f"the cart total {total} differs from the captured amount {payment.amount}"
            )
        matched, pending = _match_reservations(cart=cart, items=items, lapsed_ok=True)
        if matched.needs_repair:
            _repair_reservations(
                cart=cart, items=items, matched=matched, pending=pending, actor=actor
            )
        if cart.status != CartStatus.CHECKOUT:
            # The checkout was cancelled or abandoned while the payment went through: the
            # shopper paid, so the purchase stands (re-entering checkout to complete it).
            changed = transition_cart(cart, CartStatus.CHECKOUT, actor=actor, reason="paid")
            cart.save(update_fields=changed)

        order, order_items = orders.create_order(
            cart=cart,
            lines=[
                orders.OrderLine(
                    product_id=item.product_id,
                    warehouse_id=item.warehouse_id,
                    sku=item.product.sku,
                    name=item.product.name,
                    quantity=item.quantity,
                    unit_price=item.product.price,
                    reservation_id=matched.by_item[item.id].id,
                )
                for item in items
            ],
        )
        orders.confirm_order_reservations(order=order, items=order_items, actor=actor)
        Payment.objects.filter(id=payment.id).update(order=order, updated_at=timezone.now())
        changed = transition_cart(cart, CartStatus.COMPLETED, actor=actor, reason="order_created")
        cart.save(update_fields=changed)
        if payment.idempotency_key:
            IdempotencyKey.objects.filter(cart=cart, key=payment.idempotency_key).update(
                order=order, response_status=201
            )
    logger.info(
        "checkout.confirmed",
        extra={
            "event": "checkout.confirmed",
            "cart_id": str(cart_id),
            "order_id": str(order.id),
            "number": order.number,
            "payment_id": str(payment_id),
            "actor": actor,
        },
    )
    return order, True
