from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.support.factories import StaffFactory, UserFactory


@pytest.fixture(autouse=True)
def _payment_breaker_closed():
    """Every test starts with the payment gateway's circuit breaker closed (its state
    lives in Redis and would otherwise outlive the test)."""
    from payments import breaker

    breaker.reset()


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def staff_user(db):
    return StaffFactory()


@pytest.fixture
def staff_client(staff_user) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=staff_user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def customer_user(db):
    return UserFactory()
