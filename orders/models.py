"""Orders exist only after a payment was captured (no draft orders)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q, QuerySet

from inventory.models import Reservation


class OrderStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    CONFIRMED = "confirmed", "Confirmed"
    PROCESSING = "processing", "Processing"
    SHIPPED = "shipped", "Shipped"
    DELIVERED = "delivered", "Delivered"
    CANCELLED = "cancelled", "Cancelled"


class Order(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    number = models.CharField(max_length=32, unique=True)
    status = models.CharField(
        max_length=16, choices=OrderStatus.choices, default=OrderStatus.PENDING
    )
    # At most one order per cart: the last line of defence against a double confirm.
    cart = models.OneToOneField("carts.Cart", on_delete=models.PROTECT, related_name="order")
    customer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="orders",
    )
    # The shopper's email as given at checkout ("" when none); with the number it finds
    # the order again (``POST orders/lookup/``).
    email = models.EmailField(max_length=254, blank=True, default="")
    currency = models.CharField(max_length=3)
    subtotal = models.DecimalField(max_digits=14, decimal_places=2)
    shipping_total = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    total = models.DecimalField(max_digits=14, decimal_places=2)
    shipping_address = models.JSONField()
    billing_address = models.JSONField(null=True, blank=True)
    payment_method = models.CharField(max_length=64)
    shipping_method_id = models.CharField(max_length=64, blank=True, default="")
    # Confirmation problems (e.g. a reservation that could not be confirmed) for staff.
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "created_at"], name="order_status_created"),
            # Orders of a day whatever their status (admin overview: orders today).
            models.Index(fields=["created_at"], name="order_created"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in OrderStatus]), name="order_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.number


class OrderItem(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="items")
    product = models.ForeignKey("inventory.Product", on_delete=models.PROTECT, related_name="+")
    warehouse = models.ForeignKey("inventory.Warehouse", on_delete=models.PROTECT, related_name="+")
    sku = models.CharField(max_length=64)
    name = models.CharField(max_length=255)
    quantity = models.PositiveIntegerField()
    unit_price = models.DecimalField(max_digits=12, decimal_places=2)
    line_total = models.DecimalField(max_digits=14, decimal_places=2)

    class Meta:
        ordering = ["id"]
        constraints = [
            # A cart has one line per product, so an item's reservations are exactly the
            # order's reservations of its product (``Reservation.order`` is the link).
            models.UniqueConstraint(
                fields=["order", "product"], name="order_item_one_line_per_product"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.sku}"

    @property
    def reservations(self) -> QuerySet[Reservation]:
        """The reservations behind this item: the order's reservations of its product,
        oldest first."""
        return Reservation.objects.filter(
            order_id=self.order_id, product_id=self.product_id
        ).order_by("id")


class OrderEvent(models.Model):
    """The order timeline: one row per staff or system action on an order (status change,
    cancel, refund, note), appended by ``orders.services.record_event`` in the same
    transaction as the action."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(auto_now_add=True)
    actor = models.CharField(max_length=128, blank=True, default="")
    # What happened, e.g. "status:confirmed→processing", "cancelled", "refund", "note".
    action = models.CharField(max_length=64)
    note = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["order", "at"], name="order_event_order_at")]

    def __str__(self) -> str:
        return f"{self.action} by {self.actor or 'system'}"
