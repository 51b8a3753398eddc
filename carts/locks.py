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
        # FOR NO KEY UPDATE: it still excludes every other locker of the cart, but not
        # the key-share lock a foreign key check takes. A waitlist offer made for this
        # cart by a transaction holding stock rows (SPEC §15) inserts rows referencing it;
        # a FOR UPDATE here would make that transaction wait for us while we wait for its
        # stock rows: a deadlock.
        cart = Cart.objects.select_for_update(of=("self",), no_key=True).get(id=cart_id)
    except Cart.DoesNotExist:
        raise CartNotFound() from None
    if authorize is not None and not authorize(cart):
        raise CartNotFound()
    return cart
