"""Waitlists (SPEC §15): a cart waits for units of a sold-out product, strictly first come
first served, each entry for its whole quantity.

While entries wait, the units they want are withheld from everyone else
(``StockLevel.waitlisted``, kept by ``inventory.services``). Units freed anywhere are
offered in the transaction that frees them (``services.serve_waitlists``); an offer is a
pending reservation held for the entry's cart for ``WAITLIST_OFFER_TTL_SECONDS`` with the
line put in the cart. Starting checkout with the offered hold claims it
(:func:`claim_offers`); an offer that lapses or is given up passes to the next entry.

Locks: join and leave lock the Cart row (the caller), then every stock row of the product
(ascending pk), then the product's waiting entries (ascending id); the offer step locks
entries after the stock rows too. So every change of a product's entries holds at least
one of its stock rows, and the counter on those rows is current for whoever locks one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from uuid import UUID

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Min, OuterRef, QuerySet, Subquery
from django.utils import timezone

from core import metrics
from inventory import locks, services
from inventory.errors import StockAvailable, WaitlistEntryNotFound
from inventory.models import (
    OPEN_WAITLIST_STATUSES,
    Product,
    ReleaseReason,
    ReservationStatus,
    StockLevel,
    WaitlistEntry,
    WaitlistStatus,
    Warehouse,
)

logger = logging.getLogger("inventory.waitlist")


def _with_position(entries: QuerySet[WaitlistEntry]) -> QuerySet[WaitlistEntry]:
    """Annotates ``position`` (1-based among the product's waiting entries, null unless
    waiting) and ``reservation_id`` (the offer's first reservation, or null)."""
    ahead = (
        WaitlistEntry.objects.filter(
            product_id=OuterRef("product_id"),
            status=WaitlistStatus.WAITING,
            id__lte=OuterRef("id"),
        )
        .order_by()
        .values("product_id")
        .annotate(n=Count("id"))
        .values("n")
    )
    return entries.annotate(
        queue_position=Subquery(ahead),
        first_reservation_id=Min("offer_reservations__id"),
    ).select_related("product", "warehouse")


def position_of(entry: WaitlistEntry) -> int | None:
    if entry.status != WaitlistStatus.WAITING:
        return None
    return getattr(entry, "queue_position", None)


def entries_for_cart(*, cart_id: UUID) -> list[WaitlistEntry]:
    """The cart's entries, newest first, with ``position`` and ``reservation_id``."""
    return list(_with_position(WaitlistEntry.objects.filter(cart_id=cart_id)).order_by("-id"))


def entry_for_cart(*, cart_id: UUID, entry_id: int | str) -> WaitlistEntry:
    try:
        wanted = int(entry_id)
    except (TypeError, ValueError):
        raise WaitlistEntryNotFound() from None
    entry = _with_position(WaitlistEntry.objects.filter(cart_id=cart_id, id=wanted)).first()
    if entry is None:
        raise WaitlistEntryNotFound()
    return entry


@dataclass(frozen=True)
class JoinResult:
    entry: WaitlistEntry
    created: bool


def _lock_product(product: Product, *, actor: str) -> list[StockLevel]:
    """Locks every stock row of the product; reclaims lapsed holds of them (their units
    go to earlier entries first); returns the rows as they stand (the reclaim keeps them
    current)."""
    rows, _ = locks.lock_product_rows([product.id])
    services._reclaim_lapsed(rows, actor=actor)
    return rows


def join(
    *,
    cart_id: UUID,
    product: Product,
    warehouse: Warehouse | None,
    quantity: int,
    actor: str,
) -> JoinResult:
    """Puts the cart on the product's waitlist for ``quantity`` units (from ``warehouse``
    only, if given). One open entry per cart and product: a second join changes a
    waiting entry's quantity (it keeps its place) and leaves an offered one as it is.
    Refused with :class:`StockAvailable` when the quantity can be reserved now (units
    wanted by other waiting entries count as taken). The caller holds the Cart lock."""
    if quantity <= 0:
        raise ValueError("quantity must be positive")
    with transaction.atomic():
        rows = _lock_product(product, actor=actor)
        existing = (
            WaitlistEntry.objects.select_for_update()
            .filter(cart_id=cart_id, product=product, status__in=OPEN_WAITLIST_STATUSES)
            .first()
        )
        if existing is not None and existing.status == WaitlistStatus.OFFERED:
            return JoinResult(entry_for_cart(cart_id=cart_id, entry_id=existing.id), False)
        others = max((row.waitlisted for row in rows), default=0) - (
            existing.quantity if existing is not None else 0
        )
        _, short = services.allocate(
            demands={(product.id, warehouse.id if warehouse else None): quantity},
            rows=rows,
            strategy=settings.ALLOCATION_STRATEGY,
            withheld={product.id: others},
        )
        if not short:
            metrics.waitlist_joins_total.labels(outcome="stock_available").inc()
            raise StockAvailable(details={"sku": product.sku, "requested": quantity})
        if existing is not None:
            existing.quantity = quantity
            existing.warehouse = warehouse
            existing.save(update_fields=["quantity", "warehouse", "updated_at"])
            entry_id, created = existing.id, False
        else:
            entry_id = WaitlistEntry.objects.create(
                product=product, warehouse=warehouse, cart_id=cart_id, quantity=quantity
            ).id
            created = True
        services.sync_waitlisted([product.id])
        if not created:
            # A smaller quantity may let this entry, or (at the head of the queue) the
            # ones behind it, be served from what is free now.
            services.serve_waitlists([product.id], actor=actor)
        services._on_commit_count(metrics.waitlist_joins_total, outcome="joined")
        logger.info(
            "waitlist.joined",
            extra={
                "event": "waitlist.joined",
                "entry_id": entry_id,
                "cart_id": str(cart_id),
                "sku": product.sku,
                "quantity": quantity,
                "actor": actor,
            },
        )
        return JoinResult(entry_for_cart(cart_id=cart_id, entry_id=entry_id), created)


def leave(*, cart_id: UUID, entry_id: int | str, actor: str) -> WaitlistEntry:
    """Cancels the cart's entry: a waiting one leaves the queue; an offered one gives its
    hold back, which passes to the next entry at once. An entry that has ended already is
    returned as it is. The caller holds the Cart lock."""
    entry = entry_for_cart(cart_id=cart_id, entry_id=entry_id)
    if entry.status not in OPEN_WAITLIST_STATUSES:
        return entry
    with transaction.atomic():
        locks.lock_product_rows([entry.product_id])
        entry = WaitlistEntry.objects.select_for_update().get(id=entry.id)
        if entry.status == WaitlistStatus.WAITING:
            now = timezone.now()
            entry.status, entry.ended_at = WaitlistStatus.CANCELLED, now
            entry.save(update_fields=["status", "ended_at", "updated_at"])
            services.sync_waitlisted([entry.product_id])
            # The entry may have stopped the queue: the ones behind it get what is free.
            services.serve_waitlists([entry.product_id], actor=actor, now=now)
        elif entry.status == WaitlistStatus.OFFERED:
            held = list(
                entry.offer_reservations.filter(status=ReservationStatus.PENDING).values_list(
                    "id", flat=True
                )
            )
            if held:
                # Ends the entry (cancelled) and offers the units to the next one.
                services.release(
                    reservation_ids=held, reason=ReleaseReason.WAITLIST_LEFT, actor=actor
                )
            else:
                now = timezone.now()
                entry.status, entry.ended_at = WaitlistStatus.CANCELLED, now
                entry.save(update_fields=["status", "ended_at", "updated_at"])
        logger.info(
            "waitlist.left",
            extra={"event": "waitlist.left", "entry_id": entry.id, "cart_id": str(cart_id)},
        )
    return entry_for_cart(cart_id=cart_id, entry_id=entry.id)


def claim_offers(*, reservation_ids: Iterable[int]) -> int:
    """Marks the offers held by these reservations (kept by a checkout that started with
    them) as claimed; returns how many."""
    ids = list(reservation_ids)
    if not ids:
        return 0
    now = timezone.now()
    claimed = WaitlistEntry.objects.filter(
        status=WaitlistStatus.OFFERED, offer_reservations__id__in=ids
    ).update(status=WaitlistStatus.CLAIMED, ended_at=now, updated_at=now)
    services._on_commit_count(metrics.waitlist_offers_total, claimed, outcome="claimed")
    return claimed


def products_waiting() -> QuerySet[Product]:
    """Products with waiting entries, oldest queue first."""
    return (
        Product.objects.filter(waitlist__status=WaitlistStatus.WAITING)
        .annotate(first_waiting=Min("waitlist__id"))
        .order_by("first_waiting")
        .distinct()
    )


def serve_product(*, product_id: UUID, actor: str) -> int:
    """The periodic pass for one product (job ``serve_waitlists``): locks all its stock
    rows (waiting), expires its lapsed holds (lapsed offers pass on), offers what is
    free, and sets its counter (an offer whose holds ended without the engine knowing is
    ``check_inventory --repair``'s to end).
    Catches what an offering transaction had to leave (a stock row another transaction
    held), a warehouse turned active, and entries of carts that closed. Returns the
    number of offers made."""
    with transaction.atomic():
        rows, _ = locks.lock_product_rows([product_id])
        if not rows:
            return 0
        services._reclaim_lapsed(rows, actor=actor)
        offers = services.serve_waitlists([product_id], actor=actor)
        services.sync_waitlisted([product_id])
        return len({r.waitlist_entry_id for r in offers})


def offers_without_hold() -> QuerySet[WaitlistEntry]:
    """Offered entries none of whose reservations is pending: bookkeeping that missed an
    end (``check_inventory`` reports them; ``--repair`` ends them)."""
    return WaitlistEntry.objects.filter(status=WaitlistStatus.OFFERED).exclude(
        offer_reservations__status=ReservationStatus.PENDING
    )
