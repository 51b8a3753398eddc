"""Shopper cart tokens: a random secret given once, stored only as its SHA-256."""

from __future__ import annotations

import hashlib
import hmac
import secrets


def new_token() -> str:
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_matches(token: str | None, token_hash: str) -> bool:
    """Constant-time comparison of a presented token with the stored hash."""
    if not token:
        return False
    return hmac.compare_digest(hash_token(token), token_hash)
