"""The only place in ``checkout`` that takes row locks of its own.

Lock order: the Cart row (``carts.locks``), then the cart's Payment rows
(``payments.locks``), then stock rows and reservations (``inventory.services``).
Reconciliation takes carts and payments in batches with ``SKIP LOCKED`` so it never waits
for a shopper or another worker.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from carts.models import Cart
from payments.locks import captured_for_reconciliation


def lock_carts_with_captured_payments(*, captured_before: datetime, limit: int) -> list[UUID]:
    """Locks up to ``limit`` carts that have a captured payment without an order
    (captured before ``captured_before``), ascending pk, skipping carts locked by anyone
    else (a shopper's confirm still finishing its order)."""
    payments = captured_for_reconciliation(captured_before=captured_before)
    return list(
        Cart.objects.select_for_update(of=("self",), skip_locked=True, no_key=True)  # carts.locks
        .filter(id__in=payments.values("cart_id"))
        .order_by("id")
        .values_list("id", flat=True)[:limit]
    )
