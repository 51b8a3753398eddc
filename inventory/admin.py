"""Staff views of the catalog, stock and reservations (SPEC §11).

Stock numbers and reservation statuses are read-only here: they change only through
``inventory.services``, which every action below calls (with the staff user as actor,
so the reservation event log says who did it).
"""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.contrib import admin, messages
from django.db.models import F, Q, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.template.response import TemplateResponse

from core.admin import (
    LapsedFilter,
    ReadOnlyAdmin,
    ReadOnlyInline,
    action_confirmed,
    admin_link,
    cart_admin_link,
    confirmation_page,
    countdown,
    staff_actor,
)
from core.errors import ApplicationError
from core.jobs import run_cleanup
from inventory import services
from inventory.models import (
    RELEASE_REASON_OTHER,
    Product,
    ReleaseReason,
    Reservation,
    ReservationEvent,
    ReservationStatus,
    StockLevel,
    Warehouse,
)
from inventory.stock_admin import StockAdjustMixin, StockImportMixin, StockLedgerInline

# --- Catalog ------------------------------------------------------------------------


class StockLevelInline(ReadOnlyInline):
    model = StockLevel
    fields = ("warehouse", "on_hand", "reserved", "available", "updated_at")
    readonly_fields = fields

    @admin.display(description="available")
    def available(self, obj: StockLevel) -> int:
        return obj.available

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("warehouse")


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = (
        "sku",
        "name",
        "price",
        "currency",
        "on_hand",
        "reserved",
        "available",
        "max_per_order",
        "max_per_customer",
    )
    search_fields = ("sku", "name")
    list_filter = ("currency",)
    readonly_fields = ("id", "created_at", "updated_at")
    inlines = [StockLevelInline]

    def formfield_for_dbfield(self, db_field, request: HttpRequest, **kwargs):
        # Purchase limits (SPEC §15): empty for no limit, else at least 1 (as the table's
        # check constraint requires).
        if db_field.name in ("max_per_order", "max_per_customer"):
            kwargs["min_value"] = 1
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return (
            super()
            .get_queryset(request)
            .annotate(
                total_on_hand=Coalesce(Sum("stock_levels__on_hand"), 0),
                total_reserved=Coalesce(Sum("stock_levels__reserved"), 0),
            )
            .annotate(total_available=F("total_on_hand") - F("total_reserved"))
        )

    @admin.display(description="on hand", ordering="total_on_hand")
    def on_hand(self, obj: Product) -> int:
        return obj.total_on_hand

    @admin.display(description="reserved", ordering="total_reserved")
    def reserved(self, obj: Product) -> int:
        return obj.total_reserved

    @admin.display(description="available", ordering="total_available")
    def available(self, obj: Product) -> int:
        return obj.total_available


@admin.register(Warehouse)
class WarehouseAdmin(admin.ModelAdmin):
    """Staff set a warehouse's allocation ``priority`` and ``is_active`` here (also from
    the list). Deactivating stops new allocations from it; its holds run their course.
    Which warehouse is the default changes through the API (one default at a time)."""

    list_display = ("code", "name", "priority", "is_active", "is_default", "created_at")
    list_editable = ("priority", "is_active")
    list_filter = ("is_active", "is_default")
    search_fields = ("code", "name")
    ordering = ("priority", "code")
    fields = ("code", "name", "priority", "is_active", "is_default", "created_at")
    readonly_fields = ("is_default", "created_at")

    def get_readonly_fields(self, request: HttpRequest, obj: Warehouse | None = None):
        # A code is referenced by clients and stock rows: set once, at creation.
        return (*self.readonly_fields, "code") if obj is not None else self.readonly_fields


def held_in(reservations: Iterable[Reservation]) -> str:
    """Where a line is held, for the admin: ``3 from north, 2 from south (priority)``:
    each warehouse with its quantity, in allocation order, and the strategy that chose
    them (``pinned`` for a line that names its warehouse)."""
    reservations = list(reservations)
    if not reservations:
        return "-"
    parts = ", ".join(f"{r.quantity} from {r.warehouse.code}" for r in reservations)
    strategies = list(dict.fromkeys(r.allocation_strategy or "v1" for r in reservations))
    return f"{parts} ({', '.join(strategies)})"


# --- Stock --------------------------------------------------------------------------


class StockStatusFilter(admin.SimpleListFilter):
    title = "stock status"
    parameter_name = "stock_status"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin):
        return (
            ("in_stock", "In stock"),
            ("low_stock", "Low stock"),
            ("out_of_stock", "Out of stock"),
        )

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        # The same bands as inventory.stock.stock_status.
        low = settings.LOW_STOCK_THRESHOLD
        bands = {
            "in_stock": Q(stock_available__gte=max(low, 1)),
            "low_stock": Q(stock_available__gt=0, stock_available__lt=low),
            "out_of_stock": Q(stock_available__lte=0),
        }
        if self.value() not in bands:
            return queryset
        return queryset.alias(stock_available=F("on_hand") - F("reserved")).filter(
            bands[self.value()]
        )


