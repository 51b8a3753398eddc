"""Fixtures of the scale-out tests: one real PgBouncer (transaction pooling) for the
session, in front of the shared PostgreSQL server."""

from __future__ import annotations

import pytest
from django.conf import settings

from tests.scaleout.pgbouncer import PgBouncer


@pytest.fixture(scope="session")
def pgbouncer(django_db_setup):
    """Started after the test database exists and stopped before it is dropped: PgBouncer
    keeps idle server connections to it, which would make ``DROP DATABASE`` fail."""
    server = settings.DATABASES["default"]
    bouncer = PgBouncer(
        server_host=server.get("HOST") or "127.0.0.1",
        server_port=int(server.get("PORT") or 5432),
        user=server.get("USER") or "postgres",
    )
    bouncer.start()
    try:
        yield bouncer
    finally:
        bouncer.stop()
