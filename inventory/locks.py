"""The only place in ``inventory`` that takes row locks.

Lock order, everywhere in the project: the Cart row (when the change belongs to a cart),
then StockLevel rows in ascending primary key, then Reservation rows in ascending primary
key. Holding a StockLevel lock gives the right to change any reservation of that stock
row, so two transactions can never wait on each other in a cycle.

Each helper is one statement whatever the number of rows. PostgreSQL takes the row locks
of ``SELECT ... ORDER BY id FOR UPDATE`` in the order of the sort, which is what makes
the order above hold for multi-line carts. One lock is taken elsewhere: the statement that
expires lapsed reservations (``inventory.services._EXPIRE_LAPSED_SQL``) locks the
reservations it ends, inside its own UPDATE, only of stock rows locked here before.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from uuid import UUID

from django.db import connection, models

from inventory.models import Product, Reservation, StockLevel, Warehouse


def array_literal(values: Iterable[object]) -> str:
    """``values`` as the text of a PostgreSQL array (``{1,2}``), to be passed as one text
    parameter and cast in the statement (``%(ids)s::bigint[]``). The driver adapts a
    Python list element by element (a type lookup and a dumper per element, each time);
    this text costs a join, and the hot statements pass several arrays. Elements: int,
    UUID, str, datetime (ISO 8601 with its offset) or None (NULL)."""
    parts = []
    for value in values:
        if value is None:
            parts.append("NULL")
        elif isinstance(value, int | UUID):  # bool is an int: refused below
            if isinstance(value, bool):
                raise TypeError("array_literal takes no bool")
            parts.append(str(value))
        elif isinstance(value, str):
            parts.append('"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"')
        elif isinstance(value, datetime):
            parts.append('"' + value.isoformat() + '"')
        else:
            raise TypeError(f"array_literal cannot encode {type(value).__name__}")
    return "{" + ",".join(parts) + "}"


_STOCK_COLUMNS = (
    "id",
    "product_id",
    "warehouse_id",
    "on_hand",
    "reserved",
    "waitlisted",
    "updated_at",
)

_LOCK_PAIRS_SQL = """
SELECT s.id, s.product_id, s.warehouse_id, s.on_hand, s.reserved, s.waitlisted, s.updated_at
  FROM inventory_stocklevel s
  JOIN unnest(%s::uuid[], %s::bigint[]) AS wanted (product_id, warehouse_id)
    ON s.product_id = wanted.product_id AND s.warehouse_id = wanted.warehouse_id
 ORDER BY s.id
   FOR UPDATE OF s
"""

# The candidate rows of an allocation: the pinned (product, warehouse) pairs, and every
# row of an unpinned product in an active warehouse. One index scan on product_id, the
# rest a filter; the warehouse columns the allocation sorts by come with it (that row is
# not locked: a warehouse changing meanwhile only changes what the next allocation sees).
_LOCK_CANDIDATES_SQL = """
SELECT s.id, s.product_id, s.warehouse_id, s.on_hand, s.reserved, s.waitlisted, s.updated_at,
       w.id, w.code, w.is_default, w.priority, w.is_active
  FROM inventory_stocklevel s
  JOIN inventory_warehouse w ON w.id = s.warehouse_id
 WHERE s.product_id = ANY(%(products)s::uuid[])
   AND ((w.is_active AND s.product_id = ANY(%(unpinned)s::uuid[]))
        OR EXISTS (SELECT 1 FROM unnest(%(pin_products)s::uuid[], %(pin_warehouses)s::bigint[])
                          AS pin (product_id, warehouse_id)
                    WHERE pin.product_id = s.product_id AND pin.warehouse_id = s.warehouse_id))
 ORDER BY s.id
   FOR UPDATE OF s
"""
_CANDIDATE_WAREHOUSE_COLUMNS = ("id", "code", "is_default", "priority", "is_active")

# Every stock row of the products (any warehouse state), for the waitlist: its counter
# (``StockLevel.waitlisted``) is written on all of a product's rows at once. ``total`` is
# the product's number of rows, so that a caller skipping locked rows knows whether it
# got them all.
_LOCK_PRODUCT_ROWS_SQL = """
SELECT s.id, s.product_id, s.warehouse_id, s.on_hand, s.reserved, s.waitlisted, s.updated_at,
       w.id, w.code, w.is_default, w.priority, w.is_active,
       (SELECT count(*) FROM inventory_stocklevel t WHERE t.product_id = s.product_id)
  FROM inventory_stocklevel s
  JOIN inventory_warehouse w ON w.id = s.warehouse_id
 WHERE s.product_id = ANY(%(products)s::uuid[])
 ORDER BY s.id
   FOR UPDATE OF s{skip}
"""

_LOCK_WITH_LAPSED_SQL = """
SELECT s.id FROM inventory_stocklevel s
 WHERE EXISTS (
     SELECT 1 FROM inventory_reservation r
      WHERE r.stock_level_id = s.id AND r.status = 'pending' AND r.expires_at <= %(now)s
 )
 ORDER BY s.id
 LIMIT %(limit)s
   FOR UPDATE SKIP LOCKED
