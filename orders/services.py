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
from orders.errors import InvalidOrderStatus, OrderNotFound
from orders.models import Order, OrderEvent, OrderItem, OrderStatus
from payments import refunds
from payments.models import Payment, PaymentStatus

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

# Timeline actions besides status changes (``status:<from>→<to>``).
EVENT_CANCELLED = "cancelled"
EVENT_NOTE = "note"
EVENT_REFUND = "refund"

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
    an item's reservations are the order's reservations of its product); email, addresses,
    payment method, customer and currency are copied from the cart. The caller holds the Cart lock inside a transaction; ``Order.cart`` is unique,
    so a second order for the cart fails. Four queries whatever the number of lines."""
    subtotal = sum((line.line_total for line in lines), Decimal("0.00")).quantize(CENTS)
    order = Order.objects.create(
        number=next_order_number(),
        status=OrderStatus.PENDING,
        cart=cart,
        customer_id=cart.customer_id,
        email=cart.email,
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


@dataclass(frozen=True)
class _MissingLine:
    """What an order item still lacks: ``quantity`` of its product, from any active
    warehouse (the line holder allocates it)."""

    id: int
    product_id: UUID
    quantity: int
    warehouse_id: int | None = None


def confirm_order_reservations(
    *,
    order: Order,
    items: Sequence[OrderItem] | None = None,
    holds: Mapping[int, Sequence[Reservation]] | None = None,
    actor: str,
) -> list[dict[str, object]]:
    """Confirms the reservations of the order's items (stock leaves ``on_hand`` of each
    warehouse an item was allocated to) and so links them to the order
    (``Reservation.order``).

    ``holds`` is the pending reservations of each item (by item id; one per warehouse)
    that the caller secured (the checkout, when it writes the order). An item without
    them uses the order's own reservations of its product (a retry), and whatever it still
    lacks is held again through the registered line holder (the checkout's). The payment
    was taken, so a reservation that cannot be confirmed never fails the order: the
    others are confirmed, the quantity a line lost gets a fresh reservation confirmed at
    once if stock allows, and whatever is still unconfirmed is recorded in
    ``order.metadata`` under ``reservation_confirmation_errors`` (and returned) for
    staff. Idempotent: calling it again (as the change to ``confirmed`` does) retries
    only what failed. Runs inside the caller's transaction, with the Order (or Cart) row
    locked by the caller.
    """
    items = list(items) if items is not None else list(order.items.all())
    held: dict[int, list[Reservation]] = {key: list(value) for key, value in (holds or {}).items()}
    unheld = [item for item in items if item.id not in held]
    confirmed_before: dict[int, int] = {}
    if unheld:
        own: dict[UUID, list[Reservation]] = {}
        for r in Reservation.objects.filter(
            order_id=order.id,
            product_id__in={item.product_id for item in unheld},
            status__in=[ReservationStatus.PENDING, ReservationStatus.CONFIRMED],
        ).order_by("id"):
            own.setdefault(r.product_id, []).append(r)
        for item in unheld:
            mine = own.get(item.product_id, [])
            confirmed_before[item.id] = sum(
                r.quantity for r in mine if r.status == ReservationStatus.CONFIRMED
            )
            held[item.id] = [r for r in mine if r.status == ReservationStatus.PENDING]

    refused: set[int] = set()
    remaining = [r.id for reservations in held.values() for r in reservations]
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

    lost: list[tuple[OrderItem, int]] = []
    for item in items:
        confirmed = confirmed_before.get(item.id, 0) + sum(
            r.quantity for r in held.get(item.id, []) if r.id not in refused
        )
        if confirmed < item.quantity:
            lost.append((item, item.quantity - confirmed))
    errors: list[dict[str, object]] = []
    if lost:
        errors = _hold_again(order=order, lost=lost, held=held, actor=actor)

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
    *,
    order: Order,
    lost: Sequence[tuple[OrderItem, int]],
    held: Mapping[int, Sequence[Reservation]],
    actor: str,
) -> list[dict[str, object]]:
    """Holds what the lost lines lack (``(item, missing quantity)``) again through the
    line holder, from any active warehouse, and confirms it at once (one savepoint: all
    or nothing); returns the errors of the lines it could not hold (``held``: the
    reservations each had, refused by the confirmation)."""
    code, short = "RESERVATION_NOT_ACTIVE", {}
    lines = [_MissingLine(id=item.id, product_id=item.product_id, quantity=q) for item, q in lost]
    for holder in _line_holders[:1]:
        try:
            with transaction.atomic():
                fresh = holder(cart_id=order.cart_id, items=lines, actor=actor)
                inventory.confirm(
                    reservation_ids=[r.id for line in lines for r in fresh[line.id]],
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
            "reservation_id": held[item.id][0].id if held.get(item.id) else None,
            "code": code,
            "available": short.get(str(item.product_id), {}).get("available"),
            "requested": missing,
            "at": now,
        }
        for item, missing in lost
    ]


def _order_reservation_ids(order: Order) -> list[int]:
    return list(Reservation.objects.filter(order_id=order.id).values_list("id", flat=True))


def cancel_order(*, order_id: UUID, actor: str, by_staff: bool) -> Order:
    """Cancels the order and gives its stock back: confirmed reservations are restocked
    (``on_hand += q``), pending ones released. A shopper may cancel only a ``pending``
    order; staff also a ``confirmed`` or ``processing`` one. Its captured payment is
    refunded exactly once (``refund_pending`` here, the gateway called after the commit by
    ``payments.refunds``). Locks: the Order row, then stock rows and reservations (through
    ``inventory.services.restock``), then the payment row."""
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
        _request_refund(order=order, actor=actor)
        return order


def _request_refund(*, order: Order, actor: str) -> None:
    """The captured payment of a cancelled order is owed back (SPEC §13): marked
    ``refund_pending`` in this transaction; the gateway is called after the commit, never
    under the order's lock (``payments.refunds``)."""
    captured = Payment.objects.select_for_update(of=("self",)).filter(
        order_id=order.id, status=PaymentStatus.CAPTURED
    )
    for payment in captured:
        if refunds.request_refund(payment=payment, actor=actor):
            record_event(
                order=order,
                actor=actor,
                action=EVENT_REFUND,
                note=f"refund of {payment.amount} {payment.currency} requested",
            )


def change_order_status(*, order_id: UUID, status: str, actor: str, note: str = "") -> Order:
    """Moves the order along the status flow (staff) and records it in the timeline (with
    ``note``, if any). ``cancelled`` cancels it (see :func:`cancel_order`); ``confirmed``
    first retries any reservation confirmation that had failed. Locks: the Order row (then
    stock rows and reservations when stock moves)."""
    if status == OrderStatus.CANCELLED:
        with transaction.atomic():
            order = cancel_order(order_id=order_id, actor=actor, by_staff=True)
            if note:
                record_event(order=order, actor=actor, action=EVENT_NOTE, note=note)
            return order
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
        _log_status(order, source, actor, note)
        return order


def record_event(*, order: Order | UUID, actor: str, action: str, note: str = "") -> OrderEvent:
    """Appends one entry to the order timeline (status change, cancel, refund, note) and
    returns it. Runs in the caller's transaction, so the entry exists exactly when the
    action it records does; takes no lock (entries only accumulate)."""
    order_id = order.id if isinstance(order, Order) else order
    return OrderEvent.objects.create(order_id=order_id, actor=actor, action=action, note=note)


def add_note(*, order_id: UUID, actor: str, note: str) -> OrderEvent:
    """Adds a staff note to the order's timeline (:class:`OrderNotFound` if no order)."""
    if not Order.objects.filter(id=order_id).exists():
        raise OrderNotFound()
    return record_event(order=order_id, actor=actor, action=EVENT_NOTE, note=note)


def status_action(source: str, target: str) -> str:
    """The timeline action of a status change: ``cancelled`` for a cancel, else
    ``status:<from>→<to>``."""
    if target == OrderStatus.CANCELLED:
        return EVENT_CANCELLED
    return f"status:{source}→{target}"


def _log_status(order: Order, source: str, actor: str, note: str = "") -> None:
    record_event(order=order, actor=actor, action=status_action(source, order.status), note=note)
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
