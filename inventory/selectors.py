"""Reads of the inventory: the catalog with availability, stock per warehouse and
reservations. (The consistency check behind ``manage.py check_inventory`` lives with its
repair in ``inventory.repair``.)

Every function answers in a constant number of queries whatever the number of rows:
lists are annotated or ``select_related`` so that their output serializers never query
again (pinned by the query-count tests).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from uuid import UUID

from django.db.models import F, Max, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from inventory.errors import ProductNotFound, ReservationNotFound, WarehouseNotFound
from inventory.models import (
    Product,
    Reservation,
    ReservationStatus,
    StockLedgerEntry,
    StockLevel,
    Warehouse,
)
from inventory.stock import stock_status

_MAX_BIGINT = 2**63 - 1


# --- Catalog ----------------------------------------------------------------------


# What the public may take of a product (SPEC §15): its free units over every active
# warehouse less the units its waiting entries want (``waitlisted``, the same on each of
# its rows), never below 0.
_PUBLIC_AVAILABLE = Greatest(Sum(F("on_hand") - F("reserved")) - Max("waitlisted"), Value(0))


def _available_across_warehouses() -> Coalesce:
    """``SUM(on_hand - reserved)`` over every active warehouse of the product less the
    units its waitlist withholds (not below 0), 0 without stock."""
    per_product = (
        StockLevel.objects.filter(product_id=OuterRef("pk"), warehouse__is_active=True)
        .order_by()
        .values("product_id")
        .annotate(total=_PUBLIC_AVAILABLE)
        .values("total")[:1]
    )
    return Coalesce(Subquery(per_product), Value(0))


def product_list(*, sku: str | None = None, search: str | None = None) -> QuerySet[Product]:
    """Products ordered by sku. ``sku`` matches exactly; ``search`` is a
    case-insensitive substring of sku or name. Pass the page to
    :func:`with_availability` before serializing."""
    qs = Product.objects.order_by("sku")
    if sku:
        qs = qs.filter(sku=sku)
    if search:
        qs = qs.filter(Q(sku__icontains=search) | Q(name__icontains=search))
    return qs


def with_availability(products: Iterable[Product]) -> list[Product]:
    """Sets ``available`` (summed over every active warehouse less what the product's
    waitlist withholds, 0 without stock: what a line that names no warehouse can get) on
    each product, in one query. Done per page rather than annotated on the list, so that
    a deep page does not compute the sum for every row it skips."""
    products = list(products)
    sums = dict(
        StockLevel.objects.filter(
            product_id__in=[p.id for p in products], warehouse__is_active=True
        )
        .order_by()
        .values("product_id")
        .annotate(total=_PUBLIC_AVAILABLE)
        .values_list("product_id", "total")
    )
    for product in products:
        product.available = sums.get(product.id, 0)
    return products


def _parse_uuid(value: UUID | str) -> UUID | None:
    if isinstance(value, UUID):
        return value
    try:
        return UUID(str(value))
    except ValueError:
        return None


def product_get(*, product_id: UUID | str) -> Product:
    """The product annotated with ``available``; :class:`ProductNotFound` when the id is
    unknown or not a UUID."""
    parsed = _parse_uuid(product_id)
    product = (
        Product.objects.annotate(available=_available_across_warehouses()).filter(id=parsed).first()
        if parsed
        else None
    )
    if product is None:
        raise ProductNotFound()
    return product


def products_by_sku(*, skus: Iterable[str]) -> dict[str, Product]:
    """``{sku: product}`` for every given sku (one query); :class:`ProductNotFound` with
    ``details.skus`` listing every unknown one."""
    wanted = list(dict.fromkeys(skus))
    found = {p.sku: p for p in Product.objects.filter(sku__in=wanted)}
    missing = [sku for sku in wanted if sku not in found]
    if missing:
        raise ProductNotFound(
            "Product not found" if len(missing) == 1 else "Products not found",
            details={"skus": missing},
        )
    return found


def warehouse_list() -> QuerySet[Warehouse]:
    return Warehouse.objects.order_by("code")


def warehouses_by_code(*, codes: Iterable[str | None]) -> dict[str | None, Warehouse]:
    """``{code: warehouse}`` for every given code, ``None`` standing for the default
    warehouse (one query); :class:`WarehouseNotFound` with ``details.warehouses`` listing
    every unknown code."""
    wanted = list(dict.fromkeys(codes))
    named = [code for code in wanted if code is not None]
    condition = Q(code__in=named)
    if None in wanted:
        condition |= Q(is_default=True)
    rows = list(Warehouse.objects.filter(condition))
    found: dict[str | None, Warehouse] = {w.code: w for w in rows if w.code in named}
    if None in wanted:
        default = next((w for w in rows if w.is_default), None)
        if default is None:  # a migration creates it and nothing can delete it
            raise WarehouseNotFound("No default warehouse")
        found[None] = default
    missing = [code for code in named if code not in found]
    if missing:
        raise WarehouseNotFound(details={"warehouses": missing})
    return found


def warehouse_get(*, code: str | None) -> Warehouse:
    """The warehouse with this code, the default one for ``None``."""
    return warehouses_by_code(codes=[code])[code]


# --- Stock --------------------------------------------------------------------------


@dataclass(frozen=True)
class StockAvailability:
    """Stock of one product in one warehouse (zeros where no stock row exists yet)."""

    product_id: UUID
    sku: str
    warehouse: str
    on_hand: int
    reserved: int

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved

    @property
    def status(self) -> str:
        return stock_status(self.available)


def stock_availability(
    *, skus: Sequence[str], warehouse_code: str | None = None
) -> list[StockAvailability]:
    """Availability of the given skus, in the order asked (duplicates once).

    With ``warehouse_code``: one item per sku for that warehouse. Without: one item per
    warehouse holding a stock row of the sku (by warehouse code); a sku with no stock
    row anywhere appears once, at the default warehouse, with zeros.
    Raises :class:`ProductNotFound` / :class:`WarehouseNotFound` for unknown ones.
    Queries: at most three whatever the number of skus.
    """
    products = products_by_sku(skus=skus)
    ordered = [products[sku] for sku in dict.fromkeys(skus)]
    ids = [p.id for p in ordered]
    if warehouse_code is not None:
        warehouse = warehouse_get(code=warehouse_code)
        rows = {
            row.product_id: row
            for row in StockLevel.objects.filter(product_id__in=ids, warehouse=warehouse)
        }
        return [
            StockAvailability(
                product_id=p.id,
                sku=p.sku,
                warehouse=warehouse.code,
                on_hand=rows[p.id].on_hand if p.id in rows else 0,
                reserved=rows[p.id].reserved if p.id in rows else 0,
            )
            for p in ordered
        ]

    by_product: dict[UUID, list[StockLevel]] = {pid: [] for pid in ids}
    for row in (
        StockLevel.objects.filter(product_id__in=ids)
        .select_related("warehouse")
        .order_by("warehouse__code")
    ):
        by_product[row.product_id].append(row)
    default_code = None
    if any(not rows for rows in by_product.values()):
        default_code = warehouse_get(code=None).code
    items: list[StockAvailability] = []
    for p in ordered:
        rows = by_product[p.id]
        if not rows:
            items.append(
                StockAvailability(
                    product_id=p.id, sku=p.sku, warehouse=default_code, on_hand=0, reserved=0
                )
            )
        items.extend(
            StockAvailability(
                product_id=p.id,
                sku=p.sku,
                warehouse=row.warehouse.code,
                on_hand=row.on_hand,
                reserved=row.reserved,
            )
            for row in rows
        )
    return items


# --- Reservations -----------------------------------------------------------------


def reservation_list(
    *,
    status: str | None = None,
    cart_id: UUID | None = None,
    order_id: UUID | None = None,
    sku: str | None = None,
    expired: bool | None = None,
) -> QuerySet[Reservation]:
    """Reservations, newest first, with product and warehouse loaded.

    ``expired=True``: pending reservations whose expiry has passed (lapsed, not yet
    swept); ``expired=False``: every other reservation.
    """
    qs = Reservation.objects.select_related("product", "warehouse").order_by("-id")
    if status:
        qs = qs.filter(status=status)
    if cart_id:
        qs = qs.filter(cart_id=cart_id)
    if order_id:
        qs = qs.filter(order_id=order_id)
    if sku:
        qs = qs.filter(product__sku=sku)
    if expired is not None:
        lapsed = Q(status=ReservationStatus.PENDING, expires_at__lte=timezone.now())
        qs = qs.filter(lapsed) if expired else qs.exclude(lapsed)
    return qs


def reservation_get(*, reservation_id: int | str) -> Reservation:
    """The reservation with product and warehouse loaded; :class:`ReservationNotFound`
    when the id is unknown or not a positive integer."""
    text = str(reservation_id)
    parsed = int(text) if text.isascii() and text.isdigit() else 0
    reservation = None
    if 0 < parsed <= _MAX_BIGINT:
        reservation = (
            Reservation.objects.select_related("product", "warehouse").filter(id=parsed).first()
        )
    if reservation is None:
        raise ReservationNotFound()
    return reservation


def order_exists(*, order_id: UUID) -> bool:
    """Whether the order a reservation would be confirmed into exists. The order model is
    reached through ``Reservation.order`` (a foreign key by name), so inventory imports
    nothing of the orders app above it."""
    order_model = Reservation._meta.get_field("order").related_model
    return order_model._default_manager.filter(pk=order_id).exists()


def stock_ledger(*, sku: str | None = None, warehouse: str | None = None) -> QuerySet:
    """Stock ledger entries, newest first, optionally of one sku and/or one warehouse
    (by code), with their product and warehouse loaded (one query per page)."""
    qs = StockLedgerEntry.objects.select_related(
        "stock_level__product", "stock_level__warehouse"
    ).order_by("-created_at", "-id")
    if sku:
        qs = qs.filter(stock_level__product__sku=sku)
    if warehouse:
        qs = qs.filter(stock_level__warehouse__code=warehouse)
    return qs


def set_stock_refusal(*, stock_level: StockLevel, on_hand: int) -> str | None:
    """Why ``services.set_stock`` would refuse ``on_hand`` for this row now, or ``None``:
    below what stays reserved once the row's lapsed holds are reclaimed (which
    ``set_stock`` does first). A read for previews; the service decides under its lock."""
    if stock_level.pk is None or on_hand >= stock_level.reserved:
        return None
    lapsed = Reservation.objects.filter(
        stock_level_id=stock_level.pk,
        status=ReservationStatus.PENDING,
        expires_at__lte=timezone.now(),
    ).aggregate(total=Coalesce(Sum("quantity"), 0))["total"]
    still_reserved = stock_level.reserved - lapsed
    if on_hand >= still_reserved:
        return None
    return f"refused: on_hand {on_hand} is below the {still_reserved} reserved"