"""


def lock_stock_levels(ids: Iterable[int]) -> dict[int, StockLevel]:
    """Locks the StockLevel rows in ascending pk order (one query) and returns them by id,
    with product and warehouse loaded (those rows are not locked)."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = (
        StockLevel.objects.select_for_update(of=("self",))
        .select_related("product", "warehouse")
        .filter(id__in=wanted)
        .order_by("id")
    )
    return {row.id: row for row in rows}


def lock_stock_levels_for(
    pairs: Iterable[tuple[UUID, int]],
) -> dict[tuple[UUID, int], StockLevel]:
    """Locks the StockLevel rows of ``(product_id, warehouse_id)`` pairs in ascending pk
    order (one query) and returns them by pair; pairs with no row are absent. Product and
    warehouse are not loaded."""
    wanted = list(set(pairs))
    if not wanted:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(_LOCK_PAIRS_SQL, [[p for p, _ in wanted], [w for _, w in wanted]])
        rows = [StockLevel.from_db(connection.alias, _STOCK_COLUMNS, r) for r in cursor.fetchall()]
    return {(row.product_id, row.warehouse_id): row for row in rows}


def lock_allocation_candidates(
    *, pinned: Iterable[tuple[UUID, int]], unpinned: Iterable[UUID]
) -> list[StockLevel]:
    """Locks, in ascending pk order and in one query, every StockLevel row an allocation
    may draw from: the rows of the ``pinned`` ``(product_id, warehouse_id)`` pairs
    (whatever their warehouse's state) and every row of the ``unpinned`` products in an
    active warehouse. Returns them in pk order, each with its warehouse loaded (``id``,
    ``code``, ``is_default``, ``priority``, ``is_active``; that row is not locked)."""
    pins = list(set(pinned))
    loose = list(set(unpinned))
    products = list({p for p, _ in pins} | set(loose))
    if not products:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            _LOCK_CANDIDATES_SQL,
            {
                "products": array_literal(products),
                "unpinned": array_literal(loose),
                "pin_products": array_literal(p for p, _ in pins),
                "pin_warehouses": array_literal(w for _, w in pins),
            },
        )
        fetched = cursor.fetchall()
    return [_row_with_warehouse(values) for values in fetched]


def _row_with_warehouse(values: tuple) -> StockLevel:
    split = len(_STOCK_COLUMNS)
    end = split + len(_CANDIDATE_WAREHOUSE_COLUMNS)
    row = StockLevel.from_db(connection.alias, _STOCK_COLUMNS, values[:split])
    warehouse = Warehouse.from_db(connection.alias, _CANDIDATE_WAREHOUSE_COLUMNS, values[split:end])
    StockLevel._meta.get_field("warehouse").set_cached_value(row, warehouse)
    return row


def lock_product_rows(
    product_ids: Iterable[UUID], *, skip_locked: bool = False
) -> tuple[list[StockLevel], set[UUID]]:
    """Locks every StockLevel row of the products (whatever their warehouse's state), in
    ascending pk order, in one query; returns them (warehouse loaded, as
    :func:`lock_allocation_candidates`) and the products all of whose rows were locked.

    With ``skip_locked`` rows another transaction holds are skipped (``SKIP LOCKED``: no
    wait, so a caller already holding other stock rows keeps the lock order); a product
    with a skipped row is then left out of the returned set. Rows this transaction holds
    already are never skipped."""
    products = sorted(set(product_ids))
    if not products:
        return [], set()
    sql = _LOCK_PRODUCT_ROWS_SQL.format(skip=" SKIP LOCKED" if skip_locked else "")
    with connection.cursor() as cursor:
        cursor.execute(sql, {"products": products})
        fetched = cursor.fetchall()
    rows = [_row_with_warehouse(values) for values in fetched]
    got: dict[UUID, int] = {}
    totals: dict[UUID, int] = {}
    for row, values in zip(rows, fetched, strict=True):
        got[row.product_id] = got.get(row.product_id, 0) + 1
        totals[row.product_id] = values[-1]
    return rows, {product for product, count in got.items() if count == totals[product]}


def lock_stock_levels_with_lapsed(*, now: datetime, limit: int) -> list[int]:
    """Locks up to ``limit`` StockLevel rows that have lapsed pending reservations, in
    ascending pk order, skipping rows another transaction holds (``SKIP LOCKED``): several
    sweepers share the work and never wait for a shopper. Returns their ids."""
    with connection.cursor() as cursor:
        cursor.execute(_LOCK_WITH_LAPSED_SQL, {"now": now, "limit": limit})
        return [row[0] for row in cursor.fetchall()]


def _columns(model: type[models.Model], alias: str) -> tuple[list[str], str]:
    fields = model._meta.concrete_fields
    return [f.attname for f in fields], ", ".join(f'{alias}."{f.column}"' for f in fields)


