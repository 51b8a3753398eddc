"""The only place in ``payments`` that takes row locks.

A payment row is locked after its cart's row (``carts.locks``) by the confirm flow, and in
``SKIP LOCKED`` batches by reconciliation, so it never waits for a shopper or another
worker.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from payments.models import Payment


def lock_payment(payment_id: UUID) -> Payment:
    """Locks one payment; the caller already holds its cart's lock."""
    return Payment.objects.select_for_update(of=("self",)).get(id=payment_id)


def captured_for_reconciliation(*, captured_before: datetime):
    """Captured without an order, captured before ``captured_before``, not flagged: what
    reconciliation writes orders for (unlocked queryset, for selecting carts)."""
    return Payment.objects.captured_without_order().filter(
        needs_attention=False, captured_at__lte=captured_before
    )


def lock_captured_payments(*, cart_ids: list[UUID], captured_before: datetime) -> list[Payment]:
    """Locks the captured payments without an order of carts the caller holds, oldest
    first within each cart, skipping rows locked elsewhere."""
    if not cart_ids:
        return []
    return list(
        captured_for_reconciliation(captured_before=captured_before)
        .select_for_update(of=("self",), skip_locked=True)
        .filter(cart_id__in=cart_ids)
        .order_by("cart_id", "captured_at", "id")
    )
