"""The checkout use-cases on the cart (the quote): start, get, update, cancel, abandon.

Locks: every change locks the Cart row first (``carts.locks.lock_cart``); stock and
reservations change only through ``inventory.services``, which then locks stock rows in
ascending pk order and reservations after them. Nothing here talks to the network.

Time: a checkout whose ``expires_at`` is at or before now has expired. Reading or
updating it cleans it up (lapsed reservations expired, the rest released, cart
``abandoned``) in a transaction of its own that commits before ``CheckoutExpired`` is
raised, so the cleanup survives the error answer.

With ``ENABLE_PRE_RESERVATION`` off, start only validates stock: no reservation is made,
``expires_at`` stays null, the checkout never expires on read and is never extended, and
confirm must reserve the lines itself.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import transaction
from django.db.models import Prefetch, prefetch_related_objects
from django.utils import timezone

from carts import transitions
from carts.errors import CartEmpty, InvalidCartStatus
from carts.locks import CartCheck, lock_cart
from carts.models import Cart, CartStatus
from carts.selectors import cart_items_queryset, cart_line_stock
from carts.services import refuse_while_paying
from checkout.errors import CheckoutExpired
from checkout.holds import ensure_live_holds
from checkout.limits import check_order_limits, customer_limit
from checkout.selectors import pending_reservations
from core import metrics
from inventory import services as inventory
from inventory.errors import InsufficientStock
from inventory.models import ReleaseReason

STARTABLE_STATUSES = frozenset({CartStatus.ACTIVE, CartStatus.ABANDONED})
UPDATABLE_FIELDS = (
    "email",
    "shipping_address",
    "billing_address",
    "payment_method",
    "shipping_method_id",
    "current_step",
)


def is_expired(cart: Cart, *, now: datetime | None = None) -> bool:
    """A checkout with reservations lapses at ``expires_at``; one without (pre-reservation
    off) has no expiry."""
    return cart.expires_at is not None and cart.expires_at <= (now or timezone.now())


def _require_checkout(cart: Cart) -> None:
    if cart.status != CartStatus.CHECKOUT:
        raise InvalidCartStatus(cart.status, f"The cart is not in checkout (it is '{cart.status}')")


def _load_items(cart: Cart) -> list:
    prefetch_related_objects([cart], Prefetch("items", queryset=cart_items_queryset()))
    return list(cart.items.all())


def _abandon_locked(cart: Cart, *, reason: str, actor: str) -> None:
    """Ends a checkout whose Cart row the caller has locked: lapsed reservations expire,
    the others are released (``checkout_abandoned``), the cart becomes ``abandoned``."""
    now = timezone.now()
    held = pending_reservations(cart_id=cart.id)
    inventory.expire(reservation_ids=[r.id for r in held if r.expires_at <= now], actor=actor)
    inventory.release(
        reservation_ids=[r.id for r in held if r.expires_at > now],
        reason=ReleaseReason.CHECKOUT_ABANDONED,
        actor=actor,
    )
    fields = transitions.transition_cart(cart, CartStatus.ABANDONED, actor=actor, reason=reason)
    cart.save(update_fields=fields)


def abandon_checkout(*, cart_id: UUID, reason: str, actor: str) -> bool:
    """Abandons the cart's checkout: locks the cart, expires its lapsed pending
    reservations and releases the others, marks it ``abandoned`` (``reason`` labels the
    log line and the ``carts_abandoned_total`` metric, e.g. ``expired`` or ``stale``).

    Returns True if this call abandoned it, False if the cart was no longer in checkout
    (already completed, cancelled or abandoned: safe to call twice, from many workers).
    The caller decides which carts are due; this function does not re-check expiry.
    Locks: the cart, then stock rows and reservations through the reservation service.
    """
    with transaction.atomic():
        cart = lock_cart(cart_id)
        if cart.status != CartStatus.CHECKOUT:
            return False
        _abandon_locked(cart, reason=reason, actor=actor)
        return True


def _abandon_if_expired(cart_id: UUID, *, actor: str) -> bool:
    """Cleans up an expired checkout in a transaction of its own; True if it did."""
    with transaction.atomic():
        cart = lock_cart(cart_id)
        if cart.status != CartStatus.CHECKOUT or not is_expired(cart):
            return False
        _abandon_locked(cart, reason="expired", actor=actor)
        return True


def _count_validation(ok: bool) -> None:
    metrics.stock_validations_total.labels(outcome="ok" if ok else "insufficient").inc()


def _start_locked(cart: Cart, *, actor: str) -> tuple[Cart, bool]:
    if cart.status == CartStatus.CHECKOUT:
        return cart, False
    if cart.status not in STARTABLE_STATUSES:
        raise InvalidCartStatus(
            cart.status, f"Checkout cannot start on a cart in status '{cart.status}'"
        )
    items = _load_items(cart)
    if not items:
        raise CartEmpty()
    check_order_limits(items)  # a max_per_order set since the lines were added
    limit = customer_limit(cart=cart, items=items)
    restart = cart.status == CartStatus.ABANDONED
    # A restart gets new reservations; anything an earlier checkout still holds goes back.
    # A waitlist offer held for the cart is not a leftover: starting checkout uses it.
    leftovers = pending_reservations(cart_id=cart.id)
    offered = [r for r in leftovers if r.waitlist_entry_id]
    inventory.release(
        reservation_ids=[r.id for r in leftovers if not r.waitlist_entry_id],
        reason=ReleaseReason.CHECKOUT_ABANDONED,
        actor=actor,
    )
    expires_at = None
    if settings.ENABLE_PRE_RESERVATION:
        try:
            holds = ensure_live_holds(
                cart_id=cart.id,
                items=items,
                ttl_seconds=settings.CHECKOUT_RESERVATION_TTL_SECONDS,
                actor=actor,
                pending=offered,  # the other leftovers were just released
                scarcity_ttl_seconds=settings.SCARCITY_TTL_SECONDS,
                limit_check=limit.limit_check,
                serialize_products=limit.serialize_products,
            )
        except InsufficientStock:
            _count_validation(False)
            raise
        expires_at = min(r.expires_at for r in holds.all)
    else:
        if limit.limit_check is not None:
            # Nothing is held yet: an early answer; confirm checks again under the locks.
            limit.limit_check({item.product_id: item.quantity for item in items})
        short = [line for line in cart_line_stock(cart=cart) if not line.ok]
        if short:
            _count_validation(False)
            metrics.stock_out_of_stock_total.inc(len(short))
            raise InsufficientStock(
                [
                    {
                        "product_id": str(line.item.product_id),
                        "sku": line.item.product.sku,
                        "warehouse": line.item.warehouse.code if line.item.warehouse else None,
                        "available": line.available,
                        "requested": line.requested,
                    }
                    for line in short
                ]
            )
    _count_validation(True)
    fields = transitions.transition_cart(
        cart, CartStatus.CHECKOUT, actor=actor, reason="restarted" if restart else "started"
    )
    cart.expires_at = expires_at
    cart.save(update_fields=[*fields, "expires_at"])
    return cart, True


def start_checkout(
    *, cart_id: UUID, actor: str, authorize: CartCheck | None = None
) -> tuple[Cart, bool]:
    """Starts checkout on an ``active`` or ``abandoned`` (restart) cart with items: all
    lines are reserved or none (:class:`InsufficientStock` lists every short line, and the
    cart stays as it was), for ``CHECKOUT_RESERVATION_TTL_SECONDS`` (``SCARCITY_TTL_SECONDS``
    if that is shorter and a line is in high demand, SPEC §15); the cart goes to
    ``checkout`` with ``expires_at`` equal to the reservations' expiry.

    Purchase limits (SPEC §15, ``checkout.limits``): a line above its product's
    ``max_per_order`` is refused (``QuantityLimitExceeded``); a customer's cart over a
    product's ``max_per_customer`` is refused (``PurchaseLimitReached``), checked under
    the stock row locks of the reservation. Either leaves the cart as it was.

    Returns the cart and whether this call started the checkout: a cart already in
    checkout is returned as it is (no second set of reservations); one whose checkout has
    expired is cleaned up (committed) and started afresh. ``authorize`` is checked on the
    locked cart (``carts.locks.lock_cart``), as in every function here that takes it.
    Locks: the cart, then stock rows.
    """
    with transaction.atomic():
        cart = lock_cart(cart_id, authorize=authorize)
        if not (cart.status == CartStatus.CHECKOUT and is_expired(cart)):
            return _start_locked(cart, actor=actor)
        _abandon_locked(cart, reason="expired", actor=actor)
    with transaction.atomic():
        return _start_locked(lock_cart(cart_id, authorize=authorize), actor=actor)


def get_checkout(*, cart: Cart, actor: str) -> Cart:
    """Checks that ``cart`` (as read, unlocked) may show its checkout state:
    :class:`InvalidCartStatus` if it is not in checkout; if its checkout has expired it
    is cleaned up (committed) and :class:`CheckoutExpired` is raised."""
    _require_checkout(cart)
    if not is_expired(cart):
        return cart
    if _abandon_if_expired(cart.id, actor=actor):
        raise CheckoutExpired()
    # Another request changed the cart between our read and the lock: answer for what it
    # is now (a concurrent cleanup of the same expiry still answers 410).
    cart.refresh_from_db(fields=["status", "expires_at"])
    if cart.status == CartStatus.ABANDONED:
        raise CheckoutExpired()
    _require_checkout(cart)
    return cart


def _extend_locked(cart: Cart, *, now: datetime, actor: str) -> None:
    """Re-validates and extends the checkout of a locked cart: lines whose reservations
    are gone or no longer hold them (released by staff, or lapsed and reclaimed) are
    allocated again (or :class:`InsufficientStock`), then every reservation of every line,
    in every warehouse it is held in, expires at ``now + CHECKOUT_EXTENSION_TTL_SECONDS``
    (``SCARCITY_TTL_SECONDS`` ahead at most, when a line is in high demand). A line
    held again is subject to the customer's purchase limits, like at start."""
    items = _load_items(cart)
    limit = customer_limit(cart=cart, items=items)
    try:
        holds = ensure_live_holds(
            cart_id=cart.id,
            items=items,
            ttl_seconds=settings.CHECKOUT_EXTENSION_TTL_SECONDS,
            actor=actor,
            limit_check=limit.limit_check,
            serialize_products=limit.serialize_products,
        )
    except InsufficientStock:
        _count_validation(False)
        raise
    _count_validation(True)
    expires_at = now + timedelta(seconds=settings.CHECKOUT_EXTENSION_TTL_SECONDS)
    extended = inventory.extend(
        reservation_ids=[r.id for r in holds.all],
        expires_at=expires_at,
        actor=actor,
        scarcity_ttl_seconds=settings.SCARCITY_TTL_SECONDS,
    )
    if extended:
        # A scarcity hold is shorter (SPEC §15): the cart expires with its holds.
        expires_at = min(r.expires_at for r in extended)
    cart.expires_at = expires_at
    cart.extensions_used += 1