_RESERVATION_FIELDS, _reservation_columns = _columns(Reservation, "r")
_PRODUCT_FIELDS, _product_columns = _columns(Product, "p")
_WAREHOUSE_FIELDS, _warehouse_columns = _columns(Warehouse, "w")
_SELECT_RESERVATIONS = f"""
SELECT {_reservation_columns}, {_product_columns}, {_warehouse_columns}
  FROM inventory_reservation r
  JOIN inventory_product p ON p.id = r.product_id
  JOIN inventory_warehouse w ON w.id = r.warehouse_id
 WHERE r.id = ANY(%(ids)s::bigint[])
"""  # noqa: S608 -- column names from the models, values are parameters
_LOCK_RESERVATIONS_SQL = f"""{_SELECT_RESERVATIONS}
 ORDER BY r.id
   FOR UPDATE OF r
"""
# The sub-select locks the stock rows (ascending pk). It does not depend on the outer row,
# so PostgreSQL runs it once, before the first reservation row is read ("One-Time
# Filter"); the reservation rows are locked after that, in ascending pk by the outer
# ORDER BY ... FOR UPDATE. The order of the module docstring, in one round trip.
#
# The stock row is joined again (``held``) for its ``waitlisted`` counter, and locked again
# in the outer ``FOR UPDATE OF r, held``: already ours, so that never waits, but a row
# changed after this statement's snapshot (by a transaction we waited for in the
# sub-select) is re-read at its latest version, so the counter is current.
_LOCK_RESERVATIONS_AND_STOCK_SQL = f"""
SELECT {_reservation_columns}, {_product_columns}, {_warehouse_columns}, held.waitlisted
  FROM inventory_reservation r
  JOIN inventory_product p ON p.id = r.product_id
  JOIN inventory_warehouse w ON w.id = r.warehouse_id
  JOIN inventory_stocklevel held ON held.id = r.stock_level_id
 WHERE r.id = ANY(%(ids)s::bigint[])
   AND (SELECT count(*) FROM (
           SELECT s.id FROM inventory_stocklevel s
            WHERE s.id IN (SELECT stock_level_id FROM inventory_reservation
                            WHERE id = ANY(%(ids)s::bigint[]))
            ORDER BY s.id
              FOR UPDATE
        ) AS stock_locked) >= 0
 ORDER BY r.id
   FOR UPDATE OF r, held
"""  # noqa: S608 -- constant text, values are parameters
_PRODUCT = Reservation._meta.get_field("product")
_WAREHOUSE = Reservation._meta.get_field("warehouse")


def _load_reservations(sql: str, ids: list[int]) -> list[Reservation]:
    with connection.cursor() as cursor:
        cursor.execute(sql, {"ids": array_literal(ids)})
        rows = cursor.fetchall()
    alias = connection.alias
    split_product = len(_RESERVATION_FIELDS)
    split_warehouse = split_product + len(_PRODUCT_FIELDS)
    reservations = []
    split_end = split_warehouse + len(_WAREHOUSE_FIELDS)
    for row in rows:
        reservation = Reservation.from_db(alias, _RESERVATION_FIELDS, row[:split_product])
        product = Product.from_db(alias, _PRODUCT_FIELDS, row[split_product:split_warehouse])
        warehouse = Warehouse.from_db(alias, _WAREHOUSE_FIELDS, row[split_warehouse:split_end])
        if len(row) > split_end:
            # Units its product's waitlist wants (read under the stock row lock).
            reservation.stock_waitlisted = row[split_end]
        _PRODUCT.set_cached_value(reservation, product)
        _WAREHOUSE.set_cached_value(reservation, warehouse)
        reservations.append(reservation)
    return reservations


def lock_reservations(ids: Iterable[int]) -> list[Reservation]:
    """Locks Reservation rows in ascending pk order (one query), with product and
    warehouse loaded (those rows are not locked). Call only while holding the locks of
    their StockLevel rows."""
    wanted = sorted(set(ids))
    return _load_reservations(_LOCK_RESERVATIONS_SQL, wanted) if wanted else []


def lock_reservations_and_stock(ids: Iterable[int]) -> list[Reservation]:
    """Locks the StockLevel rows of the given reservations (ascending pk), then the
    reservations (ascending pk), in one query; returns the reservations that exist, by
    id, with product and warehouse loaded (those rows are not locked), each with
    ``stock_waitlisted``: its stock row's current ``waitlisted`` counter.

    Written out rather than with ``select_related``: it runs in every extend, confirm and
    release, and building the ORM query cost more than the rest of a release. A
    reservation never moves to another stock row, so finding its ``stock_level_id``
    before holding the lock is safe; the reservation columns returned are those of the
    latest committed version (``FOR UPDATE`` re-reads a row changed while it waited)."""
    wanted = sorted(set(ids))
    return _load_reservations(_LOCK_RESERVATIONS_AND_STOCK_SQL, wanted) if wanted else []
