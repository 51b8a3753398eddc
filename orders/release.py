"""Order-level release (ops): end the pending reservations an order still holds.

Used by ``manage.py release_order_reservations``. Confirmed reservations are reported,
never touched here: their stock left ``on_hand`` and comes back only by cancelling the
order (``orders.services.cancel_order``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Q, QuerySet

from inventory import services as inventory
from inventory.models import ReleaseReason, Reservation, ReservationStatus
from orders.models import Order


@dataclass
class OrderRelease:
    """What ``release_order_reservations`` found for an order, by reservation id."""

    released: list[int] = field(default_factory=list)  # pending → released now
    confirmed: list[int] = field(default_factory=list)  # left: cancel the order to restock
    ended: list[int] = field(default_factory=list)  # already released or expired


def reservations_of_order(order: Order) -> QuerySet[Reservation]:
    """The order's reservations (``Reservation.order``) and any pending ones left on the
    cart it came from."""
    return Reservation.objects.filter(
        Q(order_id=order.id) | Q(cart_id=order.cart_id, status=ReservationStatus.PENDING)
    )


def release_order_reservations(
    *, order: Order, batch_size: int, actor: str, dry_run: bool = False
) -> OrderRelease:
    """Releases the pending reservations of an order (reason ``ops``), ``batch_size`` per
    transaction, through ``services.release``. Confirmed ones are reported, not touched:
    their stock left ``on_hand`` and comes back only by cancelling the order."""
    outcome = OrderRelease()
    pending: list[int] = []
    for rid, status in reservations_of_order(order).order_by("id").values_list("id", "status"):
        if status == ReservationStatus.PENDING:
            pending.append(rid)
        elif status == ReservationStatus.CONFIRMED:
            outcome.confirmed.append(rid)
        else:
            outcome.ended.append(rid)
    if dry_run:
        outcome.released = pending
        return outcome
    for start in range(0, len(pending), batch_size):
        chunk = pending[start : start + batch_size]
        for r in inventory.release(reservation_ids=chunk, reason=ReleaseReason.OPS, actor=actor):
            if r.status == ReservationStatus.RELEASED and r.release_reason == ReleaseReason.OPS:
                outcome.released.append(r.id)
            elif r.status == ReservationStatus.CONFIRMED:
                outcome.confirmed.append(r.id)
            else:
                outcome.ended.append(r.id)
    return outcome
