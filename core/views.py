"""Health check: is the database reachable, is the broker reachable."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from kombu import Connection

logger = logging.getLogger("core.health")


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return True
    except Exception as exc:  # any failure means "not ok"; the reason goes to the log
        logger.warning("health: database unavailable: %s", exc)
        return False


def _broker_ok() -> bool:
    try:
        with Connection(settings.CELERY_BROKER_URL, connect_timeout=2) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return True
    except Exception as exc:
        logger.warning("health: broker unavailable: %s", exc)
        return False


def healthz(request: HttpRequest) -> JsonResponse:
    """200 while the database answers (the broker is reported, not required: checkouts
    work without it and cleanup catches up later); 503 when the database is down."""
    database = _database_ok()
    body = {
        "status": "ok" if database else "unavailable",
        "database": "ok" if database else "unavailable",
        "broker": "ok" if _broker_ok() else "unavailable",
    }
    return JsonResponse(body, status=200 if database else 503)
