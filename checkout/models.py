"""Idempotency records of the checkout's confirm."""

from __future__ import annotations

from django.db import models


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
