"""Fixtures of the inventory tests."""

from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient


@pytest.fixture
def customer_client(customer_user) -> APIClient:
    """An API client signed in with a token as a customer (not staff)."""
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=customer_user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client
