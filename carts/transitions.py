"""The one function through which a cart's status changes (SPEC §1, issue 4.5).

    active    → checkout
    checkout  → active | completed | abandoned
    abandoned → checkout | active

Any other change raises :class:`InvalidCartStatus`. Each change is logged and counted.
The caller holds the Cart row lock (``carts.locks.lock_cart``) and saves the cart.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from carts.errors import InvalidCartStatus
from carts.models import Cart, CartStatus
from core import metrics

logger = logging.getLogger("carts.status")

ALLOWED: dict[str, frozenset[str]] = {
    CartStatus.ACTIVE: frozenset({CartStatus.CHECKOUT}),
    CartStatus.CHECKOUT: frozenset({CartStatus.ACTIVE, CartStatus.COMPLETED, CartStatus.ABANDONED}),
    CartStatus.ABANDONED: frozenset({CartStatus.CHECKOUT, CartStatus.ACTIVE}),
    CartStatus.COMPLETED: frozenset(),
}


def transition_cart(cart: Cart, to: str, *, actor: str, reason: str = "") -> list[str]:
    """Moves ``cart`` to status ``to`` in memory and returns the fields it changed (for
    ``save(update_fields=...)``). Refuses illegal transitions."""
    source = cart.status
    if to not in ALLOWED.get(source, frozenset()):
        raise InvalidCartStatus(source, f"A cart in status '{source}' cannot move to '{to}'")
    now = timezone.now()
    cart.status = to
    changed = ["status", "updated_at"]
    if to == CartStatus.CHECKOUT:
        cart.checkout_started_at = now
        cart.extensions_used = 0
        cart.abandoned_at = None
        changed += ["checkout_started_at", "extensions_used", "abandoned_at"]
        transaction.on_commit(metrics.carts_checkout_total.inc)
    elif to == CartStatus.COMPLETED:
        cart.completed_at = now
        cart.expires_at = None
        changed += ["completed_at", "expires_at"]
        transaction.on_commit(metrics.carts_completed_total.inc)
    elif to == CartStatus.ABANDONED:
        cart.abandoned_at = now
        cart.expires_at = None
        changed += ["abandoned_at", "expires_at"]
        label = reason or "unknown"
        transaction.on_commit(lambda: metrics.carts_abandoned_total.labels(reason=label).inc())
    elif to == CartStatus.ACTIVE:
        cart.expires_at = None
        cart.checkout_started_at = None
        cart.extensions_used = 0
        changed += ["expires_at", "checkout_started_at", "extensions_used"]
    logger.info(
        "cart.status_changed",
        extra={
            "event": "cart.status_changed",
            "cart_id": str(cart.id),
            "from_status": source,
            "to_status": to,
            "actor": actor,
            "reason": reason,
        },
    )
    return changed
