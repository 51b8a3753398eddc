"""Live holds: every line of a cart holds a pending reservation (SPEC §3, §4, §7).

The one place that states "every line has a live hold". Checkout start, confirm (before
the payment) and order finalization (after it, also from reconciliation) all go through
:func:`ensure_live_holds`; an order whose hold was lost after it was written is held
again through :func:`hold_order_lines`, which the orders app calls through its hook
(``orders.services.register_line_holder``, registered in ``checkout.apps``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol
from uuid import UUID

from django.conf import settings
from django.utils import timezone

from checkout.selectors import pending_reservations
from inventory import locks as inventory_locks
from inventory import services as inventory
from inventory.models import ReleaseReason, Reservation

# A reservation this close to its expiry is replaced rather than kept, so that it cannot
# lapse between being checked and being extended.
LAPSING_MARGIN = timedelta(seconds=2)


class Line(Protocol):
    """A line to hold: a cart line or an order item."""

    id: int
    product_id: UUID
    warehouse_id: int
    quantity: int


@dataclass
class LiveHolds:
    """The pending reservation of every line (by line id); ``fresh`` are the ones made
    by this call (expiring ``ttl_seconds`` from then), the others were there already."""

    by_line: dict[int, Reservation] = field(default_factory=dict)
    fresh: list[Reservation] = field(default_factory=list)

    @property
    def kept(self) -> list[Reservation]:
        fresh_ids = {r.id for r in self.fresh}
        return [r for r in self.by_line.values() if r.id not in fresh_ids]


def ensure_live_holds(
    *,
    cart_id: UUID,
    items: Sequence[Line],
    ttl_seconds: int,
    actor: str,
    lapsed_ok: bool = False,
    pending: Sequence[Reservation] | None = None,
    release_unmatched: bool = True,
) -> LiveHolds:
    """Makes sure every line of ``items`` holds a pending reservation of the cart with
    the same product, warehouse and quantity, and returns them per line.

    A pending reservation of the cart that fits a line is kept as it is; one that has
    lapsed (or lapses within ``LAPSING_MARGIN``) is kept only with ``lapsed_ok`` (until
    someone expires it, it still holds its stock and can be confirmed, but it cannot be
    extended), else it is expired (or released if not yet lapsed). Reservations that fit
    no line are released (``item_removed``; with ``release_unmatched`` off they are left
    alone); lines without a reservation are reserved for ``ttl_seconds``. All or nothing:
    if stock is short, :class:`InsufficientStock` lists every short line and nothing is
    reserved. ``pending`` is the cart's pending reservations if the caller has them
    (saves a query).

    The caller holds the Cart lock (or, for a completed cart, the Order lock). Locks:
    when reservations are ended and others made, all stock rows involved are locked
    first, in one ascending-pk query, so the several service calls keep the lock order;
    otherwise the one service call locks them. Queries: constant in the number of lines.
    """
    if pending is None:
        pending = pending_reservations(cart_id=cart_id)
    now = timezone.now()
    wanted = {(item.product_id, item.warehouse_id) for item in items}
    by_pair: dict[tuple[UUID, int], Reservation] = {}
    stale: list[Reservation] = []
    lapsing: list[Reservation] = []
    for r in pending:
        pair = (r.product_id, r.warehouse_id)
        if not release_unmatched and pair not in wanted:
            continue
        if pair in by_pair:
            stale.append(r)
        elif r.expires_at <= now + LAPSING_MARGIN and not lapsed_ok:
            lapsing.append(r)
        else:
            by_pair[pair] = r
    holds = LiveHolds()
    unreserved: list[Line] = []
    for item in items:
        r = by_pair.pop((item.product_id, item.warehouse_id), None)
        if r is not None and r.quantity == item.quantity:
            holds.by_line[item.id] = r
        else:
            if r is not None:
                stale.append(r)
            unreserved.append(item)
    stale.extend(by_pair.values())
    if not (stale or lapsing or unreserved):
        return holds

    if stale or lapsing:
        pairs = wanted | {(r.product_id, r.warehouse_id) for r in (*stale, *lapsing)}
        inventory_locks.lock_stock_levels_for(pairs)
        now = timezone.now()
        lapsed = [r.id for r in lapsing if r.expires_at <= now]
        ending = [r.id for r in stale] + [r.id for r in lapsing if r.expires_at > now]
        if lapsed:
            inventory.expire(reservation_ids=lapsed, actor=actor)
        if ending:
            inventory.release(
                reservation_ids=ending, reason=ReleaseReason.ITEM_REMOVED, actor=actor
            )
    if unreserved:
        holds.fresh = inventory.reserve(
            lines=[
                inventory.ReservationLine(item.product_id, item.warehouse_id, item.quantity)
                for item in unreserved
            ],
            ttl_seconds=ttl_seconds,
            cart_id=cart_id,
            actor=actor,
        )
        fresh_by_pair = {(r.product_id, r.warehouse_id): r for r in holds.fresh}
        for item in unreserved:
            holds.by_line[item.id] = fresh_by_pair[(item.product_id, item.warehouse_id)]
    return holds


def hold_order_lines(*, cart_id: UUID, items: Sequence[Line], actor: str) -> dict[int, Reservation]:
    """Holds the given lines of an order written already (their reservation was lost):
    the cart's pending reservations of those lines are used, the missing quantity is
    reserved (``CHECKOUT_PAYMENT_TTL_SECONDS``), all or nothing; other pending
    reservations of the cart are left alone. Returns the reservation per item id.
    Registered with ``orders.services.register_line_holder`` (``checkout.apps``)."""
    return ensure_live_holds(
        cart_id=cart_id,
        items=items,
        ttl_seconds=settings.CHECKOUT_PAYMENT_TTL_SECONDS,
        actor=actor,
        lapsed_ok=True,
        release_unmatched=False,
    ).by_line
