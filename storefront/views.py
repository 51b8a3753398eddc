"""The shopper storefront (API.md; SPEC §12).

The product list and the product pages are rendered here, from the same selectors the
API uses, so that shoppers without JavaScript and crawlers see the catalog; with
JavaScript their scripts refresh the stock badges and add to the cart through
``/api/v1/`` without a reload. Adding to the cart also works as a plain form post
(:func:`cart_add`), which calls the cart service and keeps the cart in the same cookie
the scripts use (``storefront.cart_cookie``); so do joining and leaving the waitlist of a
sold-out product (:func:`waitlist_join`, :func:`waitlist_leave`, SPEC §15). The cart,
checkout, order and order lookup pages are driven by their scripts over the REST API,
with the cart token the API gave.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Sum
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_POST, require_safe

from carts import selectors as cart_selectors
from carts import services as cart_services
from carts import waitlist as cart_waitlist
from carts.errors import CartNotFound, InvalidCartStatus
from carts.models import Cart, CartItem, CartStatus
from carts.serializers import line_total
from carts.tokens import token_matches
from core.errors import ApplicationError
from inventory import selectors as inventory_selectors
from inventory import waitlist
from inventory.errors import StockAvailable, WaitlistEntryNotFound
from inventory.models import OPEN_WAITLIST_STATUSES, Product, WaitlistEntry, WaitlistStatus
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


def _duration_words(seconds: int) -> str:
    """300 → "5 minutes", 60 → "1 minute", 90 → "90 seconds" (as ``waitlist.js`` says it)."""
    if seconds % 60 == 0:
        minutes = seconds // 60
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"


def _shown_entry(cart: Cart | None, product: Product) -> WaitlistEntry | None:
    """The cart's latest waitlist entry for ``product``, unless the shopper left it: an
    open one (waiting or offered) or how the last one ended (claimed, lapsed)."""
    if cart is None:
        return None
    entry = next(
        (e for e in waitlist.entries_for_cart(cart_id=cart.id) if e.product_id == product.id),
        None,
    )
    if entry is None or entry.status == WaitlistStatus.CANCELLED:
        return None
    return entry


@require_safe
@ensure_csrf_cookie
def product_detail(request: HttpRequest, sku: str) -> HttpResponse:
    """The product page. A sold-out product offers its waitlist (SPEC §15): the form to
    join, or the shopper's place in line, the offer held in the cart, or how the last
    turn ended; ``waitlist.js`` keeps it current while the page is open."""
    product = inventory_selectors.product_list(sku=sku).first()
    if product is None:
        raise Http404("No such product")
    [product] = _with_stock_status([product])
    cart = _shown_cart(request)
    entry = _shown_entry(cart, product)
    offer_seconds_left = 0
    if entry is not None and entry.status == WaitlistStatus.OFFERED and entry.offer_expires_at:
        offer_seconds_left = max(int((entry.offer_expires_at - timezone.now()).total_seconds()), 0)
    return _page(
        request,
        "product_detail.html",
        page="product",
        product=product,
        stock_poll_seconds=settings.STOREFRONT_STOCK_POLL_SECONDS,
        waitlist_poll_seconds=settings.STOREFRONT_WAITLIST_POLL_SECONDS,
        offer_ttl_words=_duration_words(settings.WAITLIST_OFFER_TTL_SECONDS),
        show_waitlist=product.available <= 0 or entry is not None,
        entry=entry,
        entry_open=entry is not None and entry.status in OPEN_WAITLIST_STATUSES,
        entry_position=waitlist.position_of(entry) if entry is not None else None,
        offer_left=f"{offer_seconds_left // 60}:{offer_seconds_left % 60:02d}",
        cart_count=_cart_count(cart),
    )


def _safe_next(request: HttpRequest) -> str:
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("storefront:products")


def _token_check(stored: StoredCart) -> Callable[[Cart], bool]:
    return lambda cart: token_matches(stored.token, cart.token_hash)


def _on_stored_cart(stored: StoredCart | None, change: Callable[[StoredCart], object]) -> bool:
    """Runs ``change`` on the browser's cart; False when there is none usable any more
    (unknown, token refused, or already turned into an order), as the scripts treat it."""
    if stored is None:
        return False
    try:
        change(stored)
    except CartNotFound:
        return False
    except InvalidCartStatus as exc:
        if exc.status == CartStatus.COMPLETED:
            return False
        raise
    return True


def _on_usable_cart(
    request: HttpRequest,
    response: HttpResponse,
    currency: str,
    change: Callable[[StoredCart], object],
) -> None:
    """Runs ``change`` on the browser's cart, or on a new one (kept in the cookie of
    ``response``) when there is none usable, exactly as ``api.js`` does."""
    if not _on_stored_cart(stored_cart(request), change):
        cart, token = cart_services.create_cart(currency=currency)
        _on_stored_cart(StoredCart(id=cart.id, token=token), change)
        remember_cart(response, cart_id=cart.id, token=token)


def _quantity(request: HttpRequest) -> int | None:
    """The posted quantity when it is 1..MAX_LINE_QUANTITY, else None (with a message)."""
    try:
        quantity = int(request.POST.get("quantity", ""))
    except ValueError:
        quantity = 0
    if not 1 <= quantity <= cart_services.MAX_LINE_QUANTITY:
        messages.error(
            request, f"Enter a quantity between 1 and {cart_services.MAX_LINE_QUANTITY}."
        )
        return None
    return quantity


def _problem_words(exc: ApplicationError) -> str:
    fields = exc.details.get("fields", {}) if isinstance(exc.details, dict) else {}
    return " ".join([str(m) for msgs in fields.values() for m in msgs] or [exc.message])


@require_POST
def cart_add(request: HttpRequest) -> HttpResponse:
    """Adds ``quantity`` of ``sku`` to the browser's cart without JavaScript (a form post),
    creating a cart first when there is none usable, exactly as ``api.js`` does; then
    back to ``next`` with a message saying what happened."""
    product = inventory_selectors.product_list(sku=request.POST.get("sku", "")).first()
    if product is None:
        raise Http404("No such product")
    response = redirect(_safe_next(request))
    quantity = _quantity(request)
    if quantity is None:
        return response

    def add(stored: StoredCart) -> None:
        cart_services.add_item(
            cart_id=stored.id,
            sku=product.sku,
            quantity=quantity,
            actor="shopper",
            authorize=_token_check(stored),
        )

    try:
        _on_usable_cart(request, response, product.currency, add)
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
        messages.error(request, _problem_words(exc))
        return response
    messages.success(
        request, f"Added {quantity} \N{MULTIPLICATION SIGN} {product.name} to your cart"
    )
    return response


def _entry_words(entry: WaitlistEntry) -> str:
    """What the shopper is told after joining (the same words as ``waitlist.js``)."""
    if entry.status == WaitlistStatus.OFFERED:
        return (
            f"It is your turn: {entry.quantity} \N{MULTIPLICATION SIGN} {entry.product.name} "
            "is in your cart, held for you."
        )
    return f"You are number {waitlist.position_of(entry)} in line for {entry.product.name}."


@require_POST
def waitlist_join(request: HttpRequest) -> HttpResponse:
    """Joins the waitlist of ``sku`` for ``quantity`` without JavaScript (a form post),
    creating a cart first when there is none usable, as ``waitlist.js`` does through the
    API; then back to ``next`` (the product page), which shows the place in line."""
    product = inventory_selectors.product_list(sku=request.POST.get("sku", "")).first()
    if product is None:
        raise Http404("No such product")
    response = redirect(_safe_next(request))
    quantity = _quantity(request)
    if quantity is None:
        return response
    joined: list[WaitlistEntry] = []

    def join(stored: StoredCart) -> None:
        result = cart_waitlist.join_waitlist(
            cart_id=stored.id,
            sku=product.sku,
            quantity=quantity,
            actor="shopper",
            authorize=_token_check(stored),
        )
        joined.append(result.entry)

    try:
        _on_usable_cart(request, response, product.currency, join)
    except StockAvailable:
        messages.error(
            request,
            f"{product.name} is in stock now, so there is no need to wait: add it to your cart.",
        )
        return response
    except InvalidCartStatus as exc:
        if exc.status == CartStatus.CHECKOUT:
            messages.error(
                request,
                "Your cart is in checkout, so it cannot join a waitlist. Finish or cancel the "
                "checkout first.",
            )
        else:
            messages.error(request, exc.message)
        return response
    except ApplicationError as exc:
        messages.error(request, _problem_words(exc))
        return response
    messages.info(request, _entry_words(joined[-1]))
    return response


@require_POST
def waitlist_leave(request: HttpRequest) -> HttpResponse:
    """Leaves a waitlist without JavaScript (a form post of ``entry_id``); an offered
    entry gives its hold back, which passes to the next shopper in line."""
    response = redirect(_safe_next(request))
    stored = stored_cart(request)
    try:
        if stored is None:
            raise WaitlistEntryNotFound()
        entry = cart_waitlist.leave_waitlist(
            cart_id=stored.id,
            entry_id=int(request.POST.get("entry_id", "")),
            actor="shopper",
            authorize=_token_check(stored),
        )
    except (ValueError, CartNotFound, WaitlistEntryNotFound):
        messages.error(request, "We could not find that place in line. It may have ended already.")
        return response
    if entry.status == WaitlistStatus.CANCELLED:
        messages.info(request, f"You left the waitlist for {entry.product.name}.")
    else:
        messages.info(request, f"Your place in line for {entry.product.name} had ended already.")
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
    response = _page(
        request,
        "cart.html",
        page="cart",
        cart=cart,
        cart_count=_cart_count(cart),
        waitlist_poll_seconds=settings.STOREFRONT_WAITLIST_POLL_SECONDS,
        offer_ttl_words=_duration_words(settings.WAITLIST_OFFER_TTL_SECONDS),
    )
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
