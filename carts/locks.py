"""The only place in ``carts`` that takes row locks. The Cart row is always the first
lock of a change that belongs to a cart (then stock rows, then reservations)."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

from carts.errors import CartNotFound
from carts.models import Cart

CartCheck = Callable[[Cart], bool]


def lock_cart(cart_id: UUID, *, authorize: CartCheck | None = None) -> Cart:
    """Locks and returns the cart; :class:`CartNotFound` if it does not exist, or if
    ``authorize`` refuses it (the same answer, so a refusal reveals nothing). Checking
    access on the locked row saves the API a read of its own."""
    try:
        cart = Cart.objects.select_for_update(of=("self",)).get(id=cart_id)
    except Cart.DoesNotExist:
        raise CartNotFound() from None
    if authorize is not None and not authorize(cart):
        raise CartNotFound()
    return cart
