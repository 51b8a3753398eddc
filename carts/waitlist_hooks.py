"""What the inventory's waitlists need of carts (SPEC §15), registered in ``carts.apps``
through ``inventory.services.register_waitlist_carts``: which carts may receive an offer,
and putting an offered line in its cart."""

from __future__ import annotations

from uuid import UUID

from carts.models import Cart, CartItem, CartStatus

# A cart receives an offer while the shopper is still shopping with it. A cart in
# checkout (paying for other lines) or completed gives its place up when its turn comes:
# the offer must never slip a line into a payment the shopper is already making.
OFFER_STATUSES = (CartStatus.ACTIVE, CartStatus.ABANDONED)


def carts_open_for_offers(cart_ids: set[UUID]) -> set[UUID]:
    return set(
        Cart.objects.filter(id__in=cart_ids, status__in=OFFER_STATUSES).values_list("id", flat=True)
    )


def put_offered_lines(offers: list[tuple[UUID, UUID, int | None, int]]) -> None:
    """Adds each offered line to its cart unless the cart has a line of that product
    already (that line is left as it is)."""
    CartItem.objects.bulk_create(
        [
            CartItem(cart_id=cart_id, product_id=product_id, warehouse_id=warehouse_id, quantity=q)
            for cart_id, product_id, warehouse_id, q in offers
        ],
        ignore_conflicts=True,
    )
