"""The only place in ``checkout`` that takes row locks.

Lock order: the Cart row (``carts.locks``), then the cart's Payment rows, then stock rows
and reservations (``inventory.services``). Reconciliation takes carts and payments in
batches with ``SKIP LOCKED`` so it never waits for a shopper or another worker.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from carts.models import Cart
from checkout.models import Payment, PaymentStatus


def lock_payment(payment_id: UUID) -> Payment:
    """Locks one payment; the caller already holds its cart's lock."""
    return Payment.objects.select_for_update(of=("self",)).get(id=payment_id)


def _captured_without_order(*, captured_before: datetime):
    return Payment.objects.filter(
        status=PaymentStatus.CAPTURED,
        order__isnull=True,
        needs_attention=False,
        captured_at__lte=captured_before,
    )


def lock_carts_with_captured_payments(*, captured_before: datetime, limit: int) -> list[UUID]:
    """Locks up to ``limit`` carts that have a captured payment without an order
    (captured before ``captured_before``), ascending pk, skipping carts locked by anyone
    else (a shopper's confirm still finishing its order)."""
    payments = _captured_without_order(captured_before=captured_before)
    return list(
        Cart.objects.select_for_update(of=("self",), skip_locked=True)
        .filter(id__in=payments.values("cart_id"))
        .order_by("id")
        .values_list("id", flat=True)[:limit]
    )


def lock_captured_payments(*, cart_ids: list[UUID], captured_before: datetime) -> list[Payment]:
    """Locks the captured payments without an order of carts the caller holds, oldest
    first within each cart, skipping rows locked elsewhere."""
    if not cart_ids:
        return []
    return list(
        _captured_without_order(captured_before=captured_before)
        .select_for_update(of=("self",), skip_locked=True)
        .filter(cart_id__in=cart_ids)
        .order_by("cart_id", "captured_at", "id")
    )


def lock_stale_in_flight_payments(*, started_before: datetime, limit: int) -> list[Payment]:
    """Locks up to ``limit`` payments left ``pending``/``authorized`` since before
    ``started_before`` (their confirm was interrupted), skipping locked rows."""
    return list(
        Payment.objects.select_for_update(of=("self",), skip_locked=True)
        .filter(
            status__in=[PaymentStatus.PENDING, PaymentStatus.AUTHORIZED],
            needs_attention=False,
            created_at__lt=started_before,
        )
        .order_by("created_at", "id")[:limit]
    )
