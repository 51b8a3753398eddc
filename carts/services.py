"""Writes of carts: create a cart and edit its lines.

Lines can be edited only while the cart is ``active`` or ``abandoned`` (a shopper coming
back to an abandoned cart makes it ``active`` again). During checkout the only edit is
removing a line, which also releases that line's reservation. Every change locks the
Cart row first (``carts.locks.lock_cart``); stock changes go through
``inventory.services``, which then locks stock rows.
"""

from __future__ import annotations

from uuid import UUID

import pycountry
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from carts import transitions
from carts.errors import InvalidCartStatus, QuantityLimitExceeded
from carts.locks import CartCheck, lock_cart
from carts.models import Cart, CartItem, CartStatus
from carts.tokens import hash_token, new_token
from core import metrics
from core.errors import NotFound, ValidationFailed
from inventory import services as inventory
from inventory.errors import ProductNotFound, WarehouseNotFound
from inventory.models import Product, ReleaseReason, Reservation, ReservationStatus, Warehouse
from payments.models import Payment

MAX_LINE_QUANTITY = 1000
EDITABLE_STATUSES = frozenset({CartStatus.ACTIVE, CartStatus.ABANDONED})


def is_currency(code: str) -> bool:
    return len(code) == 3 and code.isupper() and pycountry.currencies.get(alpha_3=code) is not None


def create_cart(
    *, currency: str | None = None, customer: AbstractBaseUser | None = None
) -> tuple[Cart, str]:
    """Creates an empty ``active`` cart and returns it with its secret token (only the
    token's hash is stored). A logged-in customer owns the cart."""
    token = new_token()
    cart = Cart(token_hash=hash_token(token), customer=customer)
    if currency:
        if not is_currency(currency):
            raise ValidationFailed({"currency": ["Not an ISO 4217 currency code."]})
        cart.currency = currency
    cart.save()
    return cart, token


def _require_editable(cart: Cart) -> None:
    if cart.status not in EDITABLE_STATUSES:
        raise InvalidCartStatus(
            cart.status, f"Items cannot be changed while the cart is '{cart.status}'"
        )


def _reopen(cart: Cart, *, actor: str) -> None:
    """An edit of an abandoned cart brings it back to ``active``; the edit touches the
    cart's ``updated_at`` either way."""
    if cart.status == CartStatus.ABANDONED:
        fields = transitions.transition_cart(cart, CartStatus.ACTIVE, actor=actor, reason="edited")
        cart.save(update_fields=fields)
    else:
        cart.save(update_fields=["updated_at"])


def refuse_while_paying(cart: Cart) -> None:
    """A cart whose confirm is paying right now must not lose its reservations or lines:
    the payment would be captured for stock no longer held. The caller holds the cart
    lock, under which confirm records its in-flight payment, so the check cannot race."""
    if (
        cart.status == CartStatus.CHECKOUT
        and Payment.objects.in_flight().filter(cart_id=cart.id).exists()
    ):
        raise InvalidCartStatus(cart.status, "A payment for this cart is in progress")


def _check_quantity(quantity: int) -> None:
    if not 1 <= quantity <= MAX_LINE_QUANTITY:
        raise ValidationFailed(
            {"quantity": [f"The quantity of a line must be between 1 and {MAX_LINE_QUANTITY}."]}
        )


def check_line_limit(product: Product, quantity: int) -> None:
    """A line of ``quantity`` units of ``product`` must stay within the product's
    ``max_per_order`` (SPEC §15; null: no limit): else :class:`QuantityLimitExceeded`,
    counted in ``purchase_limit_refusals_total{kind="per_order"}``. Checked when a line
    is added or changed, and again when checkout starts (a limit set since)."""
    if product.max_per_order is not None and quantity > product.max_per_order:
        metrics.purchase_limit_refusals_total.labels(kind="per_order").inc()
        raise QuantityLimitExceeded(product.sku, product.max_per_order)


def _warehouse(code: str) -> Warehouse:
    warehouse = Warehouse.objects.filter(code=code).first()
    if warehouse is None:
        raise WarehouseNotFound(details={"warehouse": code})
    return warehouse


