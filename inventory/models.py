"""Catalog, warehouses, stock levels and reservations.

Stock numbers (``StockLevel.on_hand`` / ``reserved``) and reservation statuses change
only through ``inventory.services``; the database refuses any state that breaks
``0 <= reserved <= on_hand``.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import F, Q


class Product(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    sku = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=255)
    price = models.DecimalField(
        max_digits=12, decimal_places=2, validators=[MinValueValidator(Decimal("0"))]
    )
    currency = models.CharField(max_length=3, default="USD")
    # Purchase limits (SPEC §15): units of this product in one cart line, and per
    # logged-in customer over PURCHASE_LIMIT_WINDOW_SECONDS; null: no limit.
    max_per_order = models.PositiveIntegerField(null=True, blank=True)
    max_per_customer = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["sku"]
        constraints = [
            models.CheckConstraint(condition=Q(price__gte=0), name="product_price_not_negative"),
            models.CheckConstraint(
                condition=Q(max_per_order__isnull=True) | Q(max_per_order__gte=1),
                name="product_max_per_order_positive",
            ),
            models.CheckConstraint(
                condition=Q(max_per_customer__isnull=True) | Q(max_per_customer__gte=1),
                name="product_max_per_customer_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.sku} — {self.name}"


class Warehouse(models.Model):
    code = models.SlugField(max_length=32, unique=True)
    name = models.CharField(max_length=255)
    is_default = models.BooleanField(default=False)
    # Allocation order of lines that any warehouse may serve: lower first (SPEC §14).
    priority = models.IntegerField(default=0, db_default=0)
    # An inactive warehouse takes no new allocations; its existing holds run their course.
    is_active = models.BooleanField(default=True, db_default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"],
                condition=Q(is_default=True),
                name="one_default_warehouse",
            ),
        ]

    def __str__(self) -> str:
        return self.code


class StockLevel(models.Model):
    """One product in one warehouse. ``available = on_hand - reserved``."""

    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="stock_levels")
    warehouse = models.ForeignKey(Warehouse, on_delete=models.PROTECT, related_name="stock_levels")
    on_hand = models.IntegerField(default=0)
    reserved = models.IntegerField(default=0)
    # Units wanted by the product's waiting waitlist entries (SPEC §15): the same number on
    # every stock row of the product, written only with all of them locked, so that
    # whoever locks any one of them reads it current. Withheld from everyone else.
    waitlisted = models.IntegerField(default=0, db_default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["product", "warehouse"], name="stock_level_unique"),
            models.CheckConstraint(condition=Q(on_hand__gte=0), name="stock_on_hand_not_negative"),
            models.CheckConstraint(
                condition=Q(reserved__gte=0), name="stock_reserved_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(reserved__lte=F("on_hand")), name="stock_reserved_within_on_hand"
            ),
            models.CheckConstraint(
                condition=Q(waitlisted__gte=0), name="stock_waitlisted_not_negative"
            ),
        ]

    def __str__(self) -> str:
        # "MUG @ default": load product and warehouse with the row where it is listed.
        return f"{self.product.sku} @ {self.warehouse.code}"

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


class ReservationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    CONFIRMED = "confirmed", "Confirmed"
    RELEASED = "released", "Released"
    EXPIRED = "expired", "Expired"


class ReleaseReason(models.TextChoices):
    CHECKOUT_CANCELLED = "checkout_cancelled", "Checkout cancelled"
    ITEM_REMOVED = "item_removed", "Item removed from cart"
    PAYMENT_FAILED = "payment_failed", "Payment failed"
    ORDER_CANCELLED = "order_cancelled", "Order cancelled"
    CHECKOUT_ABANDONED = "checkout_abandoned", "Checkout abandoned"
    ORPHANED = "orphaned", "Orphaned"
    OPS = "ops", "Released by operations"
    STAFF = "staff", "Released by staff"
    API = "api", "Released through the API"
    WAITLIST_LEFT = "waitlist_left", "Waitlist offer given up"


RELEASE_REASON_OTHER = "other"
"""The metric label and admin filter value of a free-text release reason."""


def release_reason_label(reason: str) -> str:
    """The bounded label of ``reason``: its ReleaseReason code, or ``"other"`` for free
    text (metrics must not take one label value per text)."""
    return reason if reason in ReleaseReason.values else RELEASE_REASON_OTHER


class AllocationStrategy(models.TextChoices):
    """How a line that any active warehouse may serve is spread over warehouses
    (``ALLOCATION_STRATEGY``); ``pinned`` marks a line that named its warehouse."""

    PRIORITY = "priority", "By warehouse priority"
    MOST_AVAILABLE = "most_available", "Most available first"
    FEWEST_SPLITS = "fewest_splits", "Fewest splits"
    PINNED = "pinned", "Pinned to its warehouse"


class Reservation(models.Model):
    """Stock held for a cart (or an internal API client) until ``expires_at``.

    While ``pending`` its quantity is counted in ``StockLevel.reserved``; ``confirmed``
    moved it out of ``on_hand``; ``released``/``expired`` gave it back.
    """

    stock_level = models.ForeignKey(
        StockLevel, on_delete=models.PROTECT, related_name="reservations"
    )
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="reservations")
    warehouse = models.ForeignKey(Warehouse, on_delete=models.PROTECT, related_name="reservations")
    quantity = models.PositiveIntegerField()
    status = models.CharField(
        max_length=16, choices=ReservationStatus.choices, default=ReservationStatus.PENDING
    )
    expires_at = models.DateTimeField()
    extension_count = models.PositiveIntegerField(default=0)
    cart = models.ForeignKey(
        "carts.Cart", null=True, blank=True, on_delete=models.SET_NULL, related_name="reservations"
    )
    order = models.ForeignKey(
        "orders.Order",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="reservations",
    )
    # One of the ReleaseReason codes when the system releases it; staff may give free
    # text through the API (kept as given).
    release_reason = models.CharField(max_length=255, blank=True, default="")
    # What chose this reservation's warehouse ("" for reservations made before v1.1, and
    # for rows written by SQL that does not name it: the database default).
    allocation_strategy = models.CharField(
        max_length=16, choices=AllocationStrategy.choices, blank=True, default="", db_default=""
    )
    # The waitlist entry this reservation is the offer of (SPEC §15); null otherwise.
    waitlist_entry = models.ForeignKey(
        "WaitlistEntry",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="offer_reservations",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    released_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["status", "expires_at"], name="reservation_status_expiry"),
            models.Index(
                fields=["expires_at"],
                condition=Q(status="pending"),
                name="reservation_pending_expiry",
            ),
            models.Index(fields=["stock_level", "status"], name="reservation_stock_status"),
            models.Index(fields=["cart", "status"], name="reservation_cart_status"),
            # Pending holds of a cart with no order: the candidates of the orphan count
            # (admin overview) and sweeper, answered from the index alone.
            models.Index(
                fields=["cart"],
                condition=Q(status="pending", order__isnull=True, cart__isnull=False),
                name="reservation_pending_no_order",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(quantity__gt=0), name="reservation_quantity_positive"
            ),
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in ReservationStatus]),
                name="reservation_status_valid",
            ),
        ]

    def __str__(self) -> str:
        # "#12: 2 x MUG @ default (pending)"; load product and warehouse where listed.
        return (
            f"#{self.pk}: {self.quantity} x {self.product.sku} @ {self.warehouse.code} "
            f"({self.status})"
        )


class ReservationEventKind(models.TextChoices):
    CREATED = "created", "Created"
    EXTENDED = "extended", "Extended"
    CONFIRMED = "confirmed", "Confirmed"
    RELEASED = "released", "Released"
    EXPIRED = "expired", "Expired"
    RESTOCKED = "restocked", "Restocked"


class ReservationEvent(models.Model):
    """Append-only log of every reservation operation: who, when, why."""

    reservation = models.ForeignKey(Reservation, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=16, choices=ReservationEventKind.choices)
    quantity = models.PositiveIntegerField()
    expires_at = models.DateTimeField(null=True, blank=True)
    actor = models.CharField(max_length=128, blank=True, default="")
    reason = models.CharField(max_length=255, blank=True, default="")
    request_id = models.CharField(max_length=64, blank=True, default="")
    at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.kind} reservation {self.reservation_id}"


class StockLedgerEntry(models.Model):
    """Append-only record of every staff or ops change of ``on_hand`` (set, adjust,
    import, ``PUT inventory/stock/``), written by ``inventory.services`` in the same
    transaction as the change: who, when, by how much, why, and the result."""

    stock_level = models.ForeignKey(
        StockLevel, on_delete=models.PROTECT, related_name="ledger_entries"
    )
    delta = models.IntegerField()
    on_hand_after = models.IntegerField()
    reason = models.CharField(max_length=255, blank=True, default="")
    actor = models.CharField(max_length=128, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "stock ledger entries"
        indexes = [
            models.Index(fields=["stock_level", "-created_at"], name="stock_ledger_level_time"),
            models.Index(fields=["-created_at"], name="stock_ledger_time"),
        ]

    def __str__(self) -> str:
        return f"{self.delta:+d} → {self.on_hand_after} ({self.reason or 'no reason'})"


class WaitlistStatus(models.TextChoices):
    WAITING = "waiting", "Waiting"
    OFFERED = "offered", "Offered"
    CLAIMED = "claimed", "Claimed"
    EXPIRED = "expired", "Offer lapsed"
    CANCELLED = "cancelled", "Cancelled"


OPEN_WAITLIST_STATUSES = (WaitlistStatus.WAITING, WaitlistStatus.OFFERED)


class WaitlistEntry(models.Model):
    """A cart waiting for ``quantity`` units of a product (SPEC §15). Entries of a product
    are served strictly in ``id`` order, each for its whole quantity: freed units become
    an offer, pending reservations held for the
    cart until ``offer_expires_at``. Changed only by ``inventory.waitlist`` and the
    offer step of ``inventory.services``, under the product's stock row locks."""

    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="waitlist")
    # The warehouse the offer must come from; null: any active warehouse.
    warehouse = models.ForeignKey(
        Warehouse, null=True, blank=True, on_delete=models.PROTECT, related_name="waitlist"
    )
    cart = models.ForeignKey("carts.Cart", on_delete=models.CASCADE, related_name="waitlist")
    quantity = models.PositiveIntegerField()
    status = models.CharField(
        max_length=16, choices=WaitlistStatus.choices, default=WaitlistStatus.WAITING
    )
    offered_at = models.DateTimeField(null=True, blank=True)
    offer_expires_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "waitlist entries"
        indexes = [
            models.Index(
                fields=["product", "id"],
                condition=Q(status="waiting"),
                name="waitlist_waiting_queue",
            ),
            models.Index(fields=["status", "created_at"], name="waitlist_status_time"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["cart", "product"],
                condition=Q(status__in=["waiting", "offered"]),
                name="waitlist_one_open_entry_per_cart_product",
            ),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="waitlist_quantity_positive"),
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in WaitlistStatus]),
                name="waitlist_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk}: {self.quantity} x {self.product_id} for cart {self.cart_id} ({self.status})"
