"""The shopper storefront: plain pages whose scripts talk to the REST API (API.md).

These views only render templates. Every read and write of products, carts, checkout
and orders happens in the browser through ``/api/v1/``, with the cart token the API
gave when the cart was created, so the pages exercise exactly what external clients use.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_safe

API_ROOT = "/api/v1/"

# What the shopper may choose; the API stores the id and does not price shipping.
SHIPPING_METHODS: tuple[tuple[str, str], ...] = (
    ("standard", "Standard delivery (3 to 5 working days)"),
    ("express", "Express delivery (1 to 2 working days)"),
)

# The dummy gateway's behaviour follows the method string (SPEC §8); the test methods
# are offered so that every payment outcome can be tried from the page.
PAYMENT_METHODS: tuple[tuple[str, str], ...] = (
    ("card", "Card"),
    ("test_decline", "Test card: declined"),
    ("test_capture_fail", "Test card: capture fails"),
    ("test_timeout", "Test card: payment service times out"),
)

COUNTRIES: tuple[tuple[str, str], ...] = (
    ("US", "United States"),
    ("CA", "Canada"),
    ("GB", "United Kingdom"),
    ("IE", "Ireland"),
    ("DE", "Germany"),
    ("FR", "France"),
    ("NL", "Netherlands"),
    ("BE", "Belgium"),
    ("ES", "Spain"),
    ("IT", "Italy"),
    ("SE", "Sweden"),
    ("PL", "Poland"),
    ("AU", "Australia"),
    ("NZ", "New Zealand"),
    ("JP", "Japan"),
)


def _page(request: HttpRequest, template: str, **context: Any) -> HttpResponse:
    context.setdefault("api_root", API_ROOT)
    return render(request, f"storefront/{template}", context)


@require_safe
@ensure_csrf_cookie
def product_list(request: HttpRequest) -> HttpResponse:
    return _page(request, "product_list.html", page="products")


@require_safe
@ensure_csrf_cookie
def cart_page(request: HttpRequest) -> HttpResponse:
    return _page(request, "cart.html", page="cart")


@require_safe
@ensure_csrf_cookie
def checkout_page(request: HttpRequest) -> HttpResponse:
    return _page(
        request,
        "checkout.html",
        page="checkout",
        stock_poll_seconds=settings.STOREFRONT_STOCK_POLL_SECONDS,
        shipping_methods=SHIPPING_METHODS,
        payment_methods=PAYMENT_METHODS,
        countries=COUNTRIES,
    )


@require_safe
@ensure_csrf_cookie
def order_page(request: HttpRequest, order_id: UUID) -> HttpResponse:
    return _page(request, "order.html", page="order", order_id=order_id)
