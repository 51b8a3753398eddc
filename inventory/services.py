"""The reservation engine: the only code that changes stock numbers (``on_hand``,
``reserved``) and reservation statuses: reserve, extend, confirm, release, expire,
restock, set_stock / adjust_stock (with the stock ledger) and the sweeper's expire_due. The one exception is a repair:
``manage.py check_inventory --repair`` resets a drifted ``reserved`` counter through
``inventory.repair``. Creating products and warehouses is ``inventory.catalog``; the stock
status shown for an available quantity is ``inventory.stock``.

Invariants kept by every function here (SPEC §3), checked by ``manage.py check_inventory``:

* ``0 <= reserved <= on_hand`` for every StockLevel (also a DB CHECK);
* ``StockLevel.reserved`` == sum of ``quantity`` of its ``pending`` reservations;
* confirm moves a quantity out of both ``on_hand`` and ``reserved``; release/expire give
  ``reserved`` back; restock gives ``on_hand`` back.

Locks (see ``inventory.locks``): every function runs in a transaction (its own, or the
caller's: extend, confirm, release, expire and restock take no savepoint, see
``_changes_then_refusals``; reserve does, as its reclaim is undone with a refusal) and locks
the StockLevel rows it touches in ascending primary key order, then the Reservation rows
in ascending primary key order, with one query whatever the number of lines. A caller
that acts for a cart locks the Cart row before calling. Nothing here talks to the
network, so a lock is never held across a payment call.

Cost: each change is written by one statement (stock rows, reservation rows and the event
log together), so an operation is two statements (lock; write) whether it covers 1 line
or 50 (pinned in ``tests/inventory/test_query_counts.py``). The statements are plain SQL
because this is the hottest path of a checkout; ``benchmarks/reservations.py`` measures
it against hand-written SQL run by pgbench.

Metrics: what a change counts (reservations made, extended, confirmed, released, expired)
moves when its transaction commits, never on rollback. A refusal (insufficient stock, an
extension refused) changes nothing, so it is counted when it is raised.
"""

from __future__ import annotations

import functools
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from core import metrics
from core.errors import ApplicationError
from core.logging import get_request_id
from inventory import locks
from inventory.errors import (
    ExtensionLimitReached,
    InsufficientStock,
    InvalidExpiry,
    ReservationNotActive,
    ReservationNotFound,
    StockBelowReserved,
)
from inventory.models import (
    AllocationStrategy,
    Product,
    ReleaseReason,
    Reservation,
    ReservationEventKind,
    ReservationStatus,
    StockLevel,
    WaitlistStatus,
    Warehouse,
    release_reason_label,
)

logger = logging.getLogger("inventory.reservations")
# Array parameters of the hot statements, as array text (see ``locks.array_literal``).
_array = locks.array_literal
_WAREHOUSE_FIELD = Reservation._meta.get_field("warehouse")


@dataclass(frozen=True)
class ReservationLine:
    """One requested line: ``quantity`` of a product from a warehouse, or from any active
    warehouse when ``warehouse_id`` is None."""

    product_id: UUID
    warehouse_id: int | None
    quantity: int


# --- SQL: one statement per change ---------------------------------------------------------

_EVENT_COLUMNS = "(reservation_id, kind, quantity, expires_at, actor, reason, request_id, at)"

_RESERVE_SQL = f"""
WITH stock AS (
    UPDATE inventory_stocklevel s
       SET reserved = s.reserved + line.quantity, updated_at = %(now)s
      FROM unnest(%(stock_ids)s::bigint[], %(quantities)s::integer[])
           AS line (stock_level_id, quantity)
     WHERE s.id = line.stock_level_id
), created AS (
    INSERT INTO inventory_reservation
           (stock_level_id, product_id, warehouse_id, quantity, status, expires_at,
            extension_count, cart_id, release_reason, allocation_strategy, waitlist_entry_id,
            created_at, updated_at)
    SELECT line.stock_level_id, line.product_id, line.warehouse_id, line.quantity,
           'pending', %(expires_at)s, 0, %(cart_id)s::uuid, '', line.strategy,
           %(waitlist_entry_id)s::bigint, %(now)s, %(now)s
      FROM unnest(%(stock_ids)s::bigint[], %(product_ids)s::uuid[],
                  %(warehouse_ids)s::bigint[], %(quantities)s::integer[],
                  %(strategies)s::varchar[])
           AS line (stock_level_id, product_id, warehouse_id, quantity, strategy)
    RETURNING id, stock_level_id, quantity
), events AS (
    INSERT INTO inventory_reservationevent {_EVENT_COLUMNS}
    SELECT id, 'created', quantity, %(expires_at)s, %(actor)s, '', %(request_id)s, %(now)s
      FROM created
)
SELECT id, stock_level_id FROM created
"""  # noqa: S608 -- constant text, values are parameters

# Changes reservations the caller has locked (with their stock rows): the reservation
# columns named by ``{assignments}`` (constant text below), the stock rows by
# (on_hand, reserved) deltas, and one event per reservation.
_CHANGE_SQL = """
WITH changed AS (
    UPDATE inventory_reservation
       SET {assignments}, updated_at = %(now)s
     WHERE id = ANY(%(ids)s::bigint[])
), stock AS (
    UPDATE inventory_stocklevel s
       SET on_hand = s.on_hand + delta.on_hand, reserved = s.reserved + delta.reserved,
           updated_at = %(now)s
      FROM unnest(%(stock_ids)s::bigint[], %(on_hand)s::integer[], %(reserved)s::integer[])
           AS delta (stock_level_id, on_hand, reserved)
     WHERE s.id = delta.stock_level_id
)
INSERT INTO inventory_reservationevent
       (reservation_id, kind, quantity, expires_at, actor, reason, request_id, at)
SELECT event.reservation_id, event.kind, event.quantity, event.expires_at,
       %(actor)s, %(reason)s, %(request_id)s, %(now)s
  FROM unnest(%(ids)s::bigint[], %(kinds)s::varchar[], %(quantities)s::integer[],
              %(expires)s::timestamptz[])
       AS event (reservation_id, kind, quantity, expires_at)
"""
_EXTEND_SQL = _CHANGE_SQL.format(
    assignments="expires_at = %(expires_at)s, extension_count = extension_count + 1"
)
_CONFIRM_SQL = _CHANGE_SQL.format(
    assignments="status = 'confirmed', confirmed_at = %(now)s, order_id = %(order_id)s::uuid"
)
_RELEASE_SQL = _CHANGE_SQL.format(
    assignments="status = 'released', release_reason = %(reason)s, released_at = %(now)s"
)
_EXPIRE_SQL = _CHANGE_SQL.format(assignments="status = 'expired', released_at = %(now)s")

