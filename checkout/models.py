"""Payments and idempotency records of the checkout flow."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q


class PaymentStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    AUTHORIZED = "authorized", "Authorized"
    CAPTURED = "captured", "Captured"
    VOIDED = "voided", "Voided"
    FAILED = "failed", "Failed"
    REFUNDED = "refunded", "Refunded"


class Payment(models.Model):
    """Every gateway step of one payment attempt for a cart.

    A ``captured`` payment with no order is the recovery record: money was taken, the
    order still has to be written (reconciliation does it, or flags it for staff).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    cart = models.ForeignKey("carts.Cart", on_delete=models.PROTECT, related_name="payments")
    order = models.ForeignKey(
        "orders.Order", null=True, blank=True, on_delete=models.PROTECT, related_name="payments"
    )
    idempotency_key = models.CharField(max_length=255, blank=True, default="")
    gateway = models.CharField(max_length=64)
    method = models.CharField(max_length=64)
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    currency = models.CharField(max_length=3)
    status = models.CharField(
        max_length=16, choices=PaymentStatus.choices, default=PaymentStatus.PENDING
    )
    authorization_id = models.CharField(max_length=128, blank=True, default="")
    payment_id = models.CharField(max_length=128, blank=True, default="")
    attempts = models.PositiveIntegerField(default=0)
    error_code = models.CharField(max_length=64, blank=True, default="")
    error_message = models.TextField(blank=True, default="")
    needs_attention = models.BooleanField(default=False)
    attention_reason = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    authorized_at = models.DateTimeField(null=True, blank=True)
    captured_at = models.DateTimeField(null=True, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(
                fields=["created_at"],
                condition=Q(status="captured", order__isnull=True),
                name="payment_captured_no_order",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in PaymentStatus]),
                name="payment_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"payment {self.id} ({self.status})"


class IdempotencyKey(models.Model):
    """An ``Idempotency-Key`` used on a cart's confirm: the same key replays the same
    answer; the same key with a different request is refused."""

    cart = models.ForeignKey(
        "carts.Cart", on_delete=models.CASCADE, related_name="idempotency_keys"
    )
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    order = models.ForeignKey(
        "orders.Order", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["cart", "key"], name="idempotency_key_unique_per_cart"),
        ]

    def __str__(self) -> str:
        return f"{self.cart_id}:{self.key}"
