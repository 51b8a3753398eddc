"""Purchase limits (SPEC §15): a product's ``max_per_order`` (units in one cart line) and
``max_per_customer`` (units one logged-in customer may buy within
``PURCHASE_LIMIT_WINDOW_SECONDS``).

``max_per_order`` is the cart's rule (``carts.services.check_line_limit``, checked when a
line is added or changed); checkout checks it again when it starts, for a limit set
since. ``max_per_customer`` is checked where stock is held for a customer's cart
(checkout start, and confirm when it reserves), under the stock row locks of the
reservation (``inventory.services.reserve``'s ``limit_check``): the rows of every limited
product are all locked (``serialize_products``), so two carts of one customer (two tabs)
holding the same product take turns, and the second one counts the first one's hold.
Anonymous carts have no per-customer limit.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

from django.conf import settings
from django.db.models import Sum
from django.utils import timezone

from carts.models import Cart, CartItem, CartStatus
from carts.services import check_line_limit
from checkout.errors import PurchaseLimitReached
from core import metrics
from inventory.models import Product, Reservation, ReservationStatus
from orders.models import OrderItem, OrderStatus


def check_order_limits(items: Iterable[CartItem]) -> None:
    """Every line within its product's ``max_per_order`` (products loaded with the
    lines), else ``QUANTITY_LIMIT_EXCEEDED`` for the first line above it."""
    for item in items:
        check_line_limit(item.product, item.quantity)


def customer_units(
    *, customer_id: int, product_ids: Iterable[UUID], other_than_cart: UUID
) -> dict[UUID, int]:
    """Units of each product the customer already has, for a per-customer limit: the
    quantities of their orders created within ``PURCHASE_LIMIT_WINDOW_SECONDS`` that are
    not cancelled, plus their pending holds in carts other than ``other_than_cart``
    (a hold of a completed cart is its order's, counted once, as the order). A lapsed hold
    counts until it is expired: it still holds its stock and may still be confirmed.

    One statement (both sums in one snapshot, so an order written meanwhile is counted
    either as its order or as its holds, never neither). Products without units are
    left out."""
    ids = list(product_ids)
    since = timezone.now() - timedelta(seconds=settings.PURCHASE_LIMIT_WINDOW_SECONDS)
    ordered = (
        OrderItem.objects.filter(
            order__customer_id=customer_id, order__created_at__gte=since, product_id__in=ids
        )
        .exclude(order__status=OrderStatus.CANCELLED)
        .order_by()
        .values("product_id")
        .annotate(units=Sum("quantity"))
        .values_list("product_id", "units")
    )
    held = (
        Reservation.objects.filter(
            status=ReservationStatus.PENDING, cart__customer_id=customer_id, product_id__in=ids
        )
        .exclude(cart_id=other_than_cart)
        .exclude(cart__status=CartStatus.COMPLETED)
        .order_by()
        .values("product_id")
        .annotate(units=Sum("quantity"))
        .values_list("product_id", "units")
    )
    units: dict[UUID, int] = defaultdict(int)
    for product_id, quantity in ordered.union(held, all=True):
        units[product_id] += quantity
    return dict(units)


@dataclass(frozen=True)
class CustomerLimit:
    """What ``checkout.holds.ensure_live_holds`` takes to check a cart's per-customer
    limits under the stock row locks: ``limit_check`` (None: nothing to check) and the
    limited products whose rows must all be locked (``serialize_products``)."""

    limit_check: Callable[[dict[UUID, int]], None] | None = None
    serialize_products: frozenset[UUID] = frozenset()


def customer_limit(*, cart: Cart, items: Iterable[CartItem]) -> CustomerLimit:
    """The per-customer limit check of ``cart``'s lines (products loaded with them): for a
    customer's cart with lines of products that have a ``max_per_customer``, a check that
    refuses with ``PURCHASE_LIMIT_REACHED`` (``details: {sku, limit, already}``, counted in
    ``purchase_limit_refusals_total{kind="per_customer"}``) when what the customer already
    has (:func:`customer_units`) plus the units asked for is above the limit. No query
    until the check runs; then one."""
    if cart.customer_id is None:
        return CustomerLimit()
    limited: dict[UUID, Product] = {
        item.product_id: item.product for item in items if item.product.max_per_customer is not None
    }
    if not limited:
        return CustomerLimit()

    def check(units_per_product: dict[UUID, int]) -> None:
        asked = {p: units for p, units in units_per_product.items() if p in limited}
        if not asked:
            return
        already = customer_units(
            customer_id=cart.customer_id, product_ids=asked, other_than_cart=cart.id
        )
        for product_id, units in asked.items():
            product = limited[product_id]
            has = already.get(product_id, 0)
            if has + units > product.max_per_customer:
                metrics.purchase_limit_refusals_total.labels(kind="per_customer").inc()
                raise PurchaseLimitReached(product.sku, product.max_per_customer, has)

    return CustomerLimit(limit_check=check, serialize_products=frozenset(limited))
