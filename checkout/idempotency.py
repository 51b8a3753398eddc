"""``Idempotency-Key`` of the confirm (API.md): one key, one request, one order.

A key is recorded when its confirm starts paying, bound to the order when the order is
written; the same key again replays that order, the same key with another request (a
different fingerprint) is a conflict. Runs under the caller's Cart lock.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from carts.models import Cart
from checkout.errors import IdempotencyConflict
from checkout.models import IdempotencyKey
from orders.models import Order

IDEMPOTENCY_KEY_MAX_LENGTH = 255


def request_fingerprint(*, method: str, path: str, body: Any) -> str:
    """SHA-256 of the request's method, path and (canonical JSON) body: the same
    ``Idempotency-Key`` with a different fingerprint is a conflict."""
    canonical = json.dumps(body if body is not None else {}, sort_keys=True, default=str)
    return hashlib.sha256(f"{method.upper()} {path}\n{canonical}".encode()).hexdigest()


def idempotency_key_of(*, cart: Cart, key: str, fingerprint: str) -> IdempotencyKey | None:
    """The cart's record of ``key`` (None if new); :class:`IdempotencyConflict` if it was
    used with another request. One query."""
    if not key:
        return None
    row = IdempotencyKey.objects.filter(cart=cart, key=key).first()
    if row is not None and row.fingerprint != fingerprint:
        raise IdempotencyConflict(details={"idempotency_key": key})
    return row


def record_idempotency_key(*, cart: Cart, key: str, fingerprint: str) -> None:
    IdempotencyKey.objects.create(cart=cart, key=key, fingerprint=fingerprint)


def bind_idempotency_key(*, cart: Cart, key: str, order: Order) -> None:
    """Binds ``key`` to the order it produced: the same key replays the order (201)."""
    if key:
        IdempotencyKey.objects.filter(cart=cart, key=key).update(order=order, response_status=201)
