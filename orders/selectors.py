"""Reads of orders (no writes, no locks)."""

from __future__ import annotations

from uuid import UUID

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.contrib.postgres.expressions import ArraySubquery
from django.db.models import OuterRef, Prefetch, QuerySet, Subquery
from django.db.models.functions import JSONObject

from carts.tokens import token_matches
from inventory.models import Reservation
from orders.errors import OrderNotFound
from orders.models import Order, OrderItem
from orders.tokens import email_matches, order_token_matches
from payments.models import Payment


def items_for_output() -> QuerySet[OrderItem]:
    """Order items with their warehouse, ``first_reservation_id`` (the lowest id of the
    order's reservations of the item's product; ``Reservation.order`` is the link) and
    ``allocations`` (``{warehouse, quantity, reservation_id, strategy}`` of each of those
    reservations), in the same query."""
    first_reservation = (
        Reservation.objects.filter(order_id=OuterRef("order_id"), product_id=OuterRef("product_id"))
        .order_by("id")
        .values("id")[:1]
    )
    # Where the item is held: every reservation of the order for the product (one per
    # warehouse it was allocated to), in allocation order, as one array in the same row.
    allocations = (
        Reservation.objects.filter(order_id=OuterRef("order_id"), product_id=OuterRef("product_id"))
        .order_by("id")
        .values(
            json=JSONObject(
                warehouse="warehouse__code",
                quantity="quantity",
                reservation_id="id",
                strategy="allocation_strategy",
            )
        )
    )
    return (
        OrderItem.objects.select_related("warehouse")
        .annotate(
            first_reservation_id=Subquery(first_reservation),
            allocations=ArraySubquery(allocations),
        )
        .order_by("id")
    )


def orders_for_output() -> QuerySet[Order]:
    """Orders with what the order answer shows loaded: the cart (for its token), items
    with their warehouse and reservation id, and payments — three queries for any
    number of orders/lines."""
    return Order.objects.select_related("cart").prefetch_related(
        Prefetch("items", queryset=items_for_output()),
        Prefetch("payments", queryset=Payment.objects.order_by("-created_at")),
    )


def order_get(*, order_id: UUID | str) -> Order:
    """The order ready for ``OrderOutputSerializer``; :class:`OrderNotFound` if none
    (also for a malformed id)."""
    try:
        order_uuid = order_id if isinstance(order_id, UUID) else UUID(str(order_id))
    except ValueError:
        raise OrderNotFound() from None
    order = orders_for_output().filter(id=order_uuid).first()
    if order is None:
        raise OrderNotFound()
    return order


def order_get_for_viewer(
    *,
    order_id: UUID | str,
    cart_token: str | None,
    user: AbstractBaseUser | AnonymousUser | None,
    allow_staff: bool = True,
    order_token: str | None = None,
) -> Order:
    """The order if the viewer may see it: the holder of its cart's token or of an order
    lookup token for it (``order_token``), the customer who owns it, or staff. Anyone else
    gets :class:`OrderNotFound`, exactly as for an order that does not exist."""
    order = order_get(order_id=order_id)
    if not may_view_order(
        order=order, cart_token=cart_token, user=user, allow_staff=allow_staff
    ) and not order_token_matches(order_token, order_id=order.id):
        raise OrderNotFound()
    return order


def may_view_order(
    *,
    order: Order,
    cart_token: str | None,
    user: AbstractBaseUser | AnonymousUser | None,
    allow_staff: bool = True,
) -> bool:
    if user is not None and user.is_authenticated:
        if allow_staff and user.is_staff:
            return True
        if order.customer_id is not None and order.customer_id == user.pk:
            return True
    return token_matches(cart_token, order.cart.token_hash)


def order_lookup(*, number: str, email: str) -> Order:
    """The order with this number and email (case-insensitive), ready for
    ``OrderOutputSerializer``; :class:`OrderNotFound` when either half is wrong. The email
    is compared in constant time even when no order has the number, so neither the answer
    nor its time tells which half was wrong."""
    found = Order.objects.filter(number=number.strip().upper()).values_list("id", "email").first()
    order_id, stored_email = found if found is not None else (None, "")
    matched = email_matches(email, stored_email)
    if order_id is None or not matched:
        raise OrderNotFound()
    return order_get(order_id=order_id)


def order_list(*, status: str | None = None, number: str | None = None) -> QuerySet[Order]:
    """Orders for staff, newest first, optionally by status and (exact) number, with
    their timeline (``events``) prefetched."""
    qs = orders_for_output().prefetch_related("events").order_by("-created_at", "-id")
    if status:
        qs = qs.filter(status=status)
    if number:
        qs = qs.filter(number=number)
    return qs
