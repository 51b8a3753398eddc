"""Every API operation, read from the URL resolver, and who may call it.

The list is derived, never written by hand, so an endpoint added tomorrow is checked
tomorrow. Classification is deny-by-default: an operation is *staff-only* unless it is
named below as public, or its path makes it belong to one cart or one order (then only
that cart's token, or its owner, may use it).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from django.urls import URLPattern, URLResolver, get_resolver

API_PREFIX = "/api/v1/"
METHODS = ("get", "post", "put", "patch", "delete")

# Anyone may call these (API.md: product reads, creating a cart, and the order lookup
# by number and email, which is throttled).
PUBLIC = {
    ("GET", "products/"),
    ("GET", "products/{}/"),
    ("POST", "carts/"),
    ("POST", "orders/lookup/"),
}
# Operations of one order that its cart's token (or staff) may use (API.md "Orders").
ORDER_SCOPED = {
    ("GET", "orders/{}/"),
    ("POST", "orders/{}/cancel/"),
}
CART_SCOPED_PREFIX = "carts/{}/"

_CONVERTER = re.compile(r"<(?:(?P<conv>[^>:]+):)?(?P<name>[^>]+)>")


@dataclass(frozen=True)
class Operation:
    method: str  # upper case
    route: str  # "carts/<uuid:cart_id>/items/<int:item_id>/" (below /api/v1/)
    view: type

    @property
    def shape(self) -> str:
        """The route with every parameter as ``{}``: ``carts/{}/items/{}/``."""
        return _CONVERTER.sub("{}", self.route)

    @property
    def openapi_path(self) -> str:
        return API_PREFIX + _CONVERTER.sub(lambda m: "{" + m["name"] + "}", self.route)

    @property
    def kind(self) -> str:
        key = (self.method, self.shape)
        if key in PUBLIC:
            return "public"
        if key in ORDER_SCOPED:
            return "order"
        if self.shape.startswith(CART_SCOPED_PREFIX):
            return "cart"
        return "staff"

    def path(self, *values: object) -> str:
        """The concrete path, parameters filled in order from ``values``; those not given
        get a well-formed value that exists nowhere (a fresh uuid, or 999999 for an int)."""
        given = iter(values)

        def fill(m: re.Match) -> str:
            value = next(given, None)
            if value is not None:
                return str(value)
            return "999999" if m["conv"] == "int" else str(uuid.uuid4())

        return API_PREFIX + _CONVERTER.sub(fill, self.route)

    def __str__(self) -> str:
        return f"{self.method} {API_PREFIX}{self.route}"


def _walk(patterns, prefix: str = ""):
    for p in patterns:
        route = str(p.pattern)
        if isinstance(p, URLResolver):
            yield from _walk(p.url_patterns, prefix + route)
        elif isinstance(p, URLPattern):
            yield prefix + route, p


def api_operations() -> list[Operation]:
    """Every (method, route) under /api/v1/ that the URL resolver serves."""
    ops = []
    for route, pattern in _walk(get_resolver().url_patterns):
        if not route.startswith(API_PREFIX.lstrip("/")):
            continue
        view = getattr(pattern.callback, "view_class", None) or getattr(
            pattern.callback, "cls", None
        )
        if view is None:
            raise AssertionError(f"{route}: not a class-based view; cannot list its methods")
        sub = route[len(API_PREFIX) - 1 :]
        for method in METHODS:
            if hasattr(view, method):
                ops.append(Operation(method.upper(), sub, view))
    return ops
