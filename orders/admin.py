"""Staff views of orders with their items, the reservations behind them and payments.

An order's status changes only through ``orders.services`` (the cancel action restocks
confirmed reservations and releases pending ones); the order form is read-only.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import HttpRequest
from django.utils.html import format_html_join

from core.admin import ReadOnlyAdmin, ReadOnlyInline, admin_link, cart_admin_link, staff_actor
from core.errors import ApplicationError
from inventory.models import Reservation
from orders.models import Order, OrderItem
from orders.services import cancel_order
from payments.models import Payment


class OrderItemInline(ReadOnlyInline):
    model = OrderItem
    verbose_name_plural = "items and their reservations"
    fields = (
        "sku",
        "name",
        "warehouse",
        "quantity",
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
            obj._reservations = list(obj.reservations)
        return obj._reservations

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
    def reservation_confirmed_at(self, obj: OrderItem) -> object:
        confirmed = [r.confirmed_at for r in self._reservations(obj) if r.confirmed_at]
        return max(confirmed) if confirmed else None


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


@admin.register(Order)
class OrderAdmin(ReadOnlyAdmin):
    list_display = (
        "number",
        "status",
        "total",
        "currency",
        "payment_status",
        "customer",
        "cart_link",
        "created_at",
        "cancelled_at",
    )
    list_filter = ("status", "created_at", "payments__status", "payment_method")
    search_fields = ("number", "cart__id", "customer__email", "payments__payment_id")
    list_select_related = ("customer",)
    date_hierarchy = "created_at"
    fields = (
        "id",
        "number",
        "status",
        "cart_link",
        "customer",
        "currency",
        "subtotal",
        "shipping_total",
        "total",
        "payment_method",
        "shipping_method_id",
        "shipping_address",
        "billing_address",
        "metadata",
        "created_at",
        "updated_at",
        "cancelled_at",
    )
    readonly_fields = fields
    inlines = [OrderItemInline, OrderPaymentInline]
    actions = ["cancel_orders"]

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

    @admin.action(
        description="Cancel selected orders (restock confirmed items, release the rest)",
        permissions=["act"],
    )
    def cancel_orders(self, request: HttpRequest, queryset: QuerySet) -> None:
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