def update_checkout(
    *,
    cart_id: UUID,
    changes: dict[str, Any],
    actor: str,
    authorize: CartCheck | None = None,
) -> Cart:
    """Saves checkout data (any of ``UPDATABLE_FIELDS``) on a cart in checkout.

    Shopper activity keeps the reservations alive: when less than
    ``CHECKOUT_EXTENSION_THRESHOLD_SECONDS`` remain and fewer than
    ``CHECKOUT_MAX_EXTENSIONS`` extensions were used, the lines are re-validated and all
    pending reservations extended (see :func:`_extend_locked`); past the limit the data is
    still saved and the expiry stays. An expired checkout is cleaned up (committed) and
    :class:`CheckoutExpired` raised. Locks: the cart, then stock rows and reservations.
    """
    unknown = set(changes) - set(UPDATABLE_FIELDS)
    if unknown:
        raise ValueError(f"not checkout fields: {sorted(unknown)}")
    with transaction.atomic():
        cart = lock_cart(cart_id, authorize=authorize)
        _require_checkout(cart)
        now = timezone.now()
        expired = is_expired(cart, now=now)
        if expired:
            _abandon_locked(cart, reason="expired", actor=actor)
        else:
            for field, value in changes.items():
                setattr(cart, field, value)
            fields = [*changes, "updated_at"]
            due = cart.expires_at is not None and cart.expires_at - now < timedelta(
                seconds=settings.CHECKOUT_EXTENSION_THRESHOLD_SECONDS
            )
            if due and cart.extensions_used < settings.CHECKOUT_MAX_EXTENSIONS:
                _extend_locked(cart, now=now, actor=actor)
                fields += ["expires_at", "extensions_used"]
            cart.save(update_fields=fields)
    if expired:
        raise CheckoutExpired()
    return cart


