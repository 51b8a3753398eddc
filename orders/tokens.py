"""Order lookup tokens: what ``POST orders/lookup/`` hands a shopper who proved the order
number and email, to read that order later (``X-Order-Token`` on ``GET orders/{id}/``).

A token is the order id signed with ``SECRET_KEY`` (``django.core.signing``, salted for
this use only) and timestamped: nothing is stored, it reads exactly one order, and it
stops working after ``ORDER_LOOKUP_TOKEN_MAX_AGE_SECONDS`` or when ``SECRET_KEY`` changes.
"""

from __future__ import annotations

import hmac
from uuid import UUID

from django.conf import settings
from django.core import signing

ORDER_TOKEN_HEADER = "X-Order-Token"  # noqa: S105 - a header name, not a secret
_SALT = "orders.lookup-token"


def issue_order_token(*, order_id: UUID) -> str:
    return signing.dumps(str(order_id), salt=_SALT, compress=False)


def order_token_matches(token: str | None, *, order_id: UUID) -> bool:
    """Whether ``token`` was issued for ``order_id`` and has not expired."""
    if not token:
        return False
    try:
        signed_id = signing.loads(
            token, salt=_SALT, max_age=settings.ORDER_LOOKUP_TOKEN_MAX_AGE_SECONDS
        )
    except signing.BadSignature:  # also SignatureExpired
        return False
    return isinstance(signed_id, str) and hmac.compare_digest(signed_id, str(order_id))


def email_matches(given: str, stored: str) -> bool:
    """Case-insensitive comparison in constant time; an order without an email matches
    nothing."""
    given_key = given.strip().casefold().encode()
    stored_key = stored.strip().casefold().encode()
    same = hmac.compare_digest(given_key, stored_key)
    return same and bool(stored_key)
