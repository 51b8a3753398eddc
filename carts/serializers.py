"""Output shapes of a cart (API.md "Carts"), shared by the cart, checkout, confirm and
storefront code, and of its waitlist entries (API.md "Waitlists"). Money is rendered as
strings with two decimals ("12.50").

The serializers read only what is already loaded: pass a cart fetched with
``carts.selectors.cart_with_items`` (items with their product and warehouse prefetched),
so serialising costs no query whatever the number of lines.
"""

from __future__ import annotations

from decimal import Decimal

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from carts.models import Cart, CartItem
from inventory.models import WaitlistEntry
from inventory.waitlist import position_of

CENTS = Decimal("0.01")
# Money is a decimal string such as "12.50" (API.md), described as such in the schema.
MONEY = serializers.DecimalField(max_digits=14, decimal_places=2)


def line_total(item: CartItem) -> Decimal:
    return (item.product.price * item.quantity).quantize(CENTS)


def cart_subtotal(cart: Cart) -> Decimal:
    return sum((line_total(item) for item in cart.items.all()), Decimal("0.00")).quantize(CENTS)


class CartItemOutputSerializer(serializers.Serializer):
    class Meta:
        ref_name = "CartItem"

    id = serializers.IntegerField()
    product_id = serializers.UUIDField()
    sku = serializers.CharField(source="product.sku")
    name = serializers.CharField(source="product.name")
    quantity = serializers.IntegerField()
    unit_price = serializers.DecimalField(source="product.price", max_digits=12, decimal_places=2)
    line_total = serializers.SerializerMethodField()
    warehouse = serializers.CharField(
        source="warehouse.code",
        allow_null=True,
        help_text="The warehouse the line is pinned to; null: any active warehouse may serve it",
    )

    @extend_schema_field(MONEY)
    def get_line_total(self, item: CartItem) -> str:
        return f"{line_total(item):.2f}"


class CartOutputSerializer(serializers.Serializer):
    """cart = {id, status, currency, items, subtotal, expires_at, created_at, updated_at}."""

    class Meta:
        ref_name = "Cart"

    id = serializers.UUIDField()
    status = serializers.CharField()
    currency = serializers.CharField()
    items = CartItemOutputSerializer(many=True, source="items.all")
    subtotal = serializers.SerializerMethodField()
    expires_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    @extend_schema_field(MONEY)
    def get_subtotal(self, cart: Cart) -> str:
        return f"{cart_subtotal(cart):.2f}"


class CartCreatedOutputSerializer(CartOutputSerializer):
    """The answer of ``POST carts/``: the cart plus its secret ``token``, shown only here.
    Pass the token in the serializer context: ``context={"token": token}``."""

    class Meta:
        ref_name = "CartCreated"

    token = serializers.SerializerMethodField()

    @extend_schema_field(OpenApiTypes.STR)
    def get_token(self, cart: Cart) -> str:
        return self.context["token"]


class WaitlistEntryOutputSerializer(serializers.Serializer):
    """entry = {id, product_id, sku, warehouse, quantity, status, position,
    offer_expires_at, reservation_id, created_at}: a cart waiting for units of a product."""

    # Serialises entries of ``inventory.waitlist.entries_for_cart`` / ``entry_for_cart``
    # (product and warehouse loaded, ``queue_position`` and ``first_reservation_id``
    # annotated) without a query.

    class Meta:
        ref_name = "WaitlistEntry"

    id = serializers.IntegerField()
    product_id = serializers.UUIDField()
    sku = serializers.CharField(source="product.sku")
    warehouse = serializers.CharField(
        source="warehouse.code",
        allow_null=True,
        help_text="The warehouse the offer must come from; null: any active warehouse",
    )
    quantity = serializers.IntegerField()
    status = serializers.ChoiceField(
        choices=["waiting", "offered", "claimed", "expired", "cancelled"],
        help_text="waiting: in the queue; offered: the units are held for the cart until "
        "offer_expires_at; claimed: checkout started with the offer; expired: the offer "
        "lapsed; cancelled: the shopper left, or the cart could not take the offer",
    )
    position = serializers.SerializerMethodField()
    offer_expires_at = serializers.DateTimeField(allow_null=True)
    reservation_id = serializers.IntegerField(
        source="first_reservation_id",
        allow_null=True,
        help_text="The offer's hold (its first reservation when it is split over "
        "warehouses); null before an offer",
    )
    created_at = serializers.DateTimeField()

    @extend_schema_field(
        serializers.IntegerField(
            allow_null=True,
            min_value=1,
            help_text="1-based place among the product's waiting entries; null unless waiting",
        )
    )
    def get_position(self, entry: WaitlistEntry) -> int | None:
        return position_of(entry)


class WaitlistOutputSerializer(serializers.Serializer):
    class Meta:
        ref_name = "Waitlist"

    entries = WaitlistEntryOutputSerializer(many=True)
