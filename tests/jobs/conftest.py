"""Fixtures of the cleanup job tests; their helpers are in ``tests.support.jobs``."""

from __future__ import annotations

import pytest
import redis
from django.conf import settings


@pytest.fixture
def broker():
    """The test run's own Redis broker DB, emptied before and after."""
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def default_warehouse(transactional_db):
    """Transactional tests flush the database, data migrations' rows included."""
    from inventory.models import Warehouse

    warehouse, _ = Warehouse.objects.get_or_create(
        code="default", defaults={"name": "Default", "is_default": True}
    )
    return warehouse
