"""Reads of the checkout: the state a shopper resumes from (API.md "Checkout")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db.models import F

from carts.models import Cart
from carts.selectors import LineStock, cart_line_stock, with_items
from inventory.models import Reservation, ReservationStatus


@dataclass(frozen=True)
class CheckoutState:
    """Everything the checkout state answer shows; built from the cart (the quote), its
    pending reservations and the current stock of its lines."""

    cart: Cart
    reservations: list[Reservation]
    warnings: list[dict[str, Any]]

    @property
    def cart_id(self) -> UUID:
        return self.cart.id

    @property
    def status(self) -> str:
        return self.cart.status

    @property
    def current_step(self) -> int:
        return self.cart.current_step

    @property
    def email(self) -> str:
        return self.cart.email

    @property
    def shipping_address(self) -> dict[str, Any] | None:
        return self.cart.shipping_address

    @property
    def billing_address(self) -> dict[str, Any] | None:
        return self.cart.billing_address

    @property
    def payment_method(self) -> str:
        return self.cart.payment_method

    @property
    def shipping_method_id(self) -> str:
        return self.cart.shipping_method_id

    @property
    def reservation_ids(self) -> list[int]:
        return [r.id for r in self.reservations]

    @property
    def reservation_map(self) -> dict[str, int]:
        """Each product's first reservation in allocation order (a split line has one
        per warehouse; all of them are in ``reservation_ids`` and ``allocations``)."""
        first: dict[str, int] = {}
        for r in self.reservations:
            first.setdefault(str(r.product_id), r.id)
        return first

    @property
    def allocations(self) -> list[dict[str, Any]]:
        """Where each line is held: one entry per line and warehouse, in line order, a
        line's own in allocation order (the order the reservations were made)."""
        by_product: dict[UUID, list[Reservation]] = {}
        for r in self.reservations:
            by_product.setdefault(r.product_id, []).append(r)
        return [
            {
                "item_id": item.id,
                "product_id": item.product_id,
                "sku": item.product.sku,
                "warehouse": r.warehouse.code,
                "quantity": r.quantity,
                "reservation_id": r.id,
                "strategy": r.allocation_strategy,
            }
            for item in self.cart.items.all()
            for r in by_product.get(item.product_id, [])
        ]

    @property
    def reservation_expires_at(self) -> datetime | None:
        return min((r.expires_at for r in self.reservations), default=None)

    @property
    def checkout_started_at(self) -> datetime | None:
        return self.cart.checkout_started_at

    @property
    def extensions_used(self) -> int:
        return self.cart.extensions_used

    @property
    def extensions_left(self) -> int:
        return max(settings.CHECKOUT_MAX_EXTENSIONS - self.cart.extensions_used, 0)


def pending_reservations(*, cart_id: UUID) -> list[Reservation]:
    """The cart's pending reservations, oldest first (one query)."""
    return list(
        Reservation.objects.filter(cart_id=cart_id, status=ReservationStatus.PENDING).order_by("id")
    )


def low_stock_warnings(lines: list[LineStock]) -> list[dict[str, Any]]:
    """``LOW_STOCK`` for every line whose stock left for others, once this cart holds
    the whole line, is below ``LOW_STOCK_THRESHOLD``."""
    return [
        {"code": "LOW_STOCK", "sku": line.item.product.sku, "available": line.available_after}
        for line in lines
        if line.available_after < settings.LOW_STOCK_THRESHOLD
    ]


def scarcity_ttl_seconds(cart: Cart) -> int:
    """The hold TTL of a checkout holding a high-demand line (SPEC §15): the shorter of
    ``SCARCITY_TTL_SECONDS`` and the TTL its holds would otherwise get (the start TTL,
    or the extension TTL once extended)."""
    ordinary = (
        settings.CHECKOUT_EXTENSION_TTL_SECONDS
        if cart.extensions_used
        else settings.CHECKOUT_RESERVATION_TTL_SECONDS
    )
    return min(settings.SCARCITY_TTL_SECONDS, ordinary)


def stock_warnings(
    *, cart: Cart, lines: list[LineStock], reservations: list[Reservation]
) -> list[dict[str, Any]]:
    """The state's ``warnings``, line by line: ``LOW_STOCK`` (see
    :func:`low_stock_warnings`), and ``HIGH_DEMAND`` for every held line whose product is
    in high demand (SPEC §15: a non-empty waitlist, or less than ``LOW_STOCK_THRESHOLD``
    left once this cart holds the line), with the scarcity TTL its holds get
    (:func:`scarcity_ttl_seconds`). ``reservations`` carry ``waitlisted`` (their stock
    row's, the same on every row of the product)."""
    waitlisted: dict[UUID, int] = {}
    for r in reservations:
        waitlisted[r.product_id] = max(waitlisted.get(r.product_id, 0), r.waitlisted)
    low = {w["sku"]: w for w in low_stock_warnings(lines)}
    ttl_seconds = scarcity_ttl_seconds(cart)
    warnings: list[dict[str, Any]] = []
    for line in lines:
        sku = line.item.product.sku
        if sku in low:
            warnings.append(low[sku])
        held = line.item.product_id in waitlisted
        if held and (sku in low or waitlisted[line.item.product_id] > 0):
            warnings.append({"code": "HIGH_DEMAND", "sku": sku, "ttl_seconds": ttl_seconds})
    return warnings


def checkout_state(*, cart: Cart) -> CheckoutState:
    """The checkout state of ``cart`` as read or as a service of ``checkout.services``
    returned it; at most three queries (lines, reservations, stock) whatever the number
    of lines. Lines a service loaded under its lock (start, extension) are used as they
    are: nothing changes them after."""
    if "items" not in getattr(cart, "_prefetched_objects_cache", {}):
        with_items(cart)
    reservations = list(
        Reservation.objects.filter(cart_id=cart.id, status=ReservationStatus.PENDING)
        .select_related("warehouse")
        .annotate(waitlisted=F("stock_level__waitlisted"))
        .order_by("id")
    )
    return CheckoutState(
        cart=cart,
        reservations=reservations,
        warnings=stock_warnings(
            cart=cart, lines=cart_line_stock(cart=cart), reservations=reservations
        ),
    )
