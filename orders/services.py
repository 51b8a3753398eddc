"""Writes of orders: creation from a paid cart, reservation confirmation, the status flow
and cancellation.

Status flow: ``pending → confirmed → processing → shipped → delivered``; ``cancelled``
from ``pending``, ``confirmed`` or ``processing``. Anything else is refused with
:class:`InvalidOrderStatus`.

Locks: the Order row (``orders.locks``), then the stock rows and reservations through
``inventory.services`` (which lock them in ascending pk order). ``create_order`` runs
under the caller's Cart lock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

from django.db import connection, transaction
from django.utils import timezone

from carts.models import Cart
from core import metrics
from inventory import services as inventory
from inventory.errors import InsufficientStock, ReservationNotActive
from inventory.models import ReleaseReason, Reservation, ReservationStatus
from orders import locks
from orders.errors import InvalidOrderStatus
from orders.models import Order, OrderItem, OrderStatus

logger = logging.getLogger("orders")

CENTS = Decimal("0.01")

TRANSITIONS: dict[str, frozenset[str]] = {
    OrderStatus.PENDING: frozenset({OrderStatus.CONFIRMED, OrderStatus.CANCELLED}),
    OrderStatus.CONFIRMED: frozenset({OrderStatus.PROCESSING, OrderStatus.CANCELLED}),
    OrderStatus.PROCESSING: frozenset({OrderStatus.SHIPPED, OrderStatus.CANCELLED}),
    OrderStatus.SHIPPED: frozenset({OrderStatus.DELIVERED}),
    OrderStatus.DELIVERED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
}
# What the shopper (cart token or owning customer) may cancel; staff may cancel whatever
# TRANSITIONS allows.
SHOPPER_CANCELLABLE = frozenset({OrderStatus.PENDING})

CONFIRMATION_ERRORS_KEY = "reservation_confirmation_errors"

# Holds stock again for order items whose reservation was lost: called with ``cart_id``,
# ``items`` and ``actor``, returns a pending reservation per item id (all or nothing, else
# ``InsufficientStock``). Orders sit below checkout and never reserve on their own; the
# checkout registers its holder (``checkout.apps``), which keeps "every line has a live
# hold" in one place.
LineHolder = Callable[..., dict[int, Reservation]]
_line_holders: list[LineHolder] = []


def register_line_holder(holder: LineHolder) -> None:
    """Registers the function that holds order lines again (the checkout's)."""
    if holder not in _line_holders:
        _line_holders.append(holder)


@dataclass(frozen=True)
class OrderLine:
    """One line of a new order, copied from a cart line at the moment of purchase."""

    product_id: UUID
    warehouse_id: int
    sku: str
    name: str
    quantity: int
    unit_price: Decimal

    @property
    def line_total(self) -> Decimal:
        return (self.unit_price * self.quantity).quantize(CENTS)


def next_order_number() -> str:
    """A readable, unique number from the ``orders_order_number_seq`` sequence (no lock)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval('orders_order_number_seq')")
        (value,) = cursor.fetchone()
    return f"ORD-{value}"


def create_order(*, cart: Cart, lines: Sequence[OrderLine]) -> tuple[Order, list[OrderItem]]:
    """Writes the order of ``cart`` (status ``pending``) and its items (one per product:
    an item's reservations are the order's reservations of its product); addresses,
    payment method, customer and currency are copied from the cart. The caller holds the Cart lock inside a transaction; ``Order.cart`` is unique,
    so a second order for the cart fails. Four queries whatever the number of lines."""
    subtotal = sum((line.line_total for line in lines), Decimal("0.00")).quantize(CENTS)
    order = Order.objects.create(
        number=next_order_number(),
        status=OrderStatus.PENDING,
        cart=cart,
        customer_id=cart.customer_id,
        currency=cart.currency,
        subtotal=subtotal,
        shipping_total=Decimal("0.00"),
        total=subtotal,
        shipping_address=cart.shipping_address,
        billing_address=cart.billing_address,
        payment_method=cart.payment_method,
        shipping_method_id=cart.shipping_method_id,
    )
    items = OrderItem.objects.bulk_create(
        [
            OrderItem(
                order=order,
                product_id=line.product_id,
                warehouse_id=line.warehouse_id,
                sku=line.sku,
                name=line.name,
                quantity=line.quantity,
                unit_price=line.unit_price,
                line_total=line.line_total,
            )
            for line in lines
        ]
    )
    logger.info(
        "order.created",
        extra={
            "event": "order.created",
            "order_id": str(order.id),
            "number": order.number,
            "cart_id": str(cart.id),
            "total": str(order.total),
            "lines": len(items),
        },
    )
    return order, items


def confirm_order_reservations(
    *,
    order: Order,
    items: Sequence[OrderItem] | None = None,
    holds: Mapping[int, Reservation] | None = None,
    actor: str,
) -> list[dict[str, object]]:
    """Confirms the reservations of the order's items (stock leaves ``on_hand``) and so
    links them to the order (``Reservation.order``).

    ``holds`` is the pending reservation of each item (by item id) that the caller
    secured (the checkout, when it writes the order). An item without one uses the
    order's own reservation of its product (a retry), or, if it has none, is held again
    through the registered line holder (the checkout's). The payment was taken, so a
    reservation that cannot be confirmed never fails the order: the others are
    confirmed, a line whose reservation is gone gets a fresh reservation confirmed at
    once if stock allows, and whatever is still unconfirmed is recorded in
    ``order.metadata`` under ``reservation_confirmation_errors`` (and returned) for
    staff. Idempotent: calling it again (as the change to ``confirmed`` does) retries
    only what failed. Runs inside the caller's transaction, with the Order (or Cart) row
    locked by the caller.
    """
    items = list(items) if items is not None else list(order.items.all())
    held: dict[int, Reservation] = dict(holds or {})
    unheld = [item for item in items if item.id not in held]
    done: set[int] = set()
    if unheld:
        own: dict[UUID, Reservation] = {}
        for r in Reservation.objects.filter(
            order_id=order.id,
            product_id__in={item.product_id for item in unheld},
            status__in=[ReservationStatus.PENDING, ReservationStatus.CONFIRMED],
        ).order_by("id"):
            current = own.get(r.product_id)
            if current is None or (
                r.status == ReservationStatus.CONFIRMED
                and current.status != ReservationStatus.CONFIRMED
            ):
                own[r.product_id] = r
        for item in unheld:
            r = own.get(item.product_id)
            if r is None:
                continue
            if r.status == ReservationStatus.CONFIRMED:
                done.add(item.id)
            else:
                held[item.id] = r

    refused: set[int] = set()
    remaining = [r.id for r in held.values()]
    while remaining:
        try:
            inventory.confirm(reservation_ids=remaining, order_id=order.id, actor=actor)
            break
        except ReservationNotActive as exc:
            # confirm is all-or-nothing per call: set the refused ones aside, confirm the rest.
            newly_refused = set(exc.details.get("reservation_ids", [])) - refused
            if not newly_refused:
                raise
            refused |= newly_refused
            remaining = [rid for rid in remaining if rid not in refused]

    lost = [
        item
        for item in items
        if item.id not in done and (item.id not in held or held[item.id].id in refused)
    ]
    errors: list[dict[str, object]] = []
    if lost:
        errors = _hold_again(order=order, items=lost, held=held, actor=actor)

    had_errors = CONFIRMATION_ERRORS_KEY in (order.metadata or {})
    if errors or had_errors:
        metadata = dict(order.metadata or {})
        if errors:
            metadata[CONFIRMATION_ERRORS_KEY] = errors
            transaction.on_commit(metrics.orders_stock_issues_total.inc)
            logger.error(
                "order.reservations_unconfirmed",
                extra={
                    "event": "order.reservations_unconfirmed",
                    "order_id": str(order.id),
                    "errors": errors,
                    "actor": actor,
                },
            )
        else:
            metadata.pop(CONFIRMATION_ERRORS_KEY, None)
            metadata["reservation_confirmation_resolved_at"] = timezone.now().isoformat()
        order.metadata = metadata
        Order.objects.filter(id=order.id).update(metadata=metadata, updated_at=timezone.now())
    return errors


def _hold_again(
    *, order: Order, items: Sequence[OrderItem], held: Mapping[int, Reservation], actor: str
) -> list[dict[str, object]]:
    """Holds the lost lines again through the line holder and confirms them at once (one
    savepoint: all or nothing); returns the errors of the lines it could not hold
    (``held``: the reservation each had, if any, refused by the confirmation)."""
    code, short = "RESERVATION_NOT_ACTIVE", {}
    for holder in _line_holders[:1]:
        try:
            with transaction.atomic():
                fresh = holder(cart_id=order.cart_id, items=items, actor=actor)
                inventory.confirm(
                    reservation_ids=[fresh[item.id].id for item in items],
                    order_id=order.id,
                    actor=actor,
                )
            return []
        except InsufficientStock as exc:
            code, short = "INSUFFICIENT_STOCK", {entry["product_id"]: entry for entry in exc.items}
    now = timezone.now().isoformat()
    return [
        {
            "item_id": item.id,
            "sku": item.sku,
            "reservation_id": held[item.id].id if item.id in held else None,
            "code": code,
            "available": short.get(str(item.product_id), {}).get("available"),
            "requested": item.quantity,
            "at": now,
        }
        for item in items
    ]


def _order_reservation_ids(order: Order) -> list[int]:
    return list(Reservation.objects.filter(order_id=order.id).values_list("id", flat=True))


def cancel_order(*, order_id: UUID, actor: str, by_staff: bool) -> Order:
    """Cancels the order and gives its stock back: confirmed reservations are restocked
    (``on_hand += q``), pending ones released. A shopper may cancel only a ``pending``
    order; staff also a ``confirmed`` or ``processing`` one. Locks: the Order row, then
    stock rows and reservations (through ``inventory.services.restock``)."""
    with transaction.atomic():
        order = locks.lock_order(order_id)
        if by_staff:
            allowed = OrderStatus.CANCELLED in TRANSITIONS[order.status]
        else:
            allowed = order.status in SHOPPER_CANCELLABLE
        if not allowed:
            raise InvalidOrderStatus(
                order.status,
                OrderStatus.CANCELLED,
                f"An order in status '{order.status}' cannot be cancelled",
            )
        inventory.restock(
            reservation_ids=_order_reservation_ids(order),
            reason=ReleaseReason.ORDER_CANCELLED,
            actor=actor,
        )
        source = order.status
        now = timezone.now()
        order.status = OrderStatus.CANCELLED
        order.cancelled_at = now
        order.save(update_fields=["status", "cancelled_at", "updated_at"])
        _log_status(order, source, actor)
        return order


def change_order_status(*, order_id: UUID, status: str, actor: str) -> Order:
    """Moves the order along the status flow (staff). ``cancelled`` cancels it (see
    :func:`cancel_order`); ``confirmed`` first retries any reservation confirmation that
    had failed. Locks: the Order row (then stock rows and reservations when stock moves)."""
    if status == OrderStatus.CANCELLED:
        return cancel_order(order_id=order_id, actor=actor, by_staff=True)
    with transaction.atomic():
        order = locks.lock_order(order_id)
        if status not in TRANSITIONS[order.status]:
            raise InvalidOrderStatus(
                order.status,
                status,
                f"An order in status '{order.status}' cannot move to '{status}'",
            )
        if status == OrderStatus.CONFIRMED:
            confirm_order_reservations(order=order, actor=actor)
        source = order.status
        order.status = status
        order.save(update_fields=["status", "updated_at"])
        _log_status(order, source, actor)
        return order


def _log_status(order: Order, source: str, actor: str) -> None:
    logger.info(
        "order.status_changed",
        extra={
            "event": "order.status_changed",
            "order_id": str(order.id),
            "number": order.number,
            "from_status": source,
            "to_status": order.status,
            "actor": actor,
        },
    )
