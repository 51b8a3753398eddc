"""The consistency check behind ``manage.py check_inventory`` (SPEC §3, §15), and the
repair of the drift it finds.

The check reads; it takes no lock. Each batch is one statement, so a row's counters and
its reservations come from the same snapshot even while shoppers keep reserving; each
waitlist check is one statement too.

The repair is the one writer of a stock number outside ``inventory.services``: it resets a
drifted ``reserved`` counter to the sum of the row's pending reservations (never
``on_hand``, never a reservation). Locks: the stock rows, ascending pk, through
``inventory.locks``, the same order as every stock change; their reservations are then
read unlocked, which is safe because any change to them locks the stock row first. Each
change is logged (``inventory.check``, event ``stock.reserved_repaired``).

Waitlists (SPEC §15): a drifted ``waitlisted`` counter is set again from the waiting
entries (``services.sync_waitlisted``), an offer none of whose reservations is pending any
more is ended as lapsed, and a product whose first waiting entry could be served from
what is free gets the periodic pass (``waitlist.serve_product``): each with every stock
row of the product locked first (ascending pk), then its entries, the engine's order.
Logged as ``stock.waitlisted_repaired`` and ``waitlist.offer_repaired``; a missed offer
served is logged by the engine (``waitlist.offered``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from uuid import UUID

from django.db import connection, transaction
from django.db.models import Count, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from core import metrics
from inventory import locks, services, waitlist
from inventory.models import (
    OPEN_WAITLIST_STATUSES,
    Reservation,
    ReservationStatus,
    StockLevel,
    WaitlistEntry,
    WaitlistStatus,
)

logger = logging.getLogger("inventory.check")  # repairs of drift found by check_inventory


# --- Check ----------------------------------------------------------------------------


@dataclass(frozen=True)
class StockCheck:
    """A stock row and what its reservations say it should hold."""

    stock_id: int
    sku: str
    warehouse: str
    on_hand: int
    reserved: int
    pending: int  # sum of quantity of its pending reservations
    misfiled: int  # pending reservations whose product/warehouse differ from the row's
    lapsed: int  # pending reservations past their expiry (sweeper lag, not drift)
    product_id: UUID
    waitlisted: int  # the row's copy of its product's waitlist counter
    waiting: int  # units the product's waiting waitlist entries want

    @property
    def problems(self) -> list[str]:
        return self.reserved_problems + self.waitlisted_problems

    @property
    def waitlisted_problems(self) -> list[str]:
        if self.waitlisted == self.waiting:
            return []
        return [f"waitlisted={self.waitlisted} but waiting entries want {self.waiting}"]

    @property
    def reserved_problems(self) -> list[str]:
        found = []
        if self.reserved != self.pending:
            found.append(f"reserved={self.reserved} but pending reservations hold {self.pending}")
        if self.on_hand < 0:
            found.append(f"on_hand={self.on_hand} is negative")
        if self.reserved < 0:
            found.append(f"reserved={self.reserved} is negative")
        if self.reserved > self.on_hand:
            found.append(f"reserved={self.reserved} exceeds on_hand={self.on_hand}")
        if self.pending > self.on_hand:
            found.append(
                f"pending reservations hold {self.pending}, more than on_hand={self.on_hand}"
            )
        if self.misfiled:
            found.append(
                f"{self.misfiled} pending reservation(s) name another product or warehouse"
            )
        return found


def _pending_of_row(value):
    return (
        Reservation.objects.filter(stock_level_id=OuterRef("pk"), status=ReservationStatus.PENDING)
        .order_by()
        .values("stock_level_id")
        .annotate(value=value)
        .values("value")[:1]
    )


def _waiting_units():
    """Units the waiting entries of the row's product want (0 without any)."""
    return Coalesce(
        Subquery(
            WaitlistEntry.objects.filter(
                product_id=OuterRef("product_id"), status=WaitlistStatus.WAITING
            )
            .order_by()
            .values("product_id")
            .annotate(units=Sum("quantity"))
            .values("units")
        ),
        Value(0),
    )


