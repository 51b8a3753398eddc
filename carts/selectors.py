"""Reads of carts (no writes, no locks)."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from django.db.models import FilteredRelation, Prefetch, Q, QuerySet, Sum, prefetch_related_objects
from django.db.models.functions import Coalesce
from django.utils import timezone

from carts.errors import CartNotFound
from carts.models import Cart, CartItem
from inventory.models import ReservationStatus, StockLevel
from inventory.stock import stock_status


def cart_items_queryset() -> QuerySet[CartItem]:
    return CartItem.objects.select_related("product", "warehouse").order_by("id")


def carts_with_items() -> QuerySet[Cart]:
    """Carts with their lines, products and warehouses loaded in one extra query."""
    return Cart.objects.prefetch_related(Prefetch("items", queryset=cart_items_queryset()))


def with_items(cart: Cart) -> Cart:
    """``cart`` (as a service left it) with its lines loaded afresh in one query, ready
    for ``CartOutputSerializer``."""
    getattr(cart, "_prefetched_objects_cache", {}).pop("items", None)
    prefetch_related_objects([cart], Prefetch("items", queryset=cart_items_queryset()))
    return cart


def cart_with_items(*, cart_id: UUID) -> Cart:
    """The cart with its lines loaded (two queries), ready for ``CartOutputSerializer``."""
    cart = carts_with_items().filter(id=cart_id).first()
    if cart is None:
        raise CartNotFound()
    return cart


@dataclass(frozen=True)
class LineStock:
    """Stock of one cart line as this cart sees it.

    ``available`` is what this cart could hold for the line: the stock row's free
    quantity plus what this cart already holds in pending reservations plus what other
    holders hold in reservations that have lapsed (a reserve reclaims those on demand).
    ``reserved`` is what this cart holds for the line now.
    """

    item: CartItem
    requested: int
    available: int
    reserved: int

    @property
    def status(self) -> str:
        if self.available <= 0:
            return "out_of_stock"
        if self.available < self.requested:
            return "insufficient"
        return stock_status(self.available)

    @property
    def ok(self) -> bool:
        return self.available >= self.requested

    @property
    def available_after(self) -> int:
        """What would be left for others once this cart holds the whole line."""
        return max(self.available - self.requested, 0)


def cart_line_stock(*, cart: Cart) -> list[LineStock]:
    """Stock of every line of ``cart`` (whose items are loaded, see ``cart_with_items``).

    A pinned line counts its warehouse's row (if that warehouse is active); an unpinned
    line counts every row of its product in an active warehouse. Either also counts what
    this cart already holds for it in any other warehouse (a warehouse deactivated after
    the hold was made lets the hold finish). Units wanted by the product's waiting
    waitlist entries are not available to it (SPEC §15). One query whatever the number of
    lines and warehouses: the stock rows of the cart's products with the sums of the
    pending reservations that count for this cart (its own, and lapsed ones of anybody)."""
    items = list(cart.items.all())
    if not items:
        return []
    now = timezone.now()
    rows = list(
        StockLevel.objects.filter(product_id__in={item.product_id for item in items})
        .annotate(
            held=FilteredRelation(
                "reservations",
                condition=Q(reservations__status=ReservationStatus.PENDING)
                & (Q(reservations__cart_id=cart.id) | Q(reservations__expires_at__lte=now)),
            )
        )
        .values(
            "product_id",
            "warehouse_id",
            "warehouse__is_active",
            "on_hand",
            "reserved",
            "waitlisted",
        )
        .annotate(
            counts_as_free=Coalesce(Sum("held__quantity"), 0),
            own=Coalesce(
                Sum("held__quantity", filter=Q(held__cart_id=cart.id, held__expires_at__gt=now)),
                0,
            ),
        )
        .order_by()
    )
    lines = []
    for item in items:
        free = reserved = withheld = 0
        for row in rows:
            if row["product_id"] != item.product_id:
                continue
            reserved += row["own"]
            # Units the product's waitlist wants (the same on each of its rows) are kept
            # back from every cart but the one they are offered to (SPEC §15).
            withheld = max(withheld, row["waitlisted"])
            serves = row["warehouse__is_active"] and (
                item.warehouse_id is None or item.warehouse_id == row["warehouse_id"]
            )
            if serves:
                free += max(
                    row["on_hand"] - row["reserved"] + row["counts_as_free"] - row["own"], 0
                )
        available = reserved + max(free - withheld, 0)
        lines.append(
            LineStock(item=item, requested=item.quantity, available=available, reserved=reserved)
        )
    return lines
