"""The shopper storefront (API.md; SPEC §12).

The product list and the product pages are rendered here, from the same selectors the
API uses, so that shoppers without JavaScript and crawlers see the catalog; with
JavaScript their scripts refresh the stock badges and add to the cart through
``/api/v1/`` without a reload. Adding to the cart also works as a plain form post
(:func:`cart_add`), which calls the cart service and keeps the cart in the same cookie
the scripts use (``storefront.cart_cookie``). The cart, checkout, order and order lookup
pages are driven by their scripts over the REST API, with the cart token the API gave.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Sum
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_POST, require_safe

from carts import selectors as cart_selectors
from carts import services as cart_services
from carts.errors import CartNotFound, InvalidCartStatus
from carts.models import Cart, CartItem, CartStatus
from carts.serializers import line_total
from carts.tokens import token_matches
from core.errors import ApplicationError
from inventory import selectors as inventory_selectors
from inventory.models import Product
from inventory.stock import stock_status
from storefront.cart_cookie import StoredCart, forget_cart, remember_cart, stored_cart

API_ROOT = "/api/v1/"
# Products per page of the server-rendered list: a page stays light whatever the size of
# the catalog (the count and the page are two indexed queries, availability one more).
PRODUCTS_PER_PAGE = 24
SEARCH_MAX_LENGTH = 100

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


def _shown_cart(request: HttpRequest) -> Cart | None:
    """The browser's cart (from the cookie) if its token still opens it and it can still
    be shopped with; None otherwise."""
    stored = stored_cart(request)
    if stored is None:
        return None
    cart = Cart.objects.filter(id=stored.id).first()
    if cart is None or cart.status == CartStatus.COMPLETED:
        return None
    return cart if token_matches(stored.token, cart.token_hash) else None


def _cart_count(cart: Cart | None) -> int:
    if cart is None:
        return 0
    return CartItem.objects.filter(cart_id=cart.id).aggregate(n=Sum("quantity"))["n"] or 0


def _with_stock_status(products: list[Product]) -> list[Product]:
    for product in inventory_selectors.with_availability(products):
        product.stock_status = stock_status(product.available)
    return products


@require_safe
@ensure_csrf_cookie
def product_list(request: HttpRequest) -> HttpResponse:
    """The catalog, ordered by sku, ``PRODUCTS_PER_PAGE`` a page (``?page=``), optionally
    searched by sku or name (``?search=``); a page number out of range shows the last."""
    search = request.GET.get("search", "").strip()[:SEARCH_MAX_LENGTH]
    paginator = Paginator(
        inventory_selectors.product_list(search=search or None), PRODUCTS_PER_PAGE
    )
    page_obj = paginator.get_page(request.GET.get("page"))
    return _page(
        request,
        "product_list.html",
        page="products",
        products=_with_stock_status(list(page_obj.object_list)),
        page_obj=page_obj,
        search=search,
        page_size=PRODUCTS_PER_PAGE,
        stock_poll_seconds=settings.STOREFRONT_STOCK_POLL_SECONDS,
        cart_count=_cart_count(_shown_cart(request)),
    )


@require_safe
@ensure_csrf_cookie
def product_detail(request: HttpRequest, sku: str) -> HttpResponse:
    product = inventory_selectors.product_list(sku=sku).first()
    if product is None:
        raise Http404("No such product")
    [product] = _with_stock_status([product])
    return _page(
        request,
        "product_detail.html",
        page="product",
        product=product,
        stock_poll_seconds=settings.STOREFRONT_STOCK_POLL_SECONDS,
        cart_count=_cart_count(_shown_cart(request)),
    )


def _safe_next(request: HttpRequest) -> str:
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("storefront:products")


def _add_to_stored_cart(stored: StoredCart | None, *, sku: str, quantity: int) -> bool:
    """Adds to the browser's cart; False when there is none usable any more (unknown,
    token refused, or already turned into an order), as the scripts treat it."""
    if stored is None:
        return False
    try:
        cart_services.add_item(
            cart_id=stored.id,
            sku=sku,
            quantity=quantity,
            actor="shopper",
            authorize=lambda cart: token_matches(stored.token, cart.token_hash),
        )
    except CartNotFound:
        return False
    except InvalidCartStatus as exc:
        if exc.status == CartStatus.COMPLETED:
            return False
        raise
    return True


@require_POST
def cart_add(request: HttpRequest) -> HttpResponse:
    """Adds ``quantity`` of ``sku`` to the browser's cart without JavaScript (a form post),
    creating a cart first when there is none usable, exactly as ``api.js`` does; then
    back to ``next`` with a message saying what happened."""
    product = inventory_selectors.product_list(sku=request.POST.get("sku", "")).first()
    if product is None:
        raise Http404("No such product")
    response = redirect(_safe_next(request))
    try:
        quantity = int(request.POST.get("quantity", ""))
    except ValueError:
        quantity = 0
    if not 1 <= quantity <= cart_services.MAX_LINE_QUANTITY:
        messages.error(
            request, f"Enter a quantity between 1 and {cart_services.MAX_LINE_QUANTITY}."
        )
        return response
    try:
        if not _add_to_stored_cart(stored_cart(request), sku=product.sku, quantity=quantity):
            cart, token = cart_services.create_cart(currency=product.currency)
            _add_to_stored_cart(
                StoredCart(id=cart.id, token=token), sku=product.sku, quantity=quantity
            )
            remember_cart(response, cart_id=cart.id, token=token)
    except InvalidCartStatus as exc:
        if exc.status == CartStatus.CHECKOUT:
            messages.error(
                request,
                "Your cart is in checkout, so it cannot be changed. Finish or cancel the "
                "checkout first.",
            )
        else:
            messages.error(request, exc.message)
        return response
    except ApplicationError as exc:
        fields = exc.details.get("fields", {}) if isinstance(exc.details, dict) else {}
        problems = [str(m) for msgs in fields.values() for m in msgs] or [exc.message]
        messages.error(request, " ".join(problems))
        return response
    messages.success(
        request, f"Added {quantity} \N{MULTIPLICATION SIGN} {product.name} to your cart"
    )
    return response


@require_safe
@ensure_csrf_cookie
def cart_page(request: HttpRequest) -> HttpResponse:
    """The cart; its script shows and edits it. Without JavaScript the page lists what
    the cart holds (from the cookie's cart), so a shopper sees what was added."""
    cart = _shown_cart(request)
    if cart is not None:
        cart_selectors.with_items(cart)
        for item in cart.items.all():
            item.line_total = line_total(item)
    response = _page(request, "cart.html", page="cart", cart=cart, cart_count=_cart_count(cart))
    if cart is None and stored_cart(request) is not None:
        forget_cart(response)
    return response


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


@require_safe
@ensure_csrf_cookie
def order_lookup_page(request: HttpRequest) -> HttpResponse:
    """Find an order by number and email (``POST orders/lookup/``); its script opens the
    order page with the token the lookup answered."""
    return _page(request, "order_lookup.html", page="order_lookup")