def add_item(
    *,
    cart_id: UUID,
    sku: str,
    quantity: int,
    warehouse: str | None = None,
    actor: str,
    authorize: CartCheck | None = None,
) -> CartItem:
    """Adds ``quantity`` of the product ``sku`` to the cart; the same product again adds
    to its line (one line per product). With ``warehouse`` the line is pinned to that
    warehouse; without, it is unpinned (``warehouse`` null) and checkout allocates it
    over the active warehouses. The line's quantity stays within 1..1000 and the
    product's currency must be the cart's, and the line within the product's
    ``max_per_order`` (:func:`check_line_limit`). ``item.cart`` is the cart as changed.
    ``authorize`` is checked on the locked cart (see ``carts.locks.lock_cart``), as in
    every function here. Locks: the cart."""
    _check_quantity(quantity)
    with transaction.atomic():
        cart = lock_cart(cart_id, authorize=authorize)
        _require_editable(cart)
        product = Product.objects.filter(sku=sku).first()
        if product is None:
            raise ProductNotFound(details={"sku": sku})
        if product.currency != cart.currency:
            raise ValidationFailed(
                {
                    "sku": [
                        f"The product is priced in {product.currency}; "
                        f"the cart is in {cart.currency}."
                    ]
                }
            )
        item = (
            CartItem.objects.select_related("warehouse")
            .filter(cart_id=cart.id, product_id=product.id)
            .first()
        )
        if item is None:
            check_line_limit(product, quantity)
            # Without a warehouse the line is unpinned: any active warehouse may serve it.
            warehouse_id = _warehouse(warehouse).id if warehouse else None
            item = CartItem(
                cart=cart, product=product, warehouse_id=warehouse_id, quantity=quantity
            )
            item.save()
        else:
            if warehouse and warehouse != (item.warehouse.code if item.warehouse else None):
                held_from = (
                    f"from warehouse '{item.warehouse.code}'"
                    if item.warehouse
                    else "from any warehouse"
                )
                raise ValidationFailed(
                    {"warehouse": [f"The product is already in the cart {held_from}."]}
                )
            if item.quantity + quantity > MAX_LINE_QUANTITY:
                raise ValidationFailed(
                    {
                        "quantity": [
                            f"The line would hold {item.quantity + quantity}; "
                            f"at most {MAX_LINE_QUANTITY} are allowed."
                        ]
                    }
                )
            check_line_limit(product, item.quantity + quantity)
            item.quantity += quantity
            item.save(update_fields=["quantity", "updated_at"])
            item.cart = cart
        _reopen(cart, actor=actor)
        return item


def _cart_item(cart: Cart, item_id: int) -> CartItem:
    item = CartItem.objects.select_related("product").filter(cart_id=cart.id, id=item_id).first()
    if item is None:
        raise NotFound("Cart item not found", details={"item_id": item_id})
    return item


def update_item(
    *,
    cart_id: UUID,
    item_id: int,
    quantity: int,
    actor: str,
    authorize: CartCheck | None = None,
) -> CartItem:
    """Sets the quantity of a line (1..1000, and within the product's ``max_per_order``:
    :func:`check_line_limit`), only while the cart is ``active`` or ``abandoned``;
    ``item.cart`` is the cart as changed. Locks: the cart."""
    _check_quantity(quantity)
    with transaction.atomic():
        cart = lock_cart(cart_id, authorize=authorize)
        _require_editable(cart)
        item = _cart_item(cart, item_id)
        item.cart = cart
        check_line_limit(item.product, quantity)
        if item.quantity != quantity:
            item.quantity = quantity
            item.save(update_fields=["quantity", "updated_at"])
        _reopen(cart, actor=actor)
        return item


def remove_item(
    *, cart_id: UUID, item_id: int, actor: str, authorize: CartCheck | None = None
) -> Cart:
    """Removes a line and releases that line's pending reservations, in every warehouse
    (reason ``item_removed``): in ``checkout`` the checkout goes on with the other lines
    (removing the last line ends the checkout and the cart goes back to ``active``: an
    empty cart has nothing to check out); in an ``active`` cart the line's hold is a
    waitlist offer, which passes to the next entry at once (SPEC §15). Refused on a
    ``completed`` cart.
    Locks: the cart, then (through the reservation service) the line's stock row."""
    with transaction.atomic():
        cart = lock_cart(cart_id, authorize=authorize)
        if cart.status == CartStatus.COMPLETED:
            raise InvalidCartStatus(cart.status, "Items of a completed cart cannot be changed")
        item = _cart_item(cart, item_id)
        if cart.status == CartStatus.CHECKOUT:
            refuse_while_paying(cart)
        # One line per product: every pending hold of the product is this line's, in
        # whichever warehouses it was allocated.
        held = list(
            Reservation.objects.filter(
                cart_id=cart.id,
                product_id=item.product_id,
                status=ReservationStatus.PENDING,
            ).values_list("id", flat=True)
        )
        inventory.release(reservation_ids=held, reason=ReleaseReason.ITEM_REMOVED, actor=actor)
        item.delete()
        if (
            cart.status == CartStatus.CHECKOUT
            and not CartItem.objects.filter(cart_id=cart.id).exists()
        ):
            fields = transitions.transition_cart(
                cart, CartStatus.ACTIVE, actor=actor, reason="emptied"
            )
            cart.save(update_fields=fields)
        else:
            _reopen(cart, actor=actor)
        return cart
