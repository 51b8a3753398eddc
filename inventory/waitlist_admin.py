"""Staff view of the waitlists (SPEC §15): every entry, listed by sku in queue order with
its position, status, quantity, cart and offer; read-only.

Queue rows are never edited by hand: an entry changes only through ``inventory.waitlist``
and the offer step of ``inventory.services``, under the product's stock row locks, which
keep the withheld units (``StockLevel.waitlisted``) and the offers exact. The one action,
*Cancel entries*, goes through ``inventory.waitlist.leave``: a waiting entry leaves its
queue, an offered one gives its hold back and the units pass to the next entry in the
same transaction. (The shopper's own leave locks the Cart row first; staff cancel without
it, which is safe: every change of an entry and of its hold takes the product's stock
rows first, so a checkout starting with the offer at the same moment either claims it
before or finds it released.)

Loaded by ``inventory.admin`` (which Django's autodiscovery imports). The list costs a
fixed number of queries: the position and the offer's first hold are annotations,
product and warehouse are joined, the cart is linked by its id.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

from core.admin import (
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
from inventory import waitlist
from inventory.models import (
    OPEN_WAITLIST_STATUSES,
    Reservation,
    WaitlistEntry,
    WaitlistStatus,
)


class OfferHoldInline(ReadOnlyInline):
    """The reservations that hold the entry's offer (one per warehouse it came from)."""

    model = Reservation
    fk_name = "waitlist_entry"
    verbose_name_plural = "offer holds"
    fields = ("id", "warehouse", "quantity", "status", "expires_at", "release_reason")
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("warehouse")


@admin.register(WaitlistEntry)
class WaitlistEntryAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "sku",
        "position",
        "quantity",
        "status",
        "warehouse_shown",
        "cart_link",
        "offer_expires_at",
        "offer_time_left",
        "hold_link",
        "created_at",
    )
    list_filter = (
        "status",
        ("offered_at", admin.DateFieldListFilter),
        ("ended_at", admin.DateFieldListFilter),
        ("product", admin.RelatedOnlyFieldListFilter),
        "warehouse",
    )
    search_fields = ("product__sku", "cart__id")
    # Queue order: by sku, then first come first served.
    ordering = ("product__sku", "id")
    list_per_page = 100
    fields = (
        "id",
        "product",
        "warehouse_shown",
        "cart_link",
        "quantity",
        "status",
        "position",
        "offered_at",
        "offer_expires_at",
        "offer_time_left",
        "ended_at",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields
    inlines = [OfferHoldInline]
    actions = ["cancel_entries"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        # ``queue_position`` and ``first_reservation_id`` (annotations, no query per row);
        # product and warehouse joined.
        return waitlist._with_position(super().get_queryset(request))

    @admin.display(description="sku", ordering="product__sku")
    def sku(self, obj: WaitlistEntry) -> str:
        return obj.product.sku

    @admin.display(description="position", ordering="queue_position")
    def position(self, obj: WaitlistEntry) -> int | str:
        """1-based place in the sku's queue while waiting."""
        position = waitlist.position_of(obj)
        return "-" if position is None else position

    @admin.display(description="warehouse", ordering="warehouse__code")
    def warehouse_shown(self, obj: WaitlistEntry) -> str:
        return obj.warehouse.code if obj.warehouse_id else "any"

    @admin.display(description="cart", ordering="cart_id")
    def cart_link(self, obj: WaitlistEntry) -> str:
        return cart_admin_link(obj.cart_id)

    @admin.display(description="offer time left", ordering="offer_expires_at")
    def offer_time_left(self, obj: WaitlistEntry) -> str:
        if obj.status != WaitlistStatus.OFFERED:
            return "-"
        return countdown(obj.offer_expires_at)

    @admin.display(description="offer hold")
    def hold_link(self, obj: WaitlistEntry) -> str:
        first = getattr(obj, "first_reservation_id", None)
        if first is None:
            return "-"
        return admin_link(Reservation(pk=first), f"#{first}")

    @admin.action(
        description="Cancel selected entries (an offered one gives its hold to the next)",
        permissions=["act"],
    )
    def cancel_entries(self, request: HttpRequest, queryset: QuerySet) -> TemplateResponse | None:
        if not action_confirmed(request):
            return confirmation_page(
                self,
                request,
                queryset,
                action="cancel_entries",
                title="Cancel waitlist entries",
                effects=[
                    "take each selected waiting entry out of its queue (the entries behind "
                    "it move up);",
                    "release the hold of each selected offered entry: its units are offered "
                    "to the next entry at once;",
                    "leave entries that have ended (claimed, lapsed, cancelled) as they are.",
                ],
                button="Yes, cancel them",
            )
        actor = staff_actor(request)
        cancelled, failed = 0, []
        for entry_id, cart_id, status in queryset.values_list("id", "cart_id", "status"):
            if status not in OPEN_WAITLIST_STATUSES:
                continue
            try:
                entry = waitlist.leave(cart_id=cart_id, entry_id=entry_id, actor=actor)
            except ApplicationError as exc:  # e.g. a lock wait that timed out
                failed.append(f"#{entry_id}: {exc.message}")
                continue
            cancelled += entry.status == WaitlistStatus.CANCELLED
        self.message_user(request, f"Cancelled {cancelled} entry(ies).", messages.SUCCESS)
        if failed:
            self.message_user(request, "Not cancelled: " + "; ".join(failed), messages.WARNING)