def return_to_active(*, cart: Cart, reason: str, actor: str, why: str) -> None:
    """Releases the cart's pending reservations (``reason``) and moves it back to
    ``active`` (``why`` labels the transition); the caller holds the Cart lock. Used when
    a confirm cannot go on (stock short, payment failed)."""
    inventory.release(
        reservation_ids=[r.id for r in pending_reservations(cart_id=cart.id)],
        reason=reason,
        actor=actor,
    )
    if cart.status == CartStatus.CHECKOUT:
        changed = transitions.transition_cart(cart, CartStatus.ACTIVE, actor=actor, reason=why)
        cart.save(update_fields=changed)


def cancel_checkout(*, cart_id: UUID, actor: str, authorize: CartCheck | None = None) -> Cart:
    """The shopper backs out: the cart's pending reservations are released
    (``checkout_cancelled``) and the cart goes back to ``active`` with its data kept.
    Locks: the cart, then stock rows and reservations."""
    with transaction.atomic():
        cart = lock_cart(cart_id, authorize=authorize)
        _require_checkout(cart)
        refuse_while_paying(cart)
        inventory.release(
            reservation_ids=[r.id for r in pending_reservations(cart_id=cart.id)],
            reason=ReleaseReason.CHECKOUT_CANCELLED,
            actor=actor,
        )
        fields = transitions.transition_cart(
            cart, CartStatus.ACTIVE, actor=actor, reason="cancelled"
        )
        cart.save(update_fields=fields)
        return cart
