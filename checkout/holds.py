"""Live holds: every line of a cart is held by pending reservations, one per warehouse the
line is allocated to (SPEC §3, §4, §7, §14).

The one place that states "every line has a live hold". Checkout start, confirm (before
the payment) and order finalization (after it, also from reconciliation) all go through
:func:`ensure_live_holds`; an order whose hold was lost after it was written is held
again through :func:`hold_order_lines`, which the orders app calls through its hook
(``orders.services.register_line_holder``, registered in ``checkout.apps``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol
from uuid import UUID

from django.conf import settings
from django.utils import timezone

from checkout.selectors import pending_reservations
from inventory import locks as inventory_locks
from inventory import services as inventory
from inventory import waitlist
from inventory.models import ReleaseReason, Reservation

# A reservation this close to its expiry is replaced rather than kept, so that it cannot
# lapse between being checked and being extended.
LAPSING_MARGIN = timedelta(seconds=2)


class Line(Protocol):
    """A line to hold: a cart line or an order item. ``warehouse_id`` is the warehouse the
    line is pinned to, or None when any active warehouse may serve it."""

    id: int
    product_id: UUID
    warehouse_id: int | None
    quantity: int


@dataclass
class LiveHolds:
    """The pending reservations of every line (by line id; one per warehouse the line is
    allocated to, in allocation order); ``fresh`` are the ones made by this call (expiring
    ``ttl_seconds`` from then), the others were there already."""

    by_line: dict[int, list[Reservation]] = field(default_factory=dict)
    fresh: list[Reservation] = field(default_factory=list)

    @property
    def kept(self) -> list[Reservation]:
        fresh_ids = {r.id for r in self.fresh}
        return [r for held in self.by_line.values() for r in held if r.id not in fresh_ids]

    @property
    def all(self) -> list[Reservation]:
        return [r for held in self.by_line.values() for r in held]


def _fits(item: Line, held: list[Reservation]) -> bool:
    """Whether a line's pending reservations hold exactly the line: its quantity in all,
    each in the line's warehouse if it is pinned (an unpinned line's holds may be in any
    warehouse, also one deactivated since: existing holds run their course)."""
    return sum(r.quantity for r in held) == item.quantity and all(
        item.warehouse_id is None or r.warehouse_id == item.warehouse_id for r in held
    )


def ensure_live_holds(
    *,
    cart_id: UUID,
    items: Sequence[Line],
    ttl_seconds: int,
    actor: str,
    lapsed_ok: bool = False,
    pending: Sequence[Reservation] | None = None,
    release_unmatched: bool = True,
    scarcity_ttl_seconds: int | None = None,
    limit_check: Callable[[dict[UUID, int]], None] | None = None,
    serialize_products: Iterable[UUID] = (),
) -> LiveHolds:
    """Makes sure every line of ``items`` is held by pending reservations of the cart that
    together hold the line's quantity of its product (in its warehouse if it is pinned,
    else in whichever warehouses the allocation chose: one reservation per line and
    warehouse), and returns them per line.

    A cart (and an order) has one line per product, so the line's reservations are the
    cart's pending reservations of its product. Reservations that hold the line exactly
    are kept as they are; if any of them has lapsed (or lapses within
    ``LAPSING_MARGIN``) they are kept only with ``lapsed_ok`` (until someone expires it,
    a lapsed hold still holds its stock and can be confirmed, but it cannot be extended).
    Otherwise the line's reservations end (lapsed ones expire, the others are released,
    ``item_removed``) and the line is allocated afresh for ``ttl_seconds``. Reservations
    of no line are released too (with ``release_unmatched`` off they are left alone). All
    or nothing: if stock is short, :class:`InsufficientStock` lists every short line and
    nothing is reserved. ``pending`` is the cart's pending reservations if the caller has
    them (saves a query). A waitlist offer held for the cart that holds its line exactly
    is kept like any other hold, and claimed (``inventory.waitlist.claim_offers``).
    ``scarcity_ttl_seconds``, ``limit_check`` and ``serialize_products`` are passed to
    ``inventory.services.reserve`` for the lines allocated afresh; a kept offer of a
    product in ``serialize_products`` is given to ``limit_check`` too (under the same
    locks), since no reserve checks it.

    The caller holds the Cart lock (or, for a completed cart, the Order lock). Locks:
    when reservations are ended and others made (or a kept offer's limit is checked),
    every stock row involved (the ended reservations' rows, every candidate row of the
    lines to allocate, every active row of ``serialize_products``) is locked first, in
    one ascending-pk query, so the several service calls keep the lock order; otherwise
    the one service call locks them. Offers are claimed after the stock rows are locked.
    Queries: constant in the number of lines and warehouses.
    """
    if pending is None:
        pending = pending_reservations(cart_id=cart_id)
    now = timezone.now()
    by_product: dict[UUID, list[Reservation]] = defaultdict(list)
    for r in pending:
        by_product[r.product_id].append(r)
    holds = LiveHolds()
    ending: list[Reservation] = []
    unreserved: list[Line] = []
    for item in items:
        held = by_product.pop(item.product_id, [])
        lapsing = any(r.expires_at <= now + LAPSING_MARGIN for r in held)
        if held and _fits(item, held) and (lapsed_ok or not lapsing):
            holds.by_line[item.id] = held
        else:
            ending.extend(held)
            unreserved.append(item)
    if release_unmatched:
        ending.extend(r for held in by_product.values() for r in held)
    offers = [r for held in holds.by_line.values() for r in held if r.waitlist_entry_id]
    # A kept offer of a limited product is held for this cart without a reserve: its
    # limit is checked here, under the same locks a reserve would take.
    offered_units: dict[UUID, int] = defaultdict(int)
    if limit_check is not None:
        serialized = set(serialize_products)
        for r in offers:
            if r.product_id in serialized:
                offered_units[r.product_id] += r.quantity
    if ending or offered_units:
        inventory_locks.lock_allocation_candidates(
            pinned={(r.product_id, r.warehouse_id) for r in ending}
            | {(i.product_id, i.warehouse_id) for i in unreserved if i.warehouse_id is not None},
            unpinned={i.product_id for i in unreserved if i.warehouse_id is None}
            | set(serialize_products),
        )
    if offered_units:
        limit_check(dict(offered_units))
    if not (ending or unreserved):
        _claim(offers)
        return holds

    if ending:
        now = timezone.now()
        lapsed = [r.id for r in ending if r.expires_at <= now]
        live = [r.id for r in ending if r.expires_at > now]
        if lapsed:
            inventory.expire(reservation_ids=lapsed, actor=actor)
        if live:
            inventory.release(reservation_ids=live, reason=ReleaseReason.ITEM_REMOVED, actor=actor)
    if unreserved:
        holds.fresh = inventory.reserve(
            lines=[
                inventory.ReservationLine(item.product_id, item.warehouse_id, item.quantity)
                for item in unreserved
            ],
            ttl_seconds=ttl_seconds,
            cart_id=cart_id,
            actor=actor,
            scarcity_ttl_seconds=scarcity_ttl_seconds,
            limit_check=limit_check,
            serialize_products=serialize_products,
        )
        fresh_by_product: dict[UUID, list[Reservation]] = defaultdict(list)
        for r in holds.fresh:
            fresh_by_product[r.product_id].append(r)
        for item in unreserved:
            holds.by_line[item.id] = fresh_by_product[item.product_id]
    _claim(offers)
    return holds


def _claim(offers: Sequence[Reservation]) -> None:
    """Claims the waitlist offers a checkout kept, once every stock row it needed is
    locked (lock order: stock rows, then waitlist entries)."""
    if offers:
        waitlist.claim_offers(reservation_ids=[r.id for r in offers])


def hold_order_lines(
    *, cart_id: UUID, items: Sequence[Line], actor: str
) -> dict[int, list[Reservation]]:
    """Holds the given lines of an order written already (their reservations were lost):
    the cart's pending reservations of those lines are used, the missing quantity is
    reserved (``CHECKOUT_PAYMENT_TTL_SECONDS``), all or nothing; other pending
    reservations of the cart are left alone. Returns the reservations per item id.
    Registered with ``orders.services.register_line_holder`` (``checkout.apps``)."""
    return ensure_live_holds(
        cart_id=cart_id,
        items=items,
        ttl_seconds=settings.CHECKOUT_PAYMENT_TTL_SECONDS,
        actor=actor,
        lapsed_ok=True,
        release_unmatched=False,
    ).by_line
