"""Where the shopper's cart is kept between pages: the ``storefront_cart`` cookie holds the
cart id and its secret token (``<id>:<token>``), the same pair the cart API answered when
the cart was created.

Both ways of shopping use it. Without JavaScript the storefront's own views read and write
it; with JavaScript ``static/storefront/api.js`` reads and writes the same cookie (so it
is not ``HttpOnly``) and sends the token as ``X-Cart-Token``. The token is no more exposed
than it was in ``localStorage``; ``SameSite=Lax`` keeps other sites' forms from using it.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote
from uuid import UUID

from django.conf import settings
from django.http import HttpRequest, HttpResponse

COOKIE_NAME = "storefront_cart"
MAX_AGE_SECONDS = 30 * 24 * 3600


@dataclass(frozen=True)
class StoredCart:
    id: UUID
    token: str


def stored_cart(request: HttpRequest) -> StoredCart | None:
    """The cart the browser holds, or None when the cookie is absent or malformed."""
    raw = unquote(request.COOKIES.get(COOKIE_NAME, ""))
    cart_id, _, token = raw.partition(":")
    if not token:
        return None
    try:
        return StoredCart(id=UUID(cart_id), token=token)
    except ValueError:
        return None


def remember_cart(response: HttpResponse, *, cart_id: UUID, token: str) -> None:
    response.set_cookie(
        COOKIE_NAME,
        f"{cart_id}:{token}",
        max_age=MAX_AGE_SECONDS,
        path="/",
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=False,
        samesite="Lax",
    )


def forget_cart(response: HttpResponse) -> None:
    response.delete_cookie(COOKIE_NAME, path="/", samesite="Lax")
