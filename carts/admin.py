"""Staff views of carts (the quotes) with their items, reservations and payments.

A cart's status changes only through the checkout services (``cancel_checkout``,
``abandon_checkout``), which the actions call; the cart form itself is read-only.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from carts.models import Cart, CartItem, CartStatus
from checkout.confirm import IN_FLIGHT, in_flight_window
from checkout.models import Payment, PaymentStatus
from checkout.services import abandon_checkout, cancel_checkout
from config.exceptions import ApplicationError
from inventory.admin import LapsedFilter, ReadOnlyAdmin, ReadOnlyInline, admin_link, staff_actor
from inventory.models import Reservation

# Label of carts_abandoned_total and of the cart status log line for staff abandons.
STAFF_ABANDON_REASON = "staff"


class CartItemInline(ReadOnlyInline):
    model = CartItem
    fields = ("product", "sku", "warehouse", "quantity", "unit_price", "created_at")
    readonly_fields = fields
    show_change_link = False

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("product", "warehouse")

    @admin.display(description="sku")
    def sku(self, obj: CartItem) -> str:
        return obj.product.sku

    @admin.display(description="unit price")
    def unit_price(self, obj: CartItem) -> str:
        return f"{obj.product.price} {obj.product.currency}"


class CartReservationInline(ReadOnlyInline):
    model = Reservation
    fk_name = "cart"
    fields = (
        "id",
        "product",
        "warehouse",
        "quantity",
        "status",
        "expires_at",
        "extension_count",
        "order",
        "release_reason",
    )
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("product", "warehouse", "order")


class CartPaymentInline(ReadOnlyInline):
    model = Payment
    fields = ("id", "status", "method", "amount", "currency", "order", "needs_attention")
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("order")


class CartExpiredFilter(LapsedFilter):
    title = "expired (reservations lapsed)"


@admin.register(Cart)
class CartAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "status",
        "item_count",
        "expires_at",
        "lapsed",
        "checkout_started_at",
        "extensions_used",
        "customer",
        "created_at",
        "updated_at",
    )
    list_filter = ("status", CartExpiredFilter, "checkout_started_at", "created_at")
    search_fields = ("id", "customer__username", "customer__email", "order__number")
    list_select_related = ("customer",)
    date_hierarchy = "created_at"
    fields = (
        "id",
        "status",
        "customer",
        "currency",
        "current_step",
        "expires_at",
        "checkout_started_at",
        "extensions_used",
        "completed_at",
        "abandoned_at",
        "order_link",
        "payment_method",
        "shipping_method_id",
        "shipping_address",
        "billing_address",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields
    inlines = [CartItemInline, CartReservationInline, CartPaymentInline]
    actions = ["cancel_checkout", "abandon_checkout"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).annotate(lines=Count("items", distinct=True))

    @admin.display(description="lines", ordering="lines")
    def item_count(self, obj: Cart) -> int:
        return obj.lines

    @admin.display(description="lapsed", boolean=True)
    def lapsed(self, obj: Cart) -> bool | None:
        if obj.expires_at is None:
            return None
        return obj.expires_at <= timezone.now()

    @admin.display(description="order")
    def order_link(self, obj: Cart) -> str:
        order = getattr(obj, "order", None)
        return admin_link(order, order.number if order else None)

    def _in_checkout_not_paying(self, queryset: QuerySet) -> tuple[list, int]:
        """The selected carts in checkout that no confirm or reconciliation is using (a
        payment in flight, or captured without an order yet), and how many were left."""
        since = timezone.now() - in_flight_window()
        paying = Payment.objects.filter(cart_id=OuterRef("id")).filter(
            Q(status=PaymentStatus.CAPTURED, order__isnull=True)
            | Q(
                status__in=IN_FLIGHT,
                needs_attention=False,
                created_at__gte=since,
            )
        )
        rows = list(
            queryset.order_by()
            .annotate(paying=Exists(paying))
            .values_list("id", "status", "paying")
        )
        due = [pk for pk, status, busy in rows if status == CartStatus.CHECKOUT and not busy]
        return due, len(rows) - len(due)

    @admin.action(
        description="Cancel checkout (release reservations, cart back to active)",
        permissions=["act"],
    )
    def cancel_checkout(self, request: HttpRequest, queryset: QuerySet) -> None:
        due, left = self._in_checkout_not_paying(queryset)
        done, failed = 0, []
        for cart_id in due:
            try:
                cancel_checkout(cart_id=cart_id, actor=staff_actor(request))
                done += 1
            except ApplicationError as exc:
                failed.append(f"{str(cart_id)[:8]}: {exc.message}")
        self._report(request, "Cancelled the checkout of", done, left, failed)

    @admin.action(
        description="Abandon checkout (release reservations, cart abandoned)",
        permissions=["act"],
    )
    def abandon_checkout(self, request: HttpRequest, queryset: QuerySet) -> None:
        due, left = self._in_checkout_not_paying(queryset)
        done, failed = 0, []
        for cart_id in due:
            try:
                if abandon_checkout(
                    cart_id=cart_id, reason=STAFF_ABANDON_REASON, actor=staff_actor(request)
                ):
                    done += 1
                else:
                    left += 1
            except ApplicationError as exc:
                failed.append(f"{str(cart_id)[:8]}: {exc.message}")
        self._report(request, "Abandoned", done, left, failed)

    def _report(
        self, request: HttpRequest, verb: str, done: int, left: int, failed: list[str]
    ) -> None:
        self.message_user(request, f"{verb} {done} cart(s).", messages.SUCCESS)
        if left:
            self.message_user(
                request,
                f"Left {left} cart(s) alone: not in checkout, or a payment is in flight or "
                "captured without an order (reconciliation needs its reservations).",
                messages.WARNING,
            )
        if failed:
            self.message_user(request, "Failed: " + "; ".join(failed), messages.ERROR)
