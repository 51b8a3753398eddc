"""The only place in ``orders`` that takes row locks.

An Order row is locked after the Cart row (when both are needed) and before any
StockLevel/Reservation rows (which ``inventory.services`` locks itself), keeping the
project-wide lock order.
"""

from __future__ import annotations

from uuid import UUID

from orders.errors import OrderNotFound
from orders.models import Order


def lock_order(order_id: UUID) -> Order:
    """Locks and returns the order; :class:`OrderNotFound` if it does not exist."""
    try:
        return Order.objects.select_for_update(of=("self",)).get(id=order_id)
    except Order.DoesNotExist:
        raise OrderNotFound() from None