def stock_check_batch(*, after_id: int, limit: int) -> list[StockCheck]:
    """Up to ``limit`` stock rows with ``id > after_id`` in id order, each with the
    figures of its pending reservations and of its product's waiting entries. One
    statement, so the counters, the reservations and the entries are read from the same
    snapshot even while shoppers keep reserving."""
    now = timezone.now()
    rows = (
        StockLevel.objects.filter(id__gt=after_id)
        .order_by("id")
        .annotate(
            pending_total=Coalesce(Subquery(_pending_of_row(Sum("quantity"))), Value(0)),
            misfiled_count=Coalesce(
                Subquery(
                    _pending_of_row(
                        Count(
                            "id",
                            filter=~Q(product_id=OuterRef("product_id"))
                            | ~Q(warehouse_id=OuterRef("warehouse_id")),
                        )
                    )
                ),
                Value(0),
            ),
            lapsed_count=Coalesce(
                Subquery(_pending_of_row(Count("id", filter=Q(expires_at__lte=now)))),
                Value(0),
            ),
            waiting_units=_waiting_units(),
        )
        .values_list(
            "id",
            "product__sku",
            "warehouse__code",
            "on_hand",
            "reserved",
            "pending_total",
            "misfiled_count",
            "lapsed_count",
            "product_id",
            "waitlisted",
            "waiting_units",
        )[:limit]
    )
    return [StockCheck(*row) for row in rows]


# --- Repair ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Repair:
    stock_id: int
    before: int
    after: int | None  # None: resetting the counter cannot make the row right


def repair_reserved(*, stock_ids: Sequence[int], actor: str) -> list[Repair]:
    """Resets ``reserved`` of the given stock rows to the sum of their pending
    reservations; one :class:`Repair` per row found (``after == before`` when the row
    needed nothing). Takes the rows' locks (ascending pk, via ``inventory.locks``), so
    no reservation of them changes meanwhile: every stock change locks its rows first.
    A row whose pending reservations do not fit in ``on_hand`` is left as it is
    (``after`` is None): which number is wrong needs a person."""
    repairs: list[Repair] = []
    with transaction.atomic():
        rows = locks.lock_stock_levels(stock_ids)
        pending = dict(
            Reservation.objects.filter(
                stock_level_id__in=list(rows), status=ReservationStatus.PENDING
            )
            .order_by()
            .values("stock_level_id")
            .annotate(total=Sum("quantity"))
            .values_list("stock_level_id", "total")
        )
        changed: list[StockLevel] = []
        now = timezone.now()
        for row in rows.values():
            want = pending.get(row.id, 0)
            if not 0 <= want <= row.on_hand:
                repairs.append(Repair(stock_id=row.id, before=row.reserved, after=None))
                continue
            repairs.append(Repair(stock_id=row.id, before=row.reserved, after=want))
            if want == row.reserved:
                continue
            logger.warning(
                "stock.reserved_repaired",
                extra={
                    "event": "stock.reserved_repaired",
                    "stock_id": row.id,
                    "sku": row.product.sku,
                    "warehouse": row.warehouse.code,
                    "reserved_before": row.reserved,
                    "reserved": want,
                    "on_hand": row.on_hand,
                    "actor": actor,
                },
            )
            row.reserved = want
            row.updated_at = now
            changed.append(row)
        StockLevel.objects.bulk_update(changed, ["reserved", "updated_at"])
    return repairs


# --- Waitlists (SPEC §15) ---------------------------------------------------------------


class Finding:
    """Kinds of waitlist drift."""

    OFFER_WITHOUT_HOLD = "offer_without_hold"
    OFFER_HOLD_MISPLACED = "offer_hold_misplaced"
    MISSED_OFFER = "missed_offer"


@dataclass(frozen=True)
class WaitlistFinding:
    """One piece of waitlist drift: about an entry, or (``reservation_id``) about a
    pending reservation holding an entry's offer."""

    kind: str  # a Finding
    entry_id: int
    product_id: UUID
    sku: str
    problem: str
    reservation_id: int | None = None

    @property
    def label(self) -> str:
        if self.reservation_id is not None:
            return f"reservation {self.reservation_id} sku={self.sku}"
        return f"waitlist entry {self.entry_id} sku={self.sku}"


