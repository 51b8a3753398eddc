"""Staff views of orders with their items, the reservations behind them and payments.

An order's status changes only through ``orders.services`` (the cancel action restocks
confirmed reservations and releases pending ones); the order form is read-only.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import HttpRequest

from core.admin import ReadOnlyAdmin, ReadOnlyInline, admin_link, cart_admin_link, staff_actor
from core.errors import ApplicationError
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
        return super().get_queryset(request).select_related("warehouse", "reservation")

    @admin.display(description="reservation")
    def reservation_link(self, obj: OrderItem) -> str:
        return admin_link(obj.reservation, f"#{obj.reservation_id}" if obj.reservation else None)

    @admin.display(description="reservation status")
    def reservation_status(self, obj: OrderItem) -> str:
        if obj.reservation is None:
            return "-"
        reason = f" ({obj.reservation.release_reason})" if obj.reservation.release_reason else ""
        return f"{obj.reservation.status}{reason}"

    @admin.display(description="confirmed at")
    def reservation_confirmed_at(self, obj: OrderItem) -> object:
        return obj.reservation.confirmed_at if obj.reservation else None


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
