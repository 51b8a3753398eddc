"""Staff views of orders with their items, the reservations behind them and payments.

An order's status changes only through ``orders.services`` (the cancel action restocks
confirmed reservations and releases pending ones); the order form is read-only.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.html import format_html_join

from core.admin import (
    ReadOnlyAdmin,
    ReadOnlyInline,
    action_confirmed,
    address_html,
    admin_link,
    cart_admin_link,
    confirmation_page,
    seconds,
    staff_actor,
    titled_filter,
)
from core.errors import ApplicationError
from inventory.admin import held_in
from inventory.models import Reservation
from orders.models import Order, OrderEvent, OrderItem, OrderStatus
from orders.services import TRANSITIONS, add_note, cancel_order, change_order_status
from payments.models import Payment


class OrderItemInline(ReadOnlyInline):
    model = OrderItem
    verbose_name_plural = "items and their reservations"
    fields = (
        "sku",
        "name",
        "warehouse",
        "quantity",
        "allocated",
        "unit_price",
        "line_total",
        "reservation_link",
        "reservation_status",
        "reservation_confirmed_at",
    )
    readonly_fields = fields
    show_change_link = False

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("warehouse")

    @staticmethod
    def _reservations(obj: OrderItem) -> list[Reservation]:
        # The order's reservations of the item's product (Reservation.order is the link);
        # read once per row for the three columns.
        if not hasattr(obj, "_reservations"):
            obj._reservations = list(obj.reservations.select_related("warehouse"))
        return obj._reservations

    @admin.display(description="taken from (strategy)")
    def allocated(self, obj: OrderItem) -> str:
        return held_in(self._reservations(obj))

    @admin.display(description="reservation")
    def reservation_link(self, obj: OrderItem) -> str:
        links = [admin_link(r, f"#{r.id}") for r in self._reservations(obj)]
        return format_html_join(", ", "{}", ((link,) for link in links)) if links else "-"

    @admin.display(description="reservation status")
    def reservation_status(self, obj: OrderItem) -> str:
        statuses = [
            f"{r.status} ({r.release_reason})" if r.release_reason else r.status
            for r in self._reservations(obj)
        ]
        return ", ".join(statuses) or "-"

    @admin.display(description="confirmed at")
    def reservation_confirmed_at(self, obj: OrderItem) -> str:
        confirmed = [r.confirmed_at for r in self._reservations(obj) if r.confirmed_at]
        return seconds(max(confirmed)) if confirmed else "-"


class OrderPaymentInline(ReadOnlyInline):
    model = Payment
    fields = (
        "id",
        "status",
        "method",
        "amount",
        "currency",
        "payment_id",
        "authorization_id",
        "captured_at",
        "needs_attention",
    )
    readonly_fields = fields


class OrderEventInline(ReadOnlyInline):
    """The order timeline: every staff or system action, oldest first."""

    model = OrderEvent
    verbose_name = "timeline entry"
    verbose_name_plural = "timeline"
    fields = ("at", "actor", "action", "note")
    readonly_fields = fields
    show_change_link = False


@admin.register(Order)
class OrderAdmin(ReadOnlyAdmin):
    list_display = (
        "number",
        "status",
        "total",
        "currency",
        "payment_status",
        "email",
        "customer",
        "cart_link",
        "created_at",
        "cancelled_at",
    )
    list_filter = (
        ("status", titled_filter("order status")),
        "created_at",
        ("payments__status", titled_filter("payment status")),
        "payment_method",
    )
    # A shopper is found by the email given at checkout, the name on the delivery address
    # (a key of the JSON address), the order number or a product's sku.
    search_fields = (
        "number",
        "email",
        "shipping_address__name__icontains",
        "items__sku",
        "cart__id",
        "customer__email",
        "payments__payment_id",
    )
    list_select_related = ("customer",)
    date_hierarchy = "created_at"
    fields = (
        "id",
        "number",
        "status",
        "cart_link",
        "customer",
        "email",
        "currency",
        "subtotal",
        "shipping_total",
        "total",
        "payment_method",
        "shipping_method_id",
        "shipping_address_display",
        "billing_address_display",
        "metadata",
        "created_at",
        "updated_at",
        "cancelled_at",
    )
    readonly_fields = fields
    inlines = [OrderItemInline, OrderPaymentInline, OrderEventInline]
    actions = [
        "mark_confirmed",
        "mark_processing",
        "mark_shipped",
        "mark_delivered",
        "add_note",
        "cancel_orders",
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        latest_payment = Payment.objects.filter(order_id=OuterRef("id")).order_by("-created_at")
        return (
            super()
            .get_queryset(request)
            .annotate(latest_payment_status=Subquery(latest_payment.values("status")[:1]))
        )

    @admin.display(description="payment", ordering="latest_payment_status")
    def payment_status(self, obj: Order) -> str:
        return obj.latest_payment_status or "-"

    @admin.display(description="cart")
    def cart_link(self, obj: Order) -> str:
        return cart_admin_link(obj.cart_id)

    @admin.display(description="shipping address")
    def shipping_address_display(self, obj: Order) -> str:
        return address_html(obj.shipping_address)

    @admin.display(description="billing address")
    def billing_address_display(self, obj: Order) -> str:
        return address_html(obj.billing_address) if obj.billing_address else "same as shipping"

    def _move(
        self, request: HttpRequest, queryset: QuerySet, status: str, action: str
    ) -> TemplateResponse | None:
        """Moves the selected orders to ``status`` (``change_order_status``, which records
        it in each order's timeline) after a page that lists them and takes a note."""
        sources = sorted(s for s, targets in TRANSITIONS.items() if status in targets)
        if not action_confirmed(request):
            return confirmation_page(
                self,
                request,
                queryset.order_by("number"),
                action=action,
                title=f"Move orders to {status}",
                effects=[
                    f"move each selected order that is {' or '.join(sources)} to {status} "
                    "and record it in the order's timeline, with the note below;",
                    "leave every other order as it is (listed as not moved).",
                    *(
                        ["retry confirming any reservation whose confirmation had failed."]
                        if status == OrderStatus.CONFIRMED
                        else []
                    ),
                ],
                objects=[f"{o.number} ({o.status})" for o in queryset.order_by("number")],
                note="Note for the timeline (optional)",
                button=f"Move to {status}",
                destructive=False,
            )
        note = request.POST.get("note", "").strip()
        done, failed = [], []
        for order_id, number in queryset.order_by("number").values_list("id", "number"):
            try:
                change_order_status(
                    order_id=order_id, status=status, actor=staff_actor(request), note=note
                )
                done.append(number)
            except ApplicationError as exc:
                failed.append(f"{number}: {exc.message}")
        if done:
            self.message_user(
                request,
                f"Moved {len(done)} order(s) to {status}: {', '.join(done)}.",
                messages.SUCCESS,
            )
        if failed:
            self.message_user(request, "Not moved: " + "; ".join(failed), messages.ERROR)
        return None

    @admin.action(description="Move selected orders to confirmed", permissions=["act"])
    def mark_confirmed(self, request: HttpRequest, queryset: QuerySet) -> TemplateResponse | None:
        return self._move(request, queryset, OrderStatus.CONFIRMED, "mark_confirmed")

    @admin.action(description="Move selected orders to processing", permissions=["act"])
    def mark_processing(self, request: HttpRequest, queryset: QuerySet) -> TemplateResponse | None:
        return self._move(request, queryset, OrderStatus.PROCESSING, "mark_processing")

    @admin.action(description="Move selected orders to shipped", permissions=["act"])
    def mark_shipped(self, request: HttpRequest, queryset: QuerySet) -> TemplateResponse | None:
        return self._move(request, queryset, OrderStatus.SHIPPED, "mark_shipped")

    @admin.action(description="Move selected orders to delivered", permissions=["act"])
    def mark_delivered(self, request: HttpRequest, queryset: QuerySet) -> TemplateResponse | None:
        return self._move(request, queryset, OrderStatus.DELIVERED, "mark_delivered")

    @admin.action(description="Add a note to the selected orders' timeline", permissions=["act"])
    def add_note(self, request: HttpRequest, queryset: QuerySet) -> TemplateResponse | None:
        note = request.POST.get("note", "").strip()
        if not action_confirmed(request) or not note:
            if action_confirmed(request):
                self.message_user(request, "A note cannot be empty.", messages.ERROR)
            return confirmation_page(
                self,
                request,
                queryset.order_by("number"),
                action="add_note",
                title="Add a note",
                effects=["add the note below to the timeline of each selected order."],
                note="Note",
                button="Add note",
                destructive=False,
            )
        numbers = []
        for order_id, number in queryset.order_by("number").values_list("id", "number"):
            add_note(order_id=order_id, actor=staff_actor(request), note=note)
            numbers.append(number)
        self.message_user(
            request,
            f"Added the note to {len(numbers)} order(s): {', '.join(numbers)}.",
            messages.SUCCESS,
        )
        return None

    @admin.action(
        description="Cancel selected orders (restock confirmed items, release the rest)",
        permissions=["act"],
    )
    def cancel_orders(self, request: HttpRequest, queryset: QuerySet) -> TemplateResponse | None:
        if not action_confirmed(request):
            cancellable = sorted(
                s for s, targets in TRANSITIONS.items() if OrderStatus.CANCELLED in targets
            )
            return confirmation_page(
                self,
                request,
                queryset.order_by("number"),
                action="cancel_orders",
                title="Cancel orders",
                effects=[
                    f"cancel each selected order that is {', '.join(cancellable)} (others are "
                    "left as they are and listed as not cancelled);",
                    "put the stock of its confirmed items back on hand and release its "
                    "pending reservations;",
                    "refund its captured payment, if any;",
                    "record the cancel in the order's timeline. This cannot be undone.",
                ],
                objects=[
                    f"{o.number} ({o.status}, {o.total} {o.currency})"
                    for o in queryset.order_by("number")
                ],
                button="Yes, cancel these orders",
            )
        done, failed = [], []
        for order_id, number in queryset.order_by("number").values_list("id", "number"):
            try:
                cancel_order(order_id=order_id, actor=staff_actor(request), by_staff=True)
                done.append(number)
            except ApplicationError as exc:
                failed.append(f"{number}: {exc.message}")
        if done:
            self.message_user(
                request, f"Cancelled {len(done)} order(s): {', '.join(done)}.", messages.SUCCESS
            )
        if failed:
            self.message_user(request, "Not cancelled: " + "; ".join(failed), messages.ERROR)
