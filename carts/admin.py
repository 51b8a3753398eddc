"""Staff views of carts (the quotes) with their items, reservations and payments.

A cart's status changes only through the checkout services (``cancel_checkout``,
``abandon_checkout``); ``checkout.admin`` registers this admin with the actions that call
them. The cart form itself is read-only.
"""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from carts.models import Cart, CartItem, CartStatus
from core.admin import (
    LapsedFilter,
    ReadOnlyAdmin,
    ReadOnlyInline,
    address_html,
    admin_link,
    countdown,
)
from inventory.admin import held_in
from inventory.models import Reservation, ReservationStatus
from payments.models import Payment


class CartItemInline(ReadOnlyInline):
    model = CartItem
    fields = ("product", "sku", "pinned_to", "quantity", "held", "unit_price", "created_at")
    readonly_fields = fields
    show_change_link = False

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("product", "warehouse", "cart")

    @admin.display(description="warehouse")
    def pinned_to(self, obj: CartItem) -> str:
        return obj.warehouse.code if obj.warehouse else "any active"

    @admin.display(description="held in (strategy)")
    def held(self, obj: CartItem) -> str:
        # A cart has one line per product: the line's holds are the cart's pending
        # reservations of its product, one per warehouse it was allocated to.
        return held_in(
            Reservation.objects.filter(
                cart_id=obj.cart_id, product_id=obj.product_id, status=ReservationStatus.PENDING
            )
            .select_related("warehouse")
            .order_by("id")
        )

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
        "allocation_strategy",
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


class CartAdmin(ReadOnlyAdmin):
    """Registered by ``checkout.admin`` with the checkout actions (cancel, abandon), which
    call checkout services this layer cannot import."""

    list_display = (
        "id",
        "status",
        "item_count",
        "expires_at",
        "time_left",
        "checkout_started_at",
        "extensions_used",
        "customer",
        "email",
        "created_at",
        "updated_at",
    )
    list_filter = ("status", CartExpiredFilter, "checkout_started_at", "created_at")
    # A shopper is found by the email given at checkout, the name on the delivery address
    # (a key of the JSON address), the order number or a product's sku.
    search_fields = (
        "id",
        "email",
        "shipping_address__name__icontains",
        "customer__username",
        "customer__email",
        "order__number",
        "items__product__sku",
    )
    list_select_related = ("customer",)
    date_hierarchy = "created_at"
    fields = (
        "id",
        "status",
        "customer",
        "email",
        "currency",
        "current_step",
        "expires_at",
        "time_left",
        "checkout_started_at",
        "extensions_used",
        "completed_at",
        "abandoned_at",
        "order_link",
        "payment_method",
        "shipping_method_id",
        "shipping_address_display",
        "billing_address_display",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields
    inlines = [CartItemInline, CartReservationInline, CartPaymentInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).annotate(lines=Count("items", distinct=True))

    @admin.display(description="lines", ordering="lines")
    def item_count(self, obj: Cart) -> int:
        return obj.lines

    @admin.display(description="time left", ordering="expires_at")
    def time_left(self, obj: Cart) -> str:
        """The checkout's countdown (its holds' expiry) while in checkout."""
        if obj.status != CartStatus.CHECKOUT:
            return "-"
        return countdown(obj.expires_at)

    @admin.display(description="shipping address")
    def shipping_address_display(self, obj: Cart) -> str:
        return address_html(obj.shipping_address)

    @admin.display(description="billing address")
    def billing_address_display(self, obj: Cart) -> str:
        return address_html(obj.billing_address)

    @admin.display(description="order")
    def order_link(self, obj: Cart) -> str:
        order = getattr(obj, "order", None)
        return admin_link(order, order.number if order else None)
