"""Who may use a cart: the holder of its secret token (``X-Cart-Token``), or the
logged-in customer who owns it, or staff. Anyone else gets exactly the answer for a cart
that does not exist, so a cart id reveals nothing."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.db.models import QuerySet
from rest_framework.exceptions import ParseError
from rest_framework.request import Request
from rest_framework.serializers import Serializer

from carts.errors import CartNotFound
from carts.locks import CartCheck
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


def access_check(request: Request, *, allow_staff: bool = False) -> CartCheck:
    """Whether ``request`` may use a cart, for a service to check on the row it locks
    (``carts.locks.lock_cart``) instead of the view reading the cart first."""
    return lambda cart: may_use_cart(request, cart, allow_staff=allow_staff)


def request_body(request: Request, cart_id: UUID) -> Any:
    """The parsed body. Access comes first: malformed JSON sent to a cart the request
    may not use answers ``CART_NOT_FOUND``, not a parse error."""
    try:
        return request.data
    except ParseError:
        get_cart_for_request(request, cart_id)
        raise


def validated_body(
    serializer_class: type[Serializer], request: Request, cart_id: UUID
) -> dict[str, Any]:
    """The body validated by ``serializer_class``. Access comes first: an invalid body
    sent to a cart the request may not use answers ``CART_NOT_FOUND``, not its errors."""
    serializer = serializer_class(data=request_body(request, cart_id))
    if not serializer.is_valid():
        get_cart_for_request(request, cart_id)
        serializer.is_valid(raise_exception=True)
    return serializer.validated_data