# Expires the lapsed pending reservations of stock rows the caller has locked (at most
# ``limit`` of them; NULL: all), gives their quantity back and logs them, in one statement.
# ``ORDER BY id + 0`` is the same order (and lock order) as ``ORDER BY id``, but keeps
# PostgreSQL from walking the whole primary key index past every ended reservation to
# find the first ``limit`` pending ones; it finds them through the (stock_level, status)
# or pending-expiry index and sorts them (docs/performance.md, "Cleanup").
_EXPIRE_LAPSED_SQL = f"""
WITH expired AS (
    UPDATE inventory_reservation r
       SET status = 'expired', released_at = %(now)s, updated_at = %(now)s
      FROM (
          SELECT id FROM inventory_reservation
           WHERE stock_level_id = ANY(%(stock_ids)s::bigint[])
             AND status = 'pending' AND expires_at <= %(now)s
           ORDER BY id + 0
           LIMIT %(limit)s
             FOR UPDATE
      ) due
     WHERE r.id = due.id
 RETURNING r.id, r.stock_level_id, r.quantity, r.expires_at, r.cart_id, r.product_id,
           r.waitlist_entry_id
), stock AS (
    UPDATE inventory_stocklevel s
       SET reserved = s.reserved - freed.quantity, updated_at = %(now)s
      FROM (SELECT stock_level_id, SUM(quantity) AS quantity
              FROM expired GROUP BY stock_level_id) freed
     WHERE s.id = freed.stock_level_id
 RETURNING s.id, s.waitlisted
), events AS (
    INSERT INTO inventory_reservationevent {_EVENT_COLUMNS}
    SELECT id, 'expired', quantity, expires_at, %(actor)s, %(reason)s, %(request_id)s, %(now)s
      FROM expired
)
SELECT e.id, e.stock_level_id, e.quantity, e.cart_id, e.product_id, e.waitlist_entry_id,
       stock.waitlisted
  FROM expired e JOIN stock ON stock.id = e.stock_level_id
 ORDER BY e.id
"""  # noqa: S608 -- constant text, values are parameters


