"""Fixtures of the inventory tests."""

from __future__ import annotations

import logging

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


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def check_log():
    """The warnings ``check_inventory`` logs (logger ``inventory.check``) during a test."""
    handler = _Records()
    logger = logging.getLogger("inventory.check")
    logger.addHandler(handler)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)