class PendingReservationInline(ReadOnlyInline):
    model = Reservation
    fk_name = "stock_level"
    verbose_name_plural = "pending reservations"
    fields = ("id", "quantity", "expires_at", "time_left", "extension_count", "cart", "created_at")
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).filter(status=ReservationStatus.PENDING)

    @admin.display(description="time left")
    def time_left(self, obj: Reservation) -> str:
        return countdown(obj.expires_at)


@admin.register(StockLevel)
class StockLevelAdmin(StockAdjustMixin, StockImportMixin, ReadOnlyAdmin):
    """Stock numbers are never edited in a form: ``on_hand`` is set or adjusted on the
    "Set or adjust on hand" page, by an import, or through ``PUT /api/v1/inventory/stock/``
    (all through ``inventory.services``, each change in the stock ledger); ``reserved``
    moves only with reservations."""

    list_display = ("sku", "product_name", "warehouse", "on_hand", "reserved", "available")
    list_filter = ("warehouse", StockStatusFilter)
    search_fields = ("product__sku", "product__name")
    list_select_related = ("product", "warehouse")
    fields = ("product", "warehouse", "on_hand", "reserved", "available", "updated_at")
    readonly_fields = fields
    inlines = [PendingReservationInline, StockLedgerInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).annotate(available_now=F("on_hand") - F("reserved"))

    @admin.display(description="sku", ordering="product__sku")
    def sku(self, obj: StockLevel) -> str:
        return obj.product.sku

    @admin.display(description="product", ordering="product__name")
    def product_name(self, obj: StockLevel) -> str:
        return obj.product.name

    @admin.display(description="available", ordering="available_now")
    def available(self, obj: StockLevel) -> int:
        return obj.available


# --- Reservations -------------------------------------------------------------------


class ReservationEventInline(ReadOnlyInline):
    model = ReservationEvent
    fields = ("at", "kind", "quantity", "expires_at", "actor", "reason", "request_id")
    readonly_fields = fields
    show_change_link = False


