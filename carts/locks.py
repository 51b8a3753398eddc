"""The only place in ``carts`` that takes row locks. The Cart row is always the first
lock of a change that belongs to a cart (then stock rows, then reservations)."""

from __future__ import annotations

from uuid import UUID

from carts.errors import CartNotFound
from carts.models import Cart


def lock_cart(cart_id: UUID) -> Cart:
    """Locks and returns the cart; :class:`CartNotFound` if it does not exist."""
    try:
        return Cart.objects.select_for_update(of=("self",)).get(id=cart_id)
    except Cart.DoesNotExist:
        raise CartNotFound() from None
