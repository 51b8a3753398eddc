"""Payments: every gateway step of one payment attempt for a cart.

The rules about which payments still hold a cart ("in flight", "captured without an
order") are stated once, as ``PaymentQuerySet`` methods; the confirm flow, the sweepers,
the admin and the metrics all call them.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class PaymentStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    AUTHORIZED = "authorized", "Authorized"
    CAPTURED = "captured", "Captured"
    VOIDED = "voided", "Voided"
    FAILED = "failed", "Failed"
    REFUNDED = "refunded", "Refunded"
    # The order was cancelled; the refund is owed and not yet confirmed by the gateway.
    REFUND_PENDING = "refund_pending", "Refund pending"


IN_FLIGHT_STATUSES = (PaymentStatus.PENDING, PaymentStatus.AUTHORIZED)


def in_flight_window() -> timedelta:
    """How long a ``pending``/``authorized`` payment counts as in flight
    (``PAYMENT_IN_FLIGHT_TIMEOUT_SECONDS``, longer than any request can live). An older
    one was interrupted: the next confirm of its cart, the reconcile job or staff ask the
    gateway for its real state and resolve it."""
    return timedelta(seconds=settings.PAYMENT_IN_FLIGHT_TIMEOUT_SECONDS)


def captured_without_order_q() -> Q:
    """Money taken, order not written yet, as a condition (for aggregates)."""
    return Q(status=PaymentStatus.CAPTURED, order__isnull=True)


_captured_without_order = captured_without_order_q


def _in_flight(now: datetime) -> Q:
    return Q(
        status__in=IN_FLIGHT_STATUSES,
        needs_attention=False,
        created_at__gte=now - in_flight_window(),
    )


class PaymentQuerySet(models.QuerySet):
    def captured_without_order(self) -> PaymentQuerySet:
        """Money taken, order not written yet (reconciliation's work, or staff's when
        flagged)."""
        return self.filter(_captured_without_order())

    def in_flight(self, *, now: datetime | None = None) -> PaymentQuerySet:
        """A confirm is paying right now: ``pending``/``authorized``, not flagged, younger
        than the in-flight window."""
        return self.filter(_in_flight(now or timezone.now()))

    def stale_in_flight(self, *, now: datetime | None = None) -> PaymentQuerySet:
        """Left ``pending``/``authorized`` past the in-flight window by an interrupted
        confirm, not yet flagged."""
        now = now or timezone.now()
        return self.filter(
            status__in=IN_FLIGHT_STATUSES,
            needs_attention=False,
            created_at__lt=now - in_flight_window(),
        )

    def refunds_due(self, *, now: datetime | None = None) -> PaymentQuerySet:
        """Refunds owed whose next attempt is due (the reconcile job's work): status
        ``refund_pending``, not flagged for staff."""
        return self.filter(
            status=PaymentStatus.REFUND_PENDING,
            needs_attention=False,
            refund_next_attempt_at__lte=now or timezone.now(),
        )

    def holding_cart(self, *, now: datetime | None = None) -> PaymentQuerySet:
        """Payments that still need their cart's reservations: in flight, or captured
        without an order. No cleanup job and no staff action may end such a checkout."""
        return self.filter(_captured_without_order() | _in_flight(now or timezone.now()))


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
    # Refund of a cancelled order (SPEC §13): one refund of the captured amount, under
    # ``refund_key`` at the gateway; each attempt is counted before the gateway is called.
    refunded_amount = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    refund_key = models.CharField(max_length=128, blank=True, default="")
    refund_id = models.CharField(max_length=128, blank=True, default="")
    refund_attempts = models.PositiveIntegerField(default=0)
    refund_requested_at = models.DateTimeField(null=True, blank=True)
    refund_next_attempt_at = models.DateTimeField(null=True, blank=True)
    refunded_at = models.DateTimeField(null=True, blank=True)
    # When an interrupted in-flight payment was resolved from the gateway's answer.
    resolved_at = models.DateTimeField(null=True, blank=True)

    objects = PaymentQuerySet.as_manager()

    class Meta:
        db_table = "payments_payment"
        ordering = ["-created_at"]
        indexes = [
            models.Index(
                fields=["created_at"],
                condition=Q(status="captured", order__isnull=True),
                name="payment_captured_no_order",
            ),
            models.Index(
                fields=["refund_next_attempt_at"],
                condition=Q(status="refund_pending"),
                name="payment_refund_pending",
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
