"""Writing the order of a captured payment (SPEC §7.4, step 3 of the confirm).

One transaction, Cart lock first: the order and its items, their reservations confirmed
(stock deducted once, each reservation linked to the order), the Payment linked to the
order, the cart ``completed``, the ``Idempotency-Key`` bound to the order. Used by the
confirm right after the capture, by the shopper's retry and by reconciliation. If the
order cannot be written the money is kept: the payment stays ``captured`` without an
order, marked ``ORDER_NOT_WRITTEN`` (what a concurrent confirm and the admin see).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone

from carts.locks import lock_cart
from carts.models import CartItem, CartStatus
from carts.serializers import line_total
from carts.transitions import transition_cart
from checkout.holds import ensure_live_holds
from checkout.idempotency import bind_idempotency_key
from orders import services as orders
from orders.models import Order
from payments import locks as payment_locks
from payments.models import Payment, PaymentStatus

logger = logging.getLogger("checkout.confirm")

# Payment.error_code of a captured payment whose order could not be written yet.
ORDER_NOT_WRITTEN = "ORDER_NOT_WRITTEN"


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


class OrderNotWritable(Exception):
    """The order of a captured payment cannot be written as things stand (staff must
    look); carries the reason."""


def cart_total(items: Sequence[CartItem]) -> Decimal:
    return sum((line_total(item) for item in items), Decimal("0.00"))


def cart_lines(cart_id: UUID) -> list[CartItem]:
    """The cart's lines with their product and warehouse, in line order (one query)."""
    return list(
        CartItem.objects.filter(cart_id=cart_id)
        .select_related("product", "warehouse")
        .order_by("id")
    )


def write_order(*, cart_id: UUID, payment: Payment, actor: str) -> ConfirmResult:
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
        note_order_not_written(payment, exc)
        return ConfirmResult(order=None, payment=payment)
    return ConfirmResult(order=order, payment=payment, created=created)


def note_order_not_written(payment: Payment, exc: Exception) -> None:
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


def finalize_order(*, cart_id: UUID, payment_id: UUID, actor: str) -> Order:
    """Writes the order of a captured payment, in one transaction: Cart lock, Payment
    lock, order and items from the cart, the lines' reservations confirmed (stock
    deducted once, each linked to the order), Payment linked, cart ``completed``, the
    Idempotency-Key bound to the order.

    Used by confirm right after the capture and by reconciliation later; idempotent (a
    payment that has its order returns it). Lines whose reservation is gone are reserved
    again (:func:`checkout.holds.ensure_live_holds`); if stock is short this raises
    :class:`InsufficientStock`. A cart that already has an order, or whose total no
    longer matches the captured amount, raises :class:`OrderNotWritable`.
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
        items = cart_lines(cart.id)
        if not items:
            raise OrderNotWritable("the cart has no items")
        total = cart_total(items)
        if total != payment.amount:
            raise OrderNotWritable(
                f"the cart total {total} differs from the captured amount {payment.amount}"
            )
        # A lapsed reservation nobody reclaimed still holds its stock and can be confirmed.
        holds = ensure_live_holds(
            cart_id=cart.id,
            items=items,
            ttl_seconds=settings.CHECKOUT_PAYMENT_TTL_SECONDS,
            actor=actor,
            lapsed_ok=True,
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
                    # The item's warehouse is its first allocation's (API.md v1.1).
                    warehouse_id=holds.by_line[item.id][0].warehouse_id,
                    sku=item.product.sku,
                    name=item.product.name,
                    quantity=item.quantity,
                    unit_price=item.product.price,
                )
                for item in items
            ],
        )
        orders.confirm_order_reservations(
            order=order,
            items=order_items,
            holds={
                order_item.id: holds.by_line[item.id]
                for item, order_item in zip(items, order_items, strict=True)
            },
            actor=actor,
        )
        Payment.objects.filter(id=payment.id).update(order=order, updated_at=timezone.now())
        changed = transition_cart(cart, CartStatus.COMPLETED, actor=actor, reason="order_created")
        cart.save(update_fields=changed)
        bind_idempotency_key(cart=cart, key=payment.idempotency_key, order=order)
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
