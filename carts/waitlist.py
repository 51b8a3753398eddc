"""A cart's waitlists (SPEC §15, API.md "Waitlists"): join, leave and read, for the
shopper who holds the cart.

The queue itself (first come first served, withholding, offers) belongs to
``inventory.waitlist``; this module adds what the cart decides: who may use the cart,
which carts may wait (the ones that may receive an offer: ``active`` or ``abandoned``,
``carts.waitlist_hooks.OFFER_STATUSES``), and which product and warehouse a sku and a code
name. Locks: the Cart row first (``carts.locks.lock_cart``), then ``inventory.waitlist``
locks the product's stock rows and its entries.
"""

from __future__ import annotations

from uuid import UUID

from django.db import transaction

from carts.errors import InvalidCartStatus
from carts.locks import CartCheck, lock_cart
from carts.services import check_line_limit
from carts.waitlist_hooks import OFFER_STATUSES
from core.errors import ValidationFailed
from inventory import waitlist
from inventory.errors import ProductNotFound, WarehouseNotFound
from inventory.models import Product, WaitlistEntry, Warehouse
from inventory.waitlist import JoinResult


def join_waitlist(
    *,
    cart_id: UUID,
    sku: str,
    quantity: int,
    warehouse: str | None = None,
    actor: str,
    authorize: CartCheck | None = None,
) -> JoinResult:
    """Puts the cart on the waitlist of the product ``sku`` for ``quantity`` units (from
    the warehouse with code ``warehouse`` only, if given); a second join of the same
    product changes the open entry (see ``inventory.waitlist.join``). Only a cart that
    could receive the offer may wait: ``active`` or ``abandoned``, else
    :class:`InvalidCartStatus`. The product must be priced in the cart's currency (its
    offered line goes in the cart). Refused with ``StockAvailable`` when the quantity can
    be reserved now; above the product's ``max_per_order`` with
    ``QuantityLimitExceeded``. ``authorize`` is checked on the locked cart.
    Locks: the cart, then the product's stock rows, then its waitlist entries."""
    with transaction.atomic():
        cart = lock_cart(cart_id, authorize=authorize)
        if cart.status not in OFFER_STATUSES:
            raise InvalidCartStatus(
                cart.status, f"A cart in status '{cart.status}' cannot join a waitlist"
            )
        product = Product.objects.filter(sku=sku).first()
        if product is None:
            raise ProductNotFound(details={"sku": sku})
        # The offer becomes a cart line: it may not be larger than a line may be.
        check_line_limit(product, quantity)
        if product.currency != cart.currency:
            raise ValidationFailed(
                {
                    "sku": [
                        f"The product is priced in {product.currency}; "
                        f"the cart is in {cart.currency}."
                    ]
                }
            )
        pinned: Warehouse | None = None
        if warehouse:
            pinned = Warehouse.objects.filter(code=warehouse).first()
            if pinned is None:
                raise WarehouseNotFound(details={"warehouse": warehouse})
        return waitlist.join(
            cart_id=cart.id, product=product, warehouse=pinned, quantity=quantity, actor=actor
        )


def leave_waitlist(
    *, cart_id: UUID, entry_id: int, actor: str, authorize: CartCheck | None = None
) -> WaitlistEntry:
    """Cancels the cart's entry ``entry_id`` (``WaitlistEntryNotFound`` if the cart has
    none with that id): a waiting entry leaves its queue, an offered one releases its hold,
    whose units are offered to the next entry in the same transaction; an entry that has
    ended already is answered as it is. Allowed whatever the cart's status.
    Locks: the cart, then the product's stock rows, its entries and the offer's
    reservations."""
    with transaction.atomic():
        cart = lock_cart(cart_id, authorize=authorize)
        return waitlist.leave(cart_id=cart.id, entry_id=entry_id, actor=actor)
