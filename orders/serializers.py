"""Output shape of an order (API.md "Orders"), shared by the orders API and confirm.

Reads only what ``orders.selectors.orders_for_output`` loaded (an item's
``reservation_id`` is its ``first_reservation_id`` annotation), so serialising an order
(or a page of orders) costs no query whatever the number of lines.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from orders.models import Order
from payments.models import Payment, PaymentStatus


class OrderItemAllocationSerializer(serializers.Serializer):
    warehouse = serializers.CharField(help_text="Warehouse code")
    quantity = serializers.IntegerField()
    reservation_id = serializers.IntegerField()
    strategy = serializers.CharField(
        help_text="What chose the warehouse: `pinned` or the allocation strategy"
    )


class OrderItemOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    product_id = serializers.UUIDField()
    sku = serializers.CharField()
    name = serializers.CharField()
    quantity = serializers.IntegerField()
    unit_price = serializers.DecimalField(max_digits=12, decimal_places=2)
    line_total = serializers.DecimalField(max_digits=14, decimal_places=2)
    warehouse = serializers.CharField(source="warehouse.code")
    # The first (lowest id) reservation of the order for the item's product.
    reservation_id = serializers.IntegerField(source="first_reservation_id", allow_null=True)
    allocations = OrderItemAllocationSerializer(
        many=True, help_text="Where the item was held and taken from, one entry per warehouse"
    )


class OrderPaymentOutputSerializer(serializers.Serializer):
    payment_id = serializers.CharField(help_text="The provider's id of the captured payment.")
    authorization_id = serializers.CharField()
    status = serializers.ChoiceField(
        choices=PaymentStatus.choices,
        help_text="`refund_pending`: the order was cancelled and the refund is being made; "
        "`refunded`: the captured amount was given back.",
    )
    refunded_amount = serializers.DecimalField(
        max_digits=14, decimal_places=2, help_text="How much of the payment was refunded."
    )


class OrderEventOutputSerializer(serializers.Serializer):
    """One entry of the order timeline: {at, actor, action, note}."""

    at = serializers.DateTimeField()
    actor = serializers.CharField()
    action = serializers.CharField(
        help_text="`status:<from>→<to>`, `cancelled`, `refund`, `note`, ..."
    )
    note = serializers.CharField()


class OrderOutputSerializer(serializers.Serializer):
    """order = {id, number, status, cart_id, email, currency, subtotal, total, items,
    shipping_address, billing_address, payment_method, payment, created_at}."""

    id = serializers.UUIDField()
    number = serializers.CharField()
    status = serializers.CharField()
    cart_id = serializers.UUIDField()
    email = serializers.CharField(help_text="The shopper's email from checkout; empty if none")
    currency = serializers.CharField()
    subtotal = serializers.DecimalField(max_digits=14, decimal_places=2)
    total = serializers.DecimalField(max_digits=14, decimal_places=2)
    items = OrderItemOutputSerializer(many=True, source="items.all")
    shipping_address = serializers.JSONField()
    billing_address = serializers.JSONField(allow_null=True)
    payment_method = serializers.CharField()
    payment = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()

    @extend_schema_field(OrderPaymentOutputSerializer(allow_null=True))
    def get_payment(self, order: Order) -> dict[str, str] | None:
        payment = order_payment(order)
        if payment is None:
            return None
        return OrderPaymentOutputSerializer(payment).data


class StaffOrderOutputSerializer(OrderOutputSerializer):
    """The order as staff see it: plus its timeline, ``events: [{at, actor, action,
    note}]``, oldest first (one query, or none when prefetched)."""

    events = OrderEventOutputSerializer(many=True, source="events.all")


def order_output_serializer(*, staff: bool) -> type[OrderOutputSerializer]:
    """The order serializer for the viewer: staff see the timeline, shoppers do not."""
    return StaffOrderOutputSerializer if staff else OrderOutputSerializer


def order_payment(order: Order) -> Payment | None:
    """The payment that paid for the order (the captured one), from prefetched rows."""
    payments = list(order.payments.all())
    captured = [p for p in payments if p.status == PaymentStatus.CAPTURED]
    return (captured or payments or [None])[0]