def open_waitlist_entries() -> int:
    """How many entries wait or hold an offer."""
    return WaitlistEntry.objects.filter(status__in=OPEN_WAITLIST_STATUSES).count()


# Pending reservations holding an offer that is not theirs to hold: the entry ended (a
# lapsed hold is sweeper lag, not drift: the part of an offer split over warehouses that
# the sweeper has not reached yet), or the reservation is for another cart or product.
_MISPLACED_OFFER_HOLDS_SQL = """
SELECT r.id, e.id, e.product_id, p.sku, e.status,
       r.cart_id IS DISTINCT FROM e.cart_id, r.product_id <> e.product_id
  FROM inventory_reservation r
  JOIN inventory_waitlistentry e ON e.id = r.waitlist_entry_id
  JOIN inventory_product p ON p.id = e.product_id
 WHERE r.status = 'pending'
   AND (r.cart_id IS DISTINCT FROM e.cart_id
        OR r.product_id <> e.product_id
        OR (e.status NOT IN ('offered', 'claimed') AND r.expires_at > %(now)s))
 ORDER BY r.id
"""

# The first waiting entry of each product (the head of its queue) whose whole quantity is
# free in the stock rows it may use: every active warehouse, or the one it names if that
# is active. The offer step would have served it; nothing behind it counts.
_MISSED_OFFERS_SQL = """
WITH head AS (
    SELECT DISTINCT ON (e.product_id) e.id, e.product_id, e.warehouse_id, e.quantity
      FROM inventory_waitlistentry e
     WHERE e.status = 'waiting' {products}
     ORDER BY e.product_id, e.id
)
SELECT head.id, head.product_id, p.sku, w.code, head.quantity, free.units
  FROM head
  JOIN inventory_product p ON p.id = head.product_id
  LEFT JOIN inventory_warehouse w ON w.id = head.warehouse_id
 CROSS JOIN LATERAL (
       SELECT COALESCE(SUM(GREATEST(s.on_hand - s.reserved, 0)), 0) AS units
         FROM inventory_stocklevel s
         JOIN inventory_warehouse sw ON sw.id = s.warehouse_id
        WHERE s.product_id = head.product_id AND sw.is_active
          AND (head.warehouse_id IS NULL OR s.warehouse_id = head.warehouse_id)
       ) free
 WHERE free.units >= head.quantity
 ORDER BY head.id
"""


def _fetch(sql: str, params: dict) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def missed_offers(*, product_ids: Iterable[UUID] | None = None) -> list[WaitlistFinding]:
    """Heads of a queue left waiting although their whole quantity is free (an offer the
    offer step should have made, or had to leave because another transaction held a
    stock row of the product: the ``serve_waitlists`` job makes those). One statement."""
    params: dict = {}
    products = ""
    if product_ids is not None:
        params["products"] = sorted(set(product_ids))
        products = "AND e.product_id = ANY(%(products)s::uuid[])"
    findings = []
    for entry_id, product_id, sku, warehouse, quantity, free in _fetch(
        _MISSED_OFFERS_SQL.format(products=products), params
    ):
        where = f" in warehouse {warehouse}" if warehouse else ""
        findings.append(
            WaitlistFinding(
                kind=Finding.MISSED_OFFER,
                entry_id=entry_id,
                product_id=product_id,
                sku=sku,
                problem=(
                    f"first in the queue for {quantity} unit(s) while {free} are free{where} "
                    "(a missed offer)"
                ),
            )
        )
    return findings


