"""Output serializers shared by several inventory views (API.md "Catalog and stock" and
"Reservations"). They read only what the selectors loaded: no queries of their own."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from inventory.models import ReleaseReason, ReservationStatus
from inventory.stock import stock_status

STOCK_STATUS_CHOICES = [
    ("in_stock", "In stock"),
    ("low_stock", "Low stock"),
    ("out_of_stock", "Out of stock"),
]

_STOCK_STATUS_HELP = (
    "in_stock · low_stock (0 < available < LOW_STOCK_THRESHOLD) · out_of_stock (available <= 0)"
)


class ProductSerializer(serializers.Serializer):
    """A product with ``available`` summed over every warehouse (needs the selectors'
    ``available`` annotation)."""

    id = serializers.UUIDField()
    sku = serializers.CharField()
    name = serializers.CharField()
    price = serializers.DecimalField(max_digits=12, decimal_places=2, help_text='e.g. "12.50"')
    currency = serializers.CharField(help_text="ISO 4217 code, e.g. USD")
    available = serializers.IntegerField(
        help_text="Sum over all active warehouses of on_hand - reserved."
    )
    stock_status = serializers.SerializerMethodField(help_text=_STOCK_STATUS_HELP)
    max_per_order = serializers.IntegerField(
        allow_null=True, help_text="Most units of this product in one cart line; null: no limit"
    )
    max_per_customer = serializers.IntegerField(
        allow_null=True,
        help_text="Most units one logged-in customer may order or hold within "
        "PURCHASE_LIMIT_WINDOW_SECONDS; null: no limit",
    )

    class Meta:
        ref_name = "Product"

    @extend_schema_field(serializers.ChoiceField(choices=STOCK_STATUS_CHOICES))
    def get_stock_status(self, product) -> str:
        return stock_status(product.available)


class WarehouseSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    code = serializers.CharField()
    name = serializers.CharField()
    is_default = serializers.BooleanField()
    priority = serializers.IntegerField(
        help_text="Allocation order of lines that name no warehouse: lower first"
    )
    is_active = serializers.BooleanField(
        help_text="false: takes no new allocations; its existing holds run their course"
    )

    class Meta:
        ref_name = "Warehouse"


class StockLevelSerializer(serializers.Serializer):
    """A StockLevel row with product and warehouse loaded."""

    sku = serializers.CharField(source="product.sku")
    product_id = serializers.UUIDField()
    warehouse = serializers.CharField(source="warehouse.code", help_text="Warehouse code.")
    on_hand = serializers.IntegerField()
    reserved = serializers.IntegerField()
    available = serializers.IntegerField(help_text="on_hand - reserved")
    status = serializers.SerializerMethodField(help_text=_STOCK_STATUS_HELP)

    class Meta:
        ref_name = "StockLevel"

    @extend_schema_field(serializers.ChoiceField(choices=STOCK_STATUS_CHOICES))
    def get_status(self, row) -> str:
        return stock_status(row.available)


class StockAvailabilitySerializer(serializers.Serializer):
    """One ``inventory.selectors.StockAvailability``."""

    product_id = serializers.UUIDField()
    sku = serializers.CharField()
    warehouse = serializers.CharField(help_text="Warehouse code.")
    on_hand = serializers.IntegerField()
    reserved = serializers.IntegerField()
    available = serializers.IntegerField(help_text="on_hand - reserved")
    status = serializers.ChoiceField(choices=STOCK_STATUS_CHOICES, help_text=_STOCK_STATUS_HELP)

    class Meta:
        ref_name = "StockAvailability"


class ReservationSerializer(serializers.Serializer):
    """A reservation with product and warehouse loaded."""

    id = serializers.IntegerField()
    product_id = serializers.UUIDField()
    sku = serializers.CharField(source="product.sku")
    warehouse = serializers.CharField(source="warehouse.code", help_text="Warehouse code.")
    quantity = serializers.IntegerField()
    status = serializers.ChoiceField(choices=ReservationStatus.choices)
    expires_at = serializers.DateTimeField()
    extension_count = serializers.IntegerField()
    cart_id = serializers.UUIDField(allow_null=True)
    order_id = serializers.UUIDField(allow_null=True)
    created_at = serializers.DateTimeField()
    confirmed_at = serializers.DateTimeField(allow_null=True)
    released_at = serializers.DateTimeField(allow_null=True)
    release_reason = serializers.CharField(
        allow_null=True,
        help_text=(
            f"Why it was released: an internal code ({', '.join(ReleaseReason.values)}) "
            "or the free text given to the release endpoint; null unless status is released."
        ),
    )

    class Meta:
        ref_name = "Reservation"

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["release_reason"] = instance.release_reason or None
        return data
