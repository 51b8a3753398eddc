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


class OrderPaymentOutputSerializer(serializers.Serializer):
    payment_id = serializers.CharField(help_text="The provider's id of the captured payment.")
    authorization_id = serializers.CharField()
    status = serializers.ChoiceField(choices=PaymentStatus.choices)


class OrderOutputSerializer(serializers.Serializer):
    """order = {id, number, status, cart_id, currency, subtotal, total, items,
    shipping_address, billing_address, payment_method, payment, created_at}."""

    id = serializers.UUIDField()
    number = serializers.CharField()
    status = serializers.CharField()
    cart_id = serializers.UUIDField()
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


def order_payment(order: Order) -> Payment | None:
    """The payment that paid for the order (the captured one), from prefetched rows."""
    payments = list(order.payments.all())
    captured = [p for p in payments if p.status == PaymentStatus.CAPTURED]
    return (captured or payments or [None])[0]