def waitlist_findings() -> list[WaitlistFinding]:
    """Waitlist drift over the whole database: offered entries none of whose reservations
    is pending; pending reservations holding an offer that is not theirs (another cart or
    product, or an entry that ended); heads of a queue left waiting although their units
    are free (:func:`missed_offers`). One statement each."""
    findings = [
        WaitlistFinding(
            kind=Finding.OFFER_WITHOUT_HOLD,
            entry_id=entry_id,
            product_id=product_id,
            sku=sku,
            problem="offered, but no pending reservation holds the offer",
        )
        for entry_id, product_id, sku in waitlist.offers_without_hold()
        .order_by("id")
        .values_list("id", "product_id", "product__sku")
    ]
    for reservation_id, entry_id, product_id, sku, status, other_cart, other_product in _fetch(
        _MISPLACED_OFFER_HOLDS_SQL, {"now": timezone.now()}
    ):
        why = []
        if other_cart:
            why.append("it is held for another cart")
        if other_product:
            why.append("it is of another product")
        if status not in (WaitlistStatus.OFFERED, WaitlistStatus.CLAIMED):
            why.append(f"the entry is {status}")
        findings.append(
            WaitlistFinding(
                kind=Finding.OFFER_HOLD_MISPLACED,
                entry_id=entry_id,
                product_id=product_id,
                sku=sku,
                reservation_id=reservation_id,
                problem=f"holds the offer of waitlist entry {entry_id}, but " + " and ".join(why),
            )
        )
    return findings + missed_offers()


def repair_waitlisted(*, product_ids: Iterable[UUID], actor: str) -> list[Repair]:
    """Sets the ``waitlisted`` counter of every stock row of the products to the units
    their waiting entries want (``services.sync_waitlisted``), with all those rows locked
    (ascending pk); one :class:`Repair` per row (``after == before`` when it was right)."""
    products = sorted(set(product_ids))
    if not products:
        return []
    with transaction.atomic():
        rows, _ = locks.lock_product_rows(products)
        services.sync_waitlisted(products)
        after = dict(
            StockLevel.objects.filter(id__in=[row.id for row in rows]).values_list(
                "id", "waitlisted"
            )
        )
        for row in rows:
            if after[row.id] != row.waitlisted:
                logger.warning(
                    "stock.waitlisted_repaired",
                    extra={
                        "event": "stock.waitlisted_repaired",
                        "stock_id": row.id,
                        "product_id": str(row.product_id),
                        "warehouse": row.warehouse.code,
                        "waitlisted_before": row.waitlisted,
                        "waitlisted": after[row.id],
                        "actor": actor,
                    },
                )
    return [Repair(stock_id=row.id, before=row.waitlisted, after=after[row.id]) for row in rows]


def end_offers_without_hold(*, entry_ids: Iterable[int], actor: str) -> set[int]:
    """Ends as lapsed (``expired``) those of the entries that are still offered with no
    pending reservation holding the offer, with their products' stock rows locked first;
    returns the ids it ended (an entry put right meanwhile is left as it is). Counted in
    ``waitlist_offers_total{outcome="expired"}``."""
    ids = sorted(set(entry_ids))
    if not ids:
        return set()
    with transaction.atomic():
        products = set(
            WaitlistEntry.objects.filter(id__in=ids).values_list("product_id", flat=True)
        )
        locks.lock_product_rows(products)
        entries = list(
            waitlist.offers_without_hold()
            .filter(id__in=ids)
            .select_for_update(of=("self",))
            .order_by("id")
        )
        now = timezone.now()
        for entry in entries:
            entry.status, entry.ended_at, entry.updated_at = WaitlistStatus.EXPIRED, now, now
            logger.warning(
                "waitlist.offer_repaired",
                extra={
                    "event": "waitlist.offer_repaired",
                    "entry_id": entry.id,
                    "cart_id": str(entry.cart_id),
                    "product_id": str(entry.product_id),
                    "status": WaitlistStatus.EXPIRED.value,
                    "actor": actor,
                },
            )
        WaitlistEntry.objects.bulk_update(entries, ["status", "ended_at", "updated_at"])
        services._on_commit_count(metrics.waitlist_offers_total, len(entries), outcome="expired")
    return {entry.id for entry in entries}


def serve_missed_offers(*, product_ids: Iterable[UUID], actor: str) -> dict[UUID, int]:
    """Runs the periodic waitlist pass (``waitlist.serve_product``) for each product;
    returns the offers made per product."""
    return {
        product_id: waitlist.serve_product(product_id=product_id, actor=actor)
        for product_id in sorted(set(product_ids))
    }
