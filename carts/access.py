"""Who may use a cart: the holder of its secret token (``X-Cart-Token``), or the
logged-in customer who owns it, or staff. Anyone else gets exactly the answer for a cart
that does not exist, so a cart id reveals nothing."""

from __future__ import annotations

from uuid import UUID

from django.db.models import QuerySet
from rest_framework.request import Request

from carts.errors import CartNotFound
from carts.models import Cart
from carts.tokens import token_matches

CART_TOKEN_HEADER = "X-Cart-Token"  # noqa: S105 - a header name, not a secret


def may_use_cart(request: Request, cart: Cart, *, allow_staff: bool = False) -> bool:
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        if cart.customer_id is not None and cart.customer_id == user.id:
            return True
        if allow_staff and user.is_staff:
            return True
    return token_matches(request.headers.get(CART_TOKEN_HEADER), cart.token_hash)


def get_cart_for_request(
    request: Request,
    cart_id: UUID | str,
    *,
    queryset: QuerySet[Cart] | None = None,
    allow_staff: bool = False,
) -> Cart:
    """The cart if the request may use it, else :class:`CartNotFound` (also for a
    malformed id)."""
    try:
        cart_uuid = cart_id if isinstance(cart_id, UUID) else UUID(str(cart_id))
    except ValueError:
        raise CartNotFound() from None
    qs = queryset if queryset is not None else Cart.objects.all()
    cart = qs.filter(id=cart_uuid).first()
    if cart is None or not may_use_cart(request, cart, allow_staff=allow_staff):
        raise CartNotFound()
    return cart
