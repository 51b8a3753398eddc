"""The cart is the quote: it carries every piece of checkout state and a status.

``active → checkout → completed | abandoned`` (an abandoned cart may start checkout again,
and a cancelled checkout goes back to ``active``). Status changes go through
``carts.services.transition_cart`` only.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q


class CartStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    CHECKOUT = "checkout", "In checkout"
    COMPLETED = "completed", "Completed"
    ABANDONED = "abandoned", "Abandoned"


class Cart(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # SHA-256 of the secret shopper token; the token itself is never stored.
    token_hash = models.CharField(max_length=64, db_index=True, editable=False)
    customer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="carts",
    )
    status = models.CharField(max_length=16, choices=CartStatus.choices, default=CartStatus.ACTIVE)
    currency = models.CharField(max_length=3, default="USD")
    # Optional contact address; copied to the order, which can then be looked up with it.
    email = models.EmailField(max_length=254, blank=True, default="")
    shipping_address = models.JSONField(null=True, blank=True)
    billing_address = models.JSONField(null=True, blank=True)
    payment_method = models.CharField(max_length=64, blank=True, default="")
    shipping_method_id = models.CharField(max_length=64, blank=True, default="")
    current_step = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(10)]
    )
    expires_at = models.DateTimeField(null=True, blank=True)
    checkout_started_at = models.DateTimeField(null=True, blank=True)
    extensions_used = models.PositiveIntegerField(default=0)
    completed_at = models.DateTimeField(null=True, blank=True)
    abandoned_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "expires_at"], name="cart_status_expiry"),
            models.Index(fields=["status", "checkout_started_at"], name="cart_status_started"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in CartStatus]), name="cart_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(current_step__gte=1, current_step__lte=10), name="cart_step_range"
            ),
        ]

    def __str__(self) -> str:
        return f"cart {self.id} ({self.status})"


class CartItem(models.Model):
    """One line per product; the price is the product's current price until the order
    copies it."""

    cart = models.ForeignKey(Cart, on_delete=models.CASCADE, related_name="items")
    product = models.ForeignKey("inventory.Product", on_delete=models.PROTECT, related_name="+")
    # The warehouse the line is pinned to; null: any active warehouse may serve it.
    warehouse = models.ForeignKey(
        "inventory.Warehouse", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    quantity = models.PositiveIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(1000)]
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["cart", "product"], name="cart_item_one_line_per_product"
            ),
            models.CheckConstraint(
                condition=Q(quantity__gte=1, quantity__lte=1000), name="cart_item_quantity_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.product_id}"