class ReleaseReasonFilter(admin.SimpleListFilter):
    """The internal release codes, plus one entry for every free-text reason (free text
    would otherwise give the filter one entry per distinct text)."""

    title = "release reason"
    parameter_name = "release_reason"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list:
        return [*ReleaseReason.choices, (RELEASE_REASON_OTHER, "Other (free text)")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value == RELEASE_REASON_OTHER:
            return queryset.exclude(release_reason="").exclude(
                release_reason__in=ReleaseReason.values
            )
        if value in ReleaseReason.values:
            return queryset.filter(release_reason=value)
        return queryset


@admin.register(Reservation)
class ReservationAdmin(ReadOnlyAdmin):
    """Reservations are never edited; the actions below change them through the
    reservation service so that stock numbers stay exact."""

    list_display = (
        "id",
        "sku",
        "warehouse",
        "quantity",
        "status",
        "expires_at",
        "time_left",
        "extension_count",
        "allocation_strategy",
        "cart_link",
        "order_link",
        "release_reason_shown",
        "created_at",
    )
    list_filter = (
        "status",
        LapsedFilter,
        ("product", admin.RelatedOnlyFieldListFilter),
        "warehouse",
        "allocation_strategy",
        ReleaseReasonFilter,
    )
    search_fields = ("product__sku", "cart__id", "order__number")
    list_select_related = ("product", "warehouse", "order")
    date_hierarchy = "created_at"
    fields = (
        "id",
        "product",
        "warehouse",
        "stock_level",
        "quantity",
        "status",
        "expires_at",
        "time_left",
        "extension_count",
        "allocation_strategy",
        "cart",
        "order",
        "order_item_link",
        "release_reason_shown",
        "created_at",
        "updated_at",
        "confirmed_at",
        "released_at",
    )
    readonly_fields = fields
    inlines = [ReservationEventInline]
    actions = ["release_selected", "expire_now", "run_cleanup_now"]

    @admin.display(description="sku", ordering="product__sku")
    def sku(self, obj: Reservation) -> str:
        return obj.product.sku

    @admin.display(description="time left", ordering="expires_at")
    def time_left(self, obj: Reservation) -> str:
        """The hold's countdown while pending (lapsed ones say how long ago)."""
        if obj.status != ReservationStatus.PENDING:
            return "-"
        return countdown(obj.expires_at)

    @admin.display(description="release reason", ordering="release_reason")
    def release_reason_shown(self, obj: Reservation) -> str:
        """An internal code by its label; free text as given."""
        if obj.release_reason in ReleaseReason.values:
            return ReleaseReason(obj.release_reason).label
        return obj.release_reason

    @admin.display(description="cart", ordering="cart_id")
    def cart_link(self, obj: Reservation) -> str:
        return cart_admin_link(obj.cart_id)

    @admin.display(description="order", ordering="order__number")
    def order_link(self, obj: Reservation) -> str:
        return admin_link(obj.order, obj.order.number if obj.order else None)

    @admin.display(description="order item")
    def order_item_link(self, obj: Reservation) -> str:
        # Reservation.order is the link; the item is the order's line of this product.
        item = obj.order.items.filter(product_id=obj.product_id).first() if obj.order else None
        return admin_link(obj.order, f"{obj.order.number}: {item}") if item else "-"

    @admin.action(
        description="Release selected reservations (give their stock back)", permissions=["act"]
    )
    def release_selected(self, request: HttpRequest, queryset: QuerySet) -> TemplateResponse | None:
        if not action_confirmed(request):
            rows = queryset.select_related("product", "warehouse")
            return confirmation_page(
                self,
                request,
                rows,
                action="release_selected",
                title="Release reservations",
                effects=[
                    "release each selected pending reservation now (reason “staff”) and "
                    "give its quantity back to the available stock;",
                    "a shopper still in checkout with one of them loses that hold and is "
                    "told at confirm;",
                    "skip confirmed, released and expired reservations (cancel an order to "
                    "restock its items).",
                ],
                button="Yes, release them",
            )
        by_status: dict[str, list[int]] = {}
        for pk, status in queryset.values_list("id", "status"):
            by_status.setdefault(status, []).append(pk)
        pending = by_status.get(ReservationStatus.PENDING, [])
        confirmed = by_status.get(ReservationStatus.CONFIRMED, [])
        try:
            result = services.release(
                reservation_ids=pending, reason=ReleaseReason.STAFF, actor=staff_actor(request)
            )
        except ApplicationError as exc:  # e.g. confirmed by a checkout meanwhile
            self.message_user(request, f"Nothing released: {exc.message}", messages.ERROR)
            return
        # Pending when selected, released now (one may have expired in between).
        released = sum(1 for r in result if r.release_reason == ReleaseReason.STAFF)
        self.message_user(request, f"Released {released} reservation(s).", messages.SUCCESS)
        if confirmed:
            self.message_user(
                request,
                f"Skipped {len(confirmed)} confirmed reservation(s): cancel their order to "
                "restock them.",
                messages.WARNING,
            )

    @admin.action(
        description="Expire now (selected reservations past their expiry)", permissions=["act"]
    )
    def expire_now(self, request: HttpRequest, queryset: QuerySet) -> TemplateResponse | None:
        if not action_confirmed(request):
            return confirmation_page(
                self,
                request,
                queryset.select_related("product", "warehouse"),
                action="expire_now",
                title="Expire reservations now",
                effects=[
                    "expire each selected pending reservation whose expiry has passed and "
                    "give its quantity back to the available stock;",
                    "leave pending reservations that have not reached their expiry (use "
                    "“Release” for those) and every other status as they are.",
                ],
                button="Yes, expire them",
            )
        ids = list(queryset.values_list("id", flat=True))
        result = services.expire(reservation_ids=ids, actor=staff_actor(request))
        expired = sum(1 for r in result if r.status == ReservationStatus.EXPIRED)
        still_pending = sum(1 for r in result if r.status == ReservationStatus.PENDING)
        self.message_user(request, f"Expired {expired} reservation(s).", messages.SUCCESS)
        if still_pending:
            self.message_user(
                request,
                f"{still_pending} pending reservation(s) have not reached their expiry yet; "
                "use “Release” to free them now.",
                messages.WARNING,
            )

    @admin.action(
        description="Run cleanup now (every cleanup job, whatever is selected)", permissions=["act"]
    )
    def run_cleanup_now(self, request: HttpRequest, queryset: QuerySet) -> None:
        results = run_cleanup(actor=staff_actor(request))
        text = "; ".join(f"{job}: {done}" for job, done, _ in results)
        failed = [job for job, _, errors in results if errors]
        self.message_user(request, f"Cleanup done — {text}.", messages.SUCCESS)
        if failed:
            self.message_user(
                request,
                f"Some items failed in {', '.join(failed)} (see the log); they are left for "
                "the next run.",
                messages.WARNING,
            )


@admin.register(ReservationEvent)
class ReservationEventAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "at",
        "reservation_link",
        "kind",
        "quantity",
        "expires_at",
        "actor",
        "reason",
        "request_id",
    )
    list_filter = ("kind", "at")
    search_fields = ("=reservation__id", "reservation__product__sku", "actor", "request_id")
    list_select_related = ("reservation",)
    date_hierarchy = "at"

    @admin.display(description="reservation", ordering="reservation_id")
    def reservation_link(self, obj: ReservationEvent) -> str:
        return admin_link(obj.reservation, f"#{obj.reservation_id}")


# The waitlist entries' page (SPEC §15) registers itself when imported.
from inventory import waitlist_admin  # noqa: E402, F401