def _execute(sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def _request_id() -> str:
    request_id = get_request_id()
    return request_id if request_id != "-" else ""


_RESERVATION_FIELDS = [(f.attname, f) for f in Reservation._meta.concrete_fields]
_RESERVATION_ATTNAMES = [name for name, _ in _RESERVATION_FIELDS]


def _written(**values: object) -> Reservation:
    """A Reservation of a row this module just wrote, marked as loaded from the database:
    built by ``Model.from_db`` from every column in field order (the ORM's positional fast
    path, about half the cost of keyword arguments); columns not given take their
    field's default."""
    return Reservation.from_db(
        connection.alias,
        _RESERVATION_ATTNAMES,
        [
            values[name] if name in values else field.get_default()
            for name, field in _RESERVATION_FIELDS
        ],
    )


@dataclass(frozen=True)
class _Change:
    """One reservation changed by an operation: its event and what its stock row gains."""

    reservation: Reservation
    kind: str
    on_hand: int = 0
    reserved: int = 0


def _apply(sql: str, changes: Sequence[_Change], *, now: datetime, actor: str, **params) -> None:
    """Writes ``changes`` (reservations, stock deltas, events) with one statement. The
    caller holds the locks of the stock rows and reservations."""
    deltas: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for change in changes:
        delta = deltas[change.reservation.stock_level_id]
        delta[0] += change.on_hand
        delta[1] += change.reserved
    stock_ids = [
        stock_id for stock_id, (on_hand, reserved) in deltas.items() if on_hand or reserved
    ]
    _execute(
        sql,
        {
            "now": now,
            "actor": actor[:128],
            "reason": params.pop("reason", "")[:255],
            "request_id": _request_id(),
            "ids": _array(c.reservation.id for c in changes),
            "kinds": _array(str(c.kind) for c in changes),
            "quantities": _array(c.reservation.quantity for c in changes),
            "expires": _array(c.reservation.expires_at for c in changes),
            "stock_ids": _array(stock_ids),
            "on_hand": _array(deltas[i][0] for i in stock_ids),
            "reserved": _array(deltas[i][1] for i in stock_ids),
            **params,
        },
    )


# Labelled children of the counters, by (counter, label values): ``labels()`` takes a lock
# and validates its arguments on every call; the hot paths count on every operation.
_children: dict[tuple[int, tuple[tuple[str, str], ...]], Any] = {}


def _counter_child(counter, labels: dict[str, str]):
    key = (id(counter), tuple(labels.items()))
    child = _children.get(key)
    if child is None:
        child = _children[key] = counter.labels(**labels)
    return child


# The bounded label of a release reason (``release_reason_label`` scans the enum's values).
_reason_label = functools.lru_cache(maxsize=256)(release_reason_label)


def _on_commit_count(counter, amount: float = 1, **labels: str) -> None:
    """Counts only what commits: a rolled-back change never moves a metric."""
    if amount <= 0:
        return
    target = _counter_child(counter, labels) if labels else counter
    transaction.on_commit(lambda: target.inc(amount))


def _on_commit_observe_ttl(ttl: float, times: int) -> None:
    def observe() -> None:
        for _ in range(times):
            metrics.stock_reservations_ttl_seconds.observe(ttl)

    transaction.on_commit(observe)


def _log(event: str, reservations: Sequence[Reservation], *, actor: str, **extra: object) -> None:
    if not reservations:
        return
    cart_ids = sorted({str(r.cart_id) for r in reservations if r.cart_id})
    order_ids = sorted({str(r.order_id) for r in reservations if r.order_id})
    logger.info(
        event,
        extra={
            "event": event,
            "reservation_ids": [r.id for r in reservations],
            "cart_id": cart_ids[0] if len(cart_ids) == 1 else cart_ids or None,
            "order_id": order_ids[0] if len(order_ids) == 1 else order_ids or None,
            "quantity": sum(r.quantity for r in reservations),
            "actor": actor,
            **extra,
        },
    )


def _expire_lapsed(
    stock_ids: Sequence[int], *, now: datetime, limit: int | None, actor: str, reason: str
) -> list[tuple[Any, ...]]:
    """Expires lapsed pending reservations of stock rows the caller has locked, and offers
    the freed units to the waitlists (:func:`serve_waitlists`, which also ends the
    waitlist entries whose offer lapsed); returns ``(id, stock_level_id, quantity,
    cart_id, product_id, waitlist_entry_id, waitlisted)`` of each expired reservation, by
    id (``waitlisted``: its stock row's counter; only products with waiting entries are
    offered to, which saves a query when nobody waits)."""
    expired = _execute(
        _EXPIRE_LAPSED_SQL,
        {
            "now": now,
            "limit": limit,
            "stock_ids": list(stock_ids),
            "actor": actor[:128],
            "reason": reason,
            "request_id": _request_id(),
        },
    )
    if expired:
        _on_commit_count(metrics.reservations_expired_total, len(expired))
        cart_ids = sorted({str(row[3]) for row in expired if row[3]})
        logger.info(
            "reservation.expired",
            extra={
                "event": "reservation.expired",
                "reservation_ids": [row[0] for row in expired],
                "cart_id": cart_ids[0] if len(cart_ids) == 1 else cart_ids or None,
                "count": len(expired),
                "quantity": sum(row[2] for row in expired),
                "actor": actor,
                "reclaimed": bool(reason),
            },
        )
        serve_waitlists(
            {row[4] for row in expired if row[6] > 0},
            actor=actor,
            ended_offers={row[5]: "expired" for row in expired if row[5]},
            now=now,
        )
    return expired


def _reclaim_lapsed(rows: Iterable[StockLevel], *, actor: str) -> int:
    """Expires the lapsed pending reservations of rows the caller has locked, so that an
    expired reservation never blocks a shopper even if no sweeper ran. Adjusts the
    in-memory rows and the database. Returns the number of reservations expired."""
    by_id = {row.id: row for row in rows}
    if not by_id:
        return 0
    now = timezone.now()
    expired = _expire_lapsed(
        list(by_id), now=now, limit=None, actor=actor, reason="reclaimed on demand"
    )
    if expired and not any(row[6] > 0 for row in expired):
        for row in expired:  # nothing was offered: the freed units are free
            by_id[row[1]].reserved -= row[2]
            by_id[row[1]].updated_at = now
    elif expired:
        # The freed units may have been offered to waitlists: read the rows back (they
        # are locked, so this is what the database holds).
        for fresh in StockLevel.objects.filter(id__in=list(by_id)).only(
            "id", "reserved", "waitlisted", "updated_at"
        ):
            row = by_id[fresh.id]
            row.reserved, row.waitlisted, row.updated_at = (
                fresh.reserved,
                fresh.waitlisted,
                fresh.updated_at,
            )
    return len(expired)


def _check_expiry(expires_at: datetime) -> None:
    now = timezone.now()
    if expires_at <= now:
        raise InvalidExpiry("expires_at must be in the future")
    if expires_at > now + timedelta(seconds=settings.RESERVATION_MAX_TTL_SECONDS):
        raise InvalidExpiry(
            f"expires_at must be at most {settings.RESERVATION_MAX_TTL_SECONDS} seconds ahead"
        )


# --- reserve ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Allocation:
    """``quantity`` of a product drawn from one stock row, and what chose that row."""

    row: StockLevel
    quantity: int
    strategy: str


def _priority_order(row: StockLevel) -> tuple[int, bool, str]:
    """Lower ``priority`` first; on a tie the default warehouse, then by code."""
    return (row.warehouse.priority, not row.warehouse.is_default, row.warehouse.code)


def _serving_order(
    rows: list[StockLevel], free: dict[int, int], need: int, strategy: str
) -> list[StockLevel]:
    """The order in which ``strategy`` draws ``need`` units from the candidate ``rows``."""
    by_priority = sorted(rows, key=_priority_order)
    if strategy == AllocationStrategy.MOST_AVAILABLE:
        return sorted(rows, key=lambda row: (-free[row.id], *_priority_order(row)))
    if strategy == AllocationStrategy.FEWEST_SPLITS:
        whole = next((row for row in by_priority if free[row.id] >= need), None)
        if whole is not None:
            return [whole]
    return by_priority


def allocate(
    *,
    demands: dict[tuple[UUID, int | None], int],
    rows: Sequence[StockLevel],
    strategy: str,
    withheld: dict[UUID, int] | None = None,
) -> tuple[dict[tuple[UUID, int | None], list[_Allocation]], dict[tuple[UUID, int | None], int]]:
    """Spreads each demand over the candidate ``rows`` (locked by the caller, warehouses
    loaded): a pinned demand ``(product, warehouse)`` only from that row, if its warehouse
    is active; an unpinned one ``(product, None)`` over the product's rows in active
    warehouses, in the order of ``strategy`` (see ``AllocationStrategy``), after the
    pinned demands took theirs. Pure: no query, nothing written.

    ``withheld`` (units per product wanted by its waitlist, SPEC §15) is kept back from
    every demand of that product: of the product's free units in active warehouses, the
    demands together take at most the free total less what is withheld.

    Returns the allocations per demand (in the order the strategy drew them) and, for
    every demand that cannot be met, the total it could get (all or nothing: a short
    demand takes nothing, so it leaves its stock to the others it is reported with)."""
    free = {row.id: row.on_hand - row.reserved for row in rows}
    by_pair = {(row.product_id, row.warehouse_id): row for row in rows}
    active_by_product: dict[UUID, list[StockLevel]] = defaultdict(list)
    for row in rows:
        if row.warehouse.is_active:
            active_by_product[row.product_id].append(row)
    # What the demands of a withheld product may still take, over all its warehouses.
    cap = {
        product: max(
            sum(max(free[row.id], 0) for row in active_by_product.get(product, [])) - units, 0
        )
        for product, units in (withheld or {}).items()
        if units > 0
    }
    plan: dict[tuple[UUID, int | None], list[_Allocation]] = {}
    short: dict[tuple[UUID, int | None], int] = {}
    pinned = [key for key in demands if key[1] is not None]
    for key in pinned:
        row = by_pair.get(key)
        can = free[row.id] if row is not None and row.warehouse.is_active else 0
        if key[0] in cap:
            can = min(can, cap[key[0]])
        if can < demands[key]:
            short[key] = max(can, 0)
            continue
        free[row.id] -= demands[key]
        if key[0] in cap:
            cap[key[0]] -= demands[key]
        plan[key] = [_Allocation(row, demands[key], AllocationStrategy.PINNED)]
    for key in demands:
        if key[1] is not None:
            continue
        need = demands[key]
        candidates = active_by_product.get(key[0], [])
        total = sum(max(free[row.id], 0) for row in candidates)
        if key[0] in cap:
            total = min(total, cap[key[0]])
        if total < need:
            short[key] = total
            continue
        if key[0] in cap:
            cap[key[0]] -= need
        allocations = []
        for row in _serving_order(candidates, free, need, strategy):
            take = min(free[row.id], need)
            if take <= 0:
                continue
            free[row.id] -= take
            need -= take
            allocations.append(_Allocation(row, take, strategy))
            if need == 0:
                break
        plan[key] = allocations
    return {key: plan[key] for key in demands if key in plan}, short


def _withheld(rows: Iterable[StockLevel]) -> dict[UUID, int]:
    """Units per product wanted by its waitlist, from locked rows (the same on each)."""
    withheld: dict[UUID, int] = {}
    for row in rows:
        if row.waitlisted > 0:
            withheld[row.product_id] = max(withheld.get(row.product_id, 0), row.waitlisted)
    return withheld


def high_demand_products(
    rows: Iterable[StockLevel], taking: dict[UUID, int] | None = None
) -> set[UUID]:
    """The products of ``rows`` (locked, warehouses loaded) in high demand (SPEC §15): a
    non-empty waitlist, or fewer than ``LOW_STOCK_THRESHOLD`` units available in active
    warehouses once ``taking`` (units per product about to be held) is held."""
    free: dict[UUID, int] = defaultdict(int)
    waiting: dict[UUID, int] = defaultdict(int)
    for row in rows:
        waiting[row.product_id] = max(waiting[row.product_id], row.waitlisted)
        if row.warehouse.is_active:
            free[row.product_id] += max(row.on_hand - row.reserved, 0)
    taking = taking or {}
    return {
        product
        for product in waiting
        if waiting[product] > 0
        or free[product] - waiting[product] - taking.get(product, 0) < settings.LOW_STOCK_THRESHOLD
    }


def reserve(
    *,
    lines: Sequence[ReservationLine],
    ttl_seconds: int,
    cart_id: UUID | None = None,
    actor: str = "system",
    strategy: str | None = None,
    scarcity_ttl_seconds: int | None = None,
    limit_check: Callable[[dict[UUID, int]], None] | None = None,
    serialize_products: Iterable[UUID] = (),
) -> list[Reservation]:
    """Reserves every line or none (all-or-nothing) and returns the pending reservations,
    one per product and warehouse, in the order of the lines (a line's own in the order
    its warehouses were chosen), expiring ``ttl_seconds`` from now
    (``0 < ttl_seconds <= RESERVATION_MAX_TTL_SECONDS``, else :class:`InvalidExpiry`).

    A line that names a warehouse is served only there (if that warehouse is active); a
    line without one (``warehouse_id=None``) is served by the active warehouses, split
    over several when one cannot fill it, in the order of ``strategy`` (default
    ``ALLOCATION_STRATEGY``; see :func:`allocate`). Quantities of the same product (and
    warehouse, for pinned lines) are summed before checking, so two lines of one product
    never each pass against the same unreduced stock. If any line is short, lapsed
    reservations of every locked row are reclaimed first (an expired hold in any
    candidate warehouse never blocks); if still short, :class:`InsufficientStock` lists
    every short line with its total ``available``, ``requested`` and ``warehouse`` (the
    pinned code, or null) and nothing changes (the reclaim rolls back too).
    Units wanted by a product's waitlist are withheld (``StockLevel.waitlisted``, SPEC
    §15); units reclaimed are offered to the waitlists first.

    ``scarcity_ttl_seconds``: if any line's product is in high demand
    (:func:`high_demand_products`), every reservation gets the shorter of it and
    ``ttl_seconds``; the returned reservations carry ``high_demand`` (bool, that
    reservation's product) and ``ttl_seconds`` (the TTL given). ``limit_check`` is called
    under the locks, before anything is written, with the units per product asked for;
    it refuses by raising. ``serialize_products``: products all of whose active rows are
    locked too (so that two requests checking a limit of the product take turns).
    Locks: every candidate StockLevel row of every line, once, ascending pk. Queries: two
    whatever the number of lines and warehouses (lock; write), one more to reclaim and up
    to two more to describe a shortage.
    """
    if not lines:
        return []
    if any(line.quantity <= 0 for line in lines):
        raise ValueError("reservation quantities must be positive")
    if ttl_seconds <= 0 or ttl_seconds > settings.RESERVATION_MAX_TTL_SECONDS:
        raise InvalidExpiry(
            f"TTL must be between 1 and {settings.RESERVATION_MAX_TTL_SECONDS} seconds"
        )
    strategy = strategy or settings.ALLOCATION_STRATEGY
    if strategy not in settings.ALLOCATION_STRATEGIES:
        raise ValueError(f"unknown allocation strategy {strategy!r}")

    wanted: dict[tuple[UUID, int | None], int] = defaultdict(int)
    for line in lines:
        wanted[(line.product_id, line.warehouse_id)] += line.quantity

    try:
        with transaction.atomic():
            rows = locks.lock_allocation_candidates(
                pinned=[key for key in wanted if key[1] is not None],
                unpinned={key[0] for key in wanted if key[1] is None} | set(serialize_products),
            )
            plan, short = allocate(
                demands=wanted, rows=rows, strategy=strategy, withheld=_withheld(rows)
            )
            if short and _reclaim_lapsed(rows, actor=actor):
                plan, short = allocate(
                    demands=wanted, rows=rows, strategy=strategy, withheld=_withheld(rows)
                )
            if short:
                raise InsufficientStock(_shortage_items(short, wanted, rows))
            per_product: dict[UUID, int] = defaultdict(int)
            for (product_id, _warehouse), quantity in wanted.items():
                per_product[product_id] += quantity
            if limit_check is not None:
                limit_check(dict(per_product))
            scarce: set[UUID] = set()
            if scarcity_ttl_seconds is not None:
                scarce = high_demand_products(rows, per_product) & set(per_product)
                if scarce:
                    ttl_seconds = min(ttl_seconds, scarcity_ttl_seconds)
            reservations = _create(plan, ttl_seconds, cart_id=cart_id, actor=actor)
            for r in reservations:
                r.high_demand = r.product_id in scarce
                r.ttl_seconds = ttl_seconds
    except InsufficientStock as error:
        metrics.stock_reservations_total.labels(outcome="insufficient_stock").inc()
        metrics.stock_out_of_stock_total.inc(len(error.items))
        raise
    except ApplicationError:
        raise  # a refusal (an invalid expiry, or limit_check's), not a failure
    except Exception:
        # A database failure (lock timeout, lost connection): nothing was reserved.
        metrics.stock_reservations_total.labels(outcome="error").inc()
        raise
    return reservations


def _create(
    plan: dict[tuple[UUID, int | None], list[_Allocation]],
    ttl_seconds: int,
    *,
    cart_id: UUID | None,
    actor: str,
    waitlist_entry_id: int | None = None,
) -> list[Reservation]:
    now = timezone.now()
    expires_at = now + timedelta(seconds=ttl_seconds)
    # One reservation per stock row: a pinned and an unpinned line of the same product
    # drawing from the same row share it (a cart has one line per product, so that only
    # happens to internal clients).
    merged: dict[int, list] = {}
    for allocations in plan.values():
        for allocation in allocations:
            entry = merged.setdefault(allocation.row.id, [allocation.row, 0, allocation.strategy])
            entry[1] += allocation.quantity
    entries = list(merged.values())
    created = _execute(
        _RESERVE_SQL,
        {
            "now": now,
            "expires_at": expires_at,
            "cart_id": cart_id,
            "waitlist_entry_id": waitlist_entry_id,
            "actor": actor[:128],
            "request_id": _request_id(),
            "stock_ids": _array(row.id for row, _, _ in entries),
            "product_ids": _array(row.product_id for row, _, _ in entries),
            "warehouse_ids": _array(row.warehouse_id for row, _, _ in entries),
            "quantities": _array(quantity for _, quantity, _ in entries),
            "strategies": _array(str(strategy) for _, _, strategy in entries),
        },
    )
    # One reservation per stock row, so the row id tells which entry each new id is.
    ids_by_stock = {stock_id: reservation_id for reservation_id, stock_id in created}
    reservations = []
    for row, quantity, strategy in entries:
        row.reserved += quantity
        row.updated_at = now
        reservation = _written(
            id=ids_by_stock[row.id],
            stock_level_id=row.id,
            product_id=row.product_id,
            warehouse_id=row.warehouse_id,
            quantity=quantity,
            status=ReservationStatus.PENDING,
            expires_at=expires_at,
            extension_count=0,
            cart_id=cart_id,
            waitlist_entry_id=waitlist_entry_id,
            release_reason="",
            allocation_strategy=str(strategy),
            created_at=now,
            updated_at=now,
        )
        _WAREHOUSE_FIELD.set_cached_value(reservation, row.warehouse)
        reservations.append(reservation)
    success = _counter_child(metrics.stock_reservations_total, {"outcome": "success"})
    ttl, times = float(ttl_seconds), len(reservations)

    def committed() -> None:  # one hook for both metrics
        success.inc()
        for _ in range(times):
            metrics.stock_reservations_ttl_seconds.observe(ttl)

    transaction.on_commit(committed)
    _log("reservation.created", reservations, actor=actor, expires_at=expires_at.isoformat())
    return reservations


def _shortage_items(
    short: dict[tuple[UUID, int | None], int],
    wanted: dict[tuple[UUID, int | None], int],
    rows: Sequence[StockLevel],
) -> list[dict[str, object]]:
    """The ``details.items`` of INSUFFICIENT_STOCK, in the order of the lines: each short
    line's total ``available`` (over its candidate warehouses) and ``requested``, with
    ``warehouse`` the pinned code or null. One extra query for the skus, one more for
    the code of a pinned warehouse without a stock row (only on this error path)."""
    skus = dict(Product.objects.filter(id__in={key[0] for key in short}).values_list("id", "sku"))
    codes = {row.warehouse_id: row.warehouse.code for row in rows}
    unknown = {key[1] for key in short if key[1] is not None and key[1] not in codes}
    if unknown:
        codes.update(Warehouse.objects.filter(id__in=unknown).values_list("id", "code"))
    return [
        {
            "product_id": str(key[0]),
            "sku": skus.get(key[0]),
            "warehouse": codes.get(key[1]) if key[1] is not None else None,
            "available": short[key],
            "requested": wanted[key],
        }
        for key in wanted
        if key in short
    ]


# --- operations on existing reservations ------------------------------------------------


def _load_for_update(reservation_ids: Iterable[int]) -> list[Reservation]:
    """Locks the StockLevel rows of the given reservations, then the reservations, both in
    ascending pk order (one query); raises :class:`ReservationNotFound` if any id does
    not exist."""
    ids = sorted(set(reservation_ids))
    reservations = locks.lock_reservations_and_stock(ids)
    if len(reservations) != len(ids):
        found = {r.id for r in reservations}
        raise ReservationNotFound(details={"reservation_ids": [i for i in ids if i not in found]})
    return reservations


@contextmanager
def _changes_then_refusals() -> Iterator[None]:
    """``transaction.atomic()`` without a savepoint of its own: inside a caller's
    transaction (a checkout) a savepoint costs two round trips per call. For functions
    that refuse (an ``ApplicationError``) before they write anything: the refusal is
    raised once the block has closed cleanly, so the caller's transaction stays usable,
    as a savepoint rollback left it; any other error ends the caller's transaction too.
    """
    refusal: ApplicationError | None = None
    with transaction.atomic(savepoint=False):
        try:
            yield
        except ApplicationError as exc:
            refusal = exc
    if refusal is not None:
        raise refusal


def extend(
    *,
    reservation_ids: Sequence[int],
    expires_at: datetime,
    actor: str = "system",
    max_extensions: int | None = None,
    scarcity_ttl_seconds: int | None = None,
) -> list[Reservation]:
    """Moves the expiry of pending, unexpired reservations to ``expires_at``.

    ``scarcity_ttl_seconds``: if any of their products is in high demand
    (:func:`high_demand_products`), the new expiry is at most that far ahead, for all of
    them (one more query); each returned reservation carries ``high_demand``.

    ``expires_at`` must lie in ``(now, now + RESERVATION_MAX_TTL_SECONDS]``
    (:class:`InvalidExpiry`). With ``max_extensions`` a reservation already extended that
    many times is refused with :class:`ExtensionLimitReached`. A reservation that is not
    pending or has lapsed is refused with :class:`ReservationNotActive` (a lapsed one may
    already have been reclaimed by another shopper's reserve). All or nothing.
    Locks: stock rows, then reservations. Queries: two whatever the number of lines.
    """
    if not reservation_ids:
        return []
    _check_expiry(expires_at)
    try:
        with _changes_then_refusals():
            reservations = _load_for_update(reservation_ids)
            now = timezone.now()  # after the wait for the locks
            inactive = [
                r.id
                for r in reservations
                if r.status != ReservationStatus.PENDING or r.expires_at <= now
            ]
            if inactive:
                raise ReservationNotActive(details={"reservation_ids": inactive})
            if max_extensions is not None and any(
                r.extension_count >= max_extensions for r in reservations
            ):
                raise ExtensionLimitReached(details={"max_extensions": max_extensions})
            scarce: set[UUID] = set()
            if scarcity_ttl_seconds is not None:
                products = {r.product_id for r in reservations}
                scarce = (
                    high_demand_products(
                        StockLevel.objects.filter(product_id__in=products).select_related(
                            "warehouse"
                        )
                    )
                    & products
                )
                if scarce:
                    expires_at = min(expires_at, now + timedelta(seconds=scarcity_ttl_seconds))
            for r in reservations:
                r.high_demand = r.product_id in scarce
                r.expires_at = expires_at
                r.extension_count += 1
                r.updated_at = now
            _apply(
                _EXTEND_SQL,
                [_Change(r, ReservationEventKind.EXTENDED) for r in reservations],
                now=now,
                actor=actor,
                expires_at=expires_at,
            )
            _on_commit_count(
                metrics.stock_reservations_extended_total, len(reservations), outcome="success"
            )
            _on_commit_observe_ttl((expires_at - now).total_seconds(), len(reservations))
            _log(
                "reservation.extended",
                reservations,
                actor=actor,
                expires_at=expires_at.isoformat(),
            )
    except ReservationNotActive:
        # Counted per reservation, like successes, so the failure ratio is comparable.
        metrics.stock_reservations_extended_total.labels(outcome="not_active").inc(
            len(set(reservation_ids))
        )
        raise
    except ExtensionLimitReached:
        metrics.stock_reservations_extended_total.labels(outcome="limit_reached").inc(
            len(set(reservation_ids))
        )
        raise
    return reservations


def confirm(
    *, reservation_ids: Sequence[int], order_id: UUID, actor: str = "system"
) -> list[Reservation]:
    """Confirms pending reservations into an order: ``on_hand -= q; reserved -= q``.

    Idempotent: a reservation already confirmed for the same order is left as it is.
    Confirmed for another order, released or expired → :class:`ReservationNotActive`
    (all or nothing). A pending reservation past its expiry that nobody reclaimed still
    holds its stock, so it can be confirmed.
    Locks: stock rows, then reservations. Queries: two whatever the number of lines.
    """
    if not reservation_ids:
        return []
    with _changes_then_refusals():
        reservations = _load_for_update(reservation_ids)
        now = timezone.now()  # after the wait for the locks
        refused = [
            r.id
            for r in reservations
            if not (
                r.status == ReservationStatus.PENDING
                or (r.status == ReservationStatus.CONFIRMED and r.order_id == order_id)
            )
        ]
        if refused:
            raise ReservationNotActive(
                "The reservation is not pending", details={"reservation_ids": refused}
            )
        pending = [r for r in reservations if r.status == ReservationStatus.PENDING]
        if pending:
            for r in pending:
                r.status = ReservationStatus.CONFIRMED
                r.confirmed_at = now
                r.order_id = order_id
                r.updated_at = now
            _apply(
                _CONFIRM_SQL,
                [
                    _Change(r, ReservationEventKind.CONFIRMED, -r.quantity, -r.quantity)
                    for r in pending
                ],
                now=now,
                actor=actor,
                order_id=order_id,
            )
            _on_commit_count(metrics.reservations_confirmed_total, len(pending))
            _log("reservation.confirmed", pending, actor=actor)
        return reservations


def release(
    *,
    reservation_ids: Sequence[int],
    reason: str = ReleaseReason.API,
    actor: str = "system",
) -> list[Reservation]:
    """Releases pending reservations: ``reserved -= q``.

    Idempotent: released or expired reservations are left as they are. A confirmed one
    is refused with :class:`ReservationNotActive` (cancel the order to restock it).
    Locks: stock rows, then reservations. Queries: two whatever the number of lines.
    """
    if not reservation_ids:
        return []
    with _changes_then_refusals():
        reservations = _load_for_update(reservation_ids)
        now = timezone.now()  # after the wait for the locks
        confirmed = [r.id for r in reservations if r.status == ReservationStatus.CONFIRMED]
        if confirmed:
            raise ReservationNotActive(
                "A confirmed reservation cannot be released",
                details={"reservation_ids": confirmed},
            )
        ending = [r for r in reservations if r.status == ReservationStatus.PENDING]
        if ending:
            _end(ending, ReservationStatus.RELEASED, reason=reason, now=now)
            _apply(
                _RELEASE_SQL,
                [_Change(r, ReservationEventKind.RELEASED, reserved=-r.quantity) for r in ending],
                now=now,
                actor=actor,
                reason=reason,
            )
            _on_commit_count(
                metrics.reservations_released_total,
                len(ending),
                reason=_reason_label(reason),
            )
            _log("reservation.released", ending, actor=actor, reason=reason)
            _serve_freed(ending, "cancelled", now=now, actor=actor)
        return reservations


def expire(*, reservation_ids: Sequence[int], actor: str = "system") -> list[Reservation]:
    """Expires those of the given reservations that are pending and past their expiry;
    others are left as they are. Locks: stock rows, then reservations. Queries: two
    whatever the number of lines."""
    if not reservation_ids:
        return []
    with _changes_then_refusals():
        reservations = _load_for_update(reservation_ids)
        now = timezone.now()  # after the wait for the locks
        ending = [
            r for r in reservations if r.status == ReservationStatus.PENDING and r.expires_at <= now
        ]
        if ending:
            _end(ending, ReservationStatus.EXPIRED, reason="", now=now)
            _apply(
                _EXPIRE_SQL,
                [_Change(r, ReservationEventKind.EXPIRED, reserved=-r.quantity) for r in ending],
                now=now,
                actor=actor,
            )
            _on_commit_count(metrics.reservations_expired_total, len(ending))
            _log("reservation.expired", ending, actor=actor)
            _serve_freed(ending, "expired", now=now, actor=actor)
        return reservations


def _serve_freed(
    reservations: Sequence[Reservation], offer_outcome: str, *, now: datetime, actor: str
) -> None:
    """After ``reservations`` (loaded by ``locks.lock_reservations_and_stock``) gave their
    units back: their offers end with ``offer_outcome`` and the freed units go to the
    waitlists of their products that have waiting entries (:func:`serve_waitlists`)."""
    serve_waitlists(
        {r.product_id for r in reservations if getattr(r, "stock_waitlisted", 1) > 0},
        actor=actor,
        ended_offers={
            r.waitlist_entry_id: offer_outcome for r in reservations if r.waitlist_entry_id
        },
        now=now,
    )


def _end(reservations: Sequence[Reservation], status: str, *, reason: str, now: datetime) -> None:
    for r in reservations:
        r.status = status
        r.release_reason = reason
        r.released_at = now
        r.updated_at = now


def restock(
    *,
    reservation_ids: Sequence[int],
    reason: str = ReleaseReason.ORDER_CANCELLED,
    actor: str = "system",
) -> list[Reservation]:
    """Gives the stock of confirmed reservations back (``on_hand += q``) when their order
    is cancelled; the reservation becomes ``released`` (event ``restocked``). Pending ones
    are released (``reserved -= q``, event ``released``) in the same statement.
    Idempotent: released or expired reservations are left as they are.
    Locks: stock rows, then reservations. Queries: two whatever the number of lines."""
    if not reservation_ids:
        return []
    with _changes_then_refusals():
        reservations = _load_for_update(reservation_ids)
        now = timezone.now()  # after the wait for the locks
        confirmed = [r for r in reservations if r.status == ReservationStatus.CONFIRMED]
        pending = [r for r in reservations if r.status == ReservationStatus.PENDING]
        if confirmed or pending:
            changes = [
                _Change(r, ReservationEventKind.RESTOCKED, on_hand=r.quantity) for r in confirmed
            ] + [_Change(r, ReservationEventKind.RELEASED, reserved=-r.quantity) for r in pending]
            _end(confirmed + pending, ReservationStatus.RELEASED, reason=reason, now=now)
            _apply(_RELEASE_SQL, changes, now=now, actor=actor, reason=reason)
            _on_commit_count(
                metrics.reservations_released_total,
                len(confirmed) + len(pending),
                reason=_reason_label(reason),
            )
            _log("reservation.restocked", confirmed, actor=actor, reason=reason)
            _log("reservation.released", pending, actor=actor, reason=reason)
            _serve_freed(confirmed + pending, "cancelled", now=now, actor=actor)
        return reservations


# A product's first row in a warehouse; returns its id only if this call created it.
_CREATE_STOCK_ROW_SQL = """
INSERT INTO inventory_stocklevel (product_id, warehouse_id, on_hand, reserved, waitlisted,
                                  updated_at)
VALUES (%(product_id)s, %(warehouse_id)s, 0, 0, 0, %(now)s)
ON CONFLICT (product_id, warehouse_id) DO NOTHING
RETURNING id
"""

_SET_ON_HAND_SQL = """
WITH changed AS (
    UPDATE inventory_stocklevel SET on_hand = %(on_hand)s, updated_at = %(now)s
    WHERE id = %(id)s
    RETURNING id, on_hand
)
INSERT INTO inventory_stockledgerentry
    (stock_level_id, delta, on_hand_after, reason, actor, created_at)
SELECT id, %(delta)s, on_hand, %(reason)s, %(actor)s, %(now)s FROM changed
"""


def set_stock(
    *,
    product: Product,
    warehouse: Warehouse,
    on_hand: int,
    actor: str = "system",
    reason: str = "",
) -> StockLevel:
    """Sets ``on_hand`` of a product in a warehouse (creating the row if needed) and
    writes the change (delta, on-hand after, ``reason``, ``actor``) to the stock ledger in
    the same statement; setting the same value changes nothing and writes no entry.

    If ``on_hand`` would fall below what is reserved, lapsed reservations of the row are
    reclaimed first; if it still would, :class:`StockBelowReserved` and nothing changes.
    Locks: the stock row.
    """
    if on_hand < 0:
        raise ValueError("on_hand must not be negative")
    return _change_on_hand(
        product=product, warehouse=warehouse, actor=actor, reason=reason, target=lambda _: on_hand
    )


def adjust_stock(
    *, product: Product, warehouse: Warehouse, delta: int, actor: str, reason: str = ""
) -> StockLevel:
    """Adds ``delta`` (negative to remove) to ``on_hand``, computed on the locked row so
    that concurrent adjustments add up; otherwise exactly as :func:`set_stock` (ledger
    entry, reclaim of lapsed holds, :class:`StockBelowReserved` below ``reserved``)."""
    return _change_on_hand(
        product=product,
        warehouse=warehouse,
        actor=actor,
        reason=reason,
        target=lambda row: row.on_hand + delta,
    )


def _change_on_hand(
    *,
    product: Product,
    warehouse: Warehouse,
    actor: str,
    reason: str,
    target: Callable[[StockLevel], int],
) -> StockLevel:
    with transaction.atomic():
        created = _execute(
            _CREATE_STOCK_ROW_SQL,
            {"product_id": product.id, "warehouse_id": warehouse.id, "now": timezone.now()},
        )
        if created:
            # A new row of a product with a waitlist takes the product's counter (SPEC
            # §15), written with all its rows locked. Nobody else sees the new row before
            # this commits, so locking the older rows after it cannot block anyone on it.
            locks.lock_product_rows([product.id])
            sync_waitlisted([product.id])
        row = locks.lock_stock_levels_for([(product.id, warehouse.id)])[(product.id, warehouse.id)]
        on_hand = target(row)
        if on_hand < row.reserved:
            _reclaim_lapsed([row], actor=actor)
        if on_hand < row.reserved:
            raise StockBelowReserved(
                details={"on_hand": on_hand, "reserved": row.reserved, "sku": product.sku}
            )
        before = row.on_hand
        if on_hand != before:
            now = timezone.now()
            _execute(
                _SET_ON_HAND_SQL,
                {
                    "id": row.id,
                    "on_hand": on_hand,
                    "delta": on_hand - before,
                    "reason": reason[:255],
                    "actor": actor[:128],
                    "now": now,
                },
            )
            row.on_hand, row.updated_at = on_hand, now
            if (
                on_hand > before
                and row.waitlisted > 0
                and serve_waitlists({product.id}, actor=actor, now=now)
            ):
                row.refresh_from_db(fields=["reserved", "waitlisted", "updated_at"])
        row.product, row.warehouse = product, warehouse
        logger.info(
            "stock.set",
            extra={
                "event": "stock.set",
                "sku": product.sku,
                "warehouse": warehouse.code,
                "on_hand_before": before,
                "on_hand": on_hand,
                "reserved": row.reserved,
                "actor": actor,
                "reason": reason,
            },
        )
        return row


def expire_due(*, batch_size: int, actor: str = "sweeper") -> int:
    """Expires one batch (at most ``batch_size``) of lapsed pending reservations and gives
    their stock back; returns how many it expired. Callers loop until it returns 0.

    Safe on many workers at once: it takes the stock rows with lapsed reservations with
    ``FOR UPDATE SKIP LOCKED``, so two sweepers work on different rows and never wait for
    a shopper (a shopper holding a row reclaims its lapsed reservations itself); 0 means
    nothing lapsed is left that another transaction is not already holding. Locks: stock
    rows (ascending pk, skipping locked ones), then their reservations. Two statements per
    batch whatever its size.
    """
    with transaction.atomic():
        now = timezone.now()
        while True:
            stock_ids = locks.lock_stock_levels_with_lapsed(now=now, limit=batch_size)
            if not stock_ids:
                return 0
            expired = _expire_lapsed(stock_ids, now=now, limit=batch_size, actor=actor, reason="")
            if expired:
                return len(expired)
            # Another sweeper expired those rows' reservations between our snapshot and our
            # lock; the next statement's snapshot no longer picks them.


# --- waitlists (SPEC §15) ---------------------------------------------------------------

# Which carts may receive an offer, and how an offered line is put in its cart: the carts
# app registers both (``carts.apps``); inventory knows no cart beyond its id.
_cart_gate: Callable[[set[UUID]], set[UUID]] | None = None
_offer_sink: Callable[[list[tuple[UUID, UUID, int | None, int]]], None] | None = None


def register_waitlist_carts(
    *,
    gate: Callable[[set[UUID]], set[UUID]],
    sink: Callable[[list[tuple[UUID, UUID, int | None, int]]], None],
) -> None:
    """``gate(cart_ids)`` answers which of the carts may still receive an offer (an entry
    of another cart is cancelled when its turn comes); ``sink([(cart_id, product_id,
    warehouse_id, quantity)])`` puts each offered line in its cart if it is not there.
    Both run inside the offering transaction, after the stock rows are locked."""
    global _cart_gate, _offer_sink
    _cart_gate, _offer_sink = gate, sink


_END_OFFERS_SQL = """
UPDATE inventory_waitlistentry e
   SET status = ended.outcome, ended_at = %(now)s, updated_at = %(now)s
  FROM unnest(%(ids)s::bigint[], %(outcomes)s::varchar[]) AS ended (id, outcome)
 WHERE e.id = ended.id AND e.status = 'offered'
RETURNING e.status
"""

_LOCK_WAITING_SQL = """
SELECT id, product_id, warehouse_id, cart_id, quantity
  FROM inventory_waitlistentry
 WHERE product_id = ANY(%(products)s::uuid[]) AND status = 'waiting'
 ORDER BY id
   FOR UPDATE
"""

_MARK_ENTRIES_SQL = """
UPDATE inventory_waitlistentry e
   SET status = mark.status,
       offered_at = CASE WHEN mark.status = 'offered' THEN %(now)s ELSE e.offered_at END,
       offer_expires_at = CASE WHEN mark.status = 'offered' THEN mark.until
                               ELSE e.offer_expires_at END,
       ended_at = CASE WHEN mark.status = 'offered' THEN e.ended_at ELSE %(now)s END,
       updated_at = %(now)s
  FROM unnest(%(ids)s::bigint[], %(statuses)s::varchar[], %(untils)s::timestamptz[])
       AS mark (id, status, until)
 WHERE e.id = mark.id
"""

# Sets each product's counter, on all its rows (the caller holds them all), to the units
# its waiting entries want.
_SYNC_WAITLISTED_SQL = """
UPDATE inventory_stocklevel s
   SET waitlisted = wanted.units
  FROM (SELECT product.id,
               (SELECT COALESCE(SUM(e.quantity), 0) FROM inventory_waitlistentry e
                 WHERE e.product_id = product.id AND e.status = 'waiting') AS units
          FROM unnest(%(products)s::uuid[]) AS product (id)) wanted
 WHERE s.product_id = wanted.id AND s.waitlisted <> wanted.units
"""


def sync_waitlisted(product_ids: Iterable[UUID]) -> None:
    """Sets ``StockLevel.waitlisted`` of the products to the units their waiting entries
    want. The caller holds every stock row of these products."""
    products = sorted(set(product_ids))
    if products:
        _execute(_SYNC_WAITLISTED_SQL, {"products": products})


@dataclass(frozen=True)
class _Waiting:
    id: int
    product_id: UUID
    warehouse_id: int | None
    cart_id: UUID
    quantity: int


def serve_waitlists(
    product_ids: Iterable[UUID],
    *,
    actor: str,
    ended_offers: dict[int, str] | None = None,
    now: datetime | None = None,
) -> list[Reservation]:
    """Offers free units of the products to their waitlists, strictly first come first
    served, each entry for its whole quantity (SPEC §15); returns the offers' reservations.

    Called in the transaction that freed the units (release, expiry, restock, a stock
    increase) while it holds the freed rows. ``ended_offers`` maps waitlist entries whose
    offer reservations just ended to how (``expired`` or ``cancelled``); they end first.
    Then the product's waiting entries are locked (ascending id) and all of its stock rows
    (``SKIP LOCKED``, so the lock order holds whatever rows the caller has); a product with
    a row another transaction holds is left for the next freeing or the ``serve_waitlists``
    job. In entry order: an entry whose cart cannot take an offer any more is cancelled;
    the first entry whose quantity is not free stops its product's queue; the others get a
    pending reservation for their cart (``WAITLIST_OFFER_TTL_SECONDS``, linked by
    ``Reservation.waitlist_entry``; allocated like a cart line) and their line in the cart.
    Finally each served product's ``waitlisted`` counter is set from its waiting entries.
    Queries: one when no entry waits (plus one if offers ended); a few more per product
    served and one per offer."""
    now = now or timezone.now()
    if ended_offers:
        ended = _execute(
            _END_OFFERS_SQL,
            {"now": now, "ids": list(ended_offers), "outcomes": list(ended_offers.values())},
        )
        for (outcome,) in ended:
            _on_commit_count(metrics.waitlist_offers_total, outcome=outcome)
    products = sorted(set(product_ids))
    if not products:
        return []
    waiting = [_Waiting(*row) for row in _execute(_LOCK_WAITING_SQL, {"products": products})]
    if not waiting:
        return []
    rows, complete = locks.lock_product_rows({e.product_id for e in waiting}, skip_locked=True)
    open_carts = (
        _cart_gate({e.cart_id for e in waiting})
        if _cart_gate is not None
        else {e.cart_id for e in waiting}
    )
    rows_of: dict[UUID, list[StockLevel]] = defaultdict(list)
    for row in rows:
        rows_of[row.product_id].append(row)
    ttl = settings.WAITLIST_OFFER_TTL_SECONDS
    offers: list[tuple[_Waiting, list[Reservation]]] = []
    cancelled: list[_Waiting] = []
    blocked: set[UUID] = set()
    for entry in waiting:
        if entry.product_id not in complete or entry.product_id in blocked:
            continue
        if entry.cart_id not in open_carts:
            cancelled.append(entry)
            continue
        demand = {(entry.product_id, entry.warehouse_id): entry.quantity}
        plan, short = allocate(
            demands=demand, rows=rows_of[entry.product_id], strategy=settings.ALLOCATION_STRATEGY
        )
        if short:
            blocked.add(entry.product_id)  # strictly in order: nobody passes this entry
            continue
        offers.append(
            (
                entry,
                _create(plan, ttl, cart_id=entry.cart_id, actor=actor, waitlist_entry_id=entry.id),
            )
        )
    # An offer expires with its hold (the reservations' own expiry, not ``now`` + TTL:
    # the two differ by the time spent since ``now`` was read).
    marked = [
        (e.id, WaitlistStatus.OFFERED.value, min(r.expires_at for r in held)) for e, held in offers
    ] + [(e.id, WaitlistStatus.CANCELLED.value, None) for e in cancelled]
    if marked:
        _execute(
            _MARK_ENTRIES_SQL,
            {
                "now": now,
                "ids": [entry_id for entry_id, _, _ in marked],
                "statuses": [status for _, status, _ in marked],
                "untils": [until for _, _, until in marked],
            },
        )
        sync_waitlisted({e.product_id for e in cancelled} | {e.product_id for e, _ in offers})
    if offers and _offer_sink is not None:
        _offer_sink([(e.cart_id, e.product_id, e.warehouse_id, e.quantity) for e, _ in offers])
    _on_commit_count(metrics.waitlist_offers_total, len(offers), outcome="offered")
    for entry, reservations in offers:
        logger.info(
            "waitlist.offered",
            extra={
                "event": "waitlist.offered",
                "entry_id": entry.id,
                "cart_id": str(entry.cart_id),
                "product_id": str(entry.product_id),
                "quantity": entry.quantity,
                "reservation_ids": [r.id for r in reservations],
                "actor": actor,
            },
        )
    return [r for _, reservations in offers for r in reservations]
