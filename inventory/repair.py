"""The consistency check behind ``manage.py check_inventory`` (SPEC §3), and the repair of
the drift it finds.

The check reads; it takes no lock. Each batch is one statement, so a row's counters and
its reservations come from the same snapshot even while shoppers keep reserving.

The repair is the one writer of a stock number outside ``inventory.services``: it resets a
drifted ``reserved`` counter to the sum of the row's pending reservations (never
``on_hand``, never a reservation). Locks: the stock rows, ascending pk, through
``inventory.locks``, the same order as every stock change; their reservations are then
read unlocked, which is safe because any change to them locks the stock row first. Each
change is logged (``inventory.check``, event ``stock.reserved_repaired``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Count, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from inventory import locks
from inventory.models import Reservation, ReservationStatus, StockLevel

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

    @property
    def problems(self) -> list[str]:
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


def stock_check_batch(*, after_id: int, limit: int) -> list[StockCheck]:
    """Up to ``limit`` stock rows with ``id > after_id`` in id order, each with the
    figures of its pending reservations. One statement, so the counters and the
    reservations are read from the same snapshot even while shoppers keep reserving."""
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
