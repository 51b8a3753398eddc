"""Which database errors mean "the connection was lost" (503 with ``Retry-After``) and
which are bugs (500). Behind PgBouncer a COMMIT on a server connection that died raises
psycopg's own ``InternalError``; ``pooled_checks.py`` produces that one for real, through a
real PgBouncer. Errors PostgreSQL reports (they carry an SQLSTATE) stay bugs."""

from __future__ import annotations

import psycopg
import pytest
from django.db import DatabaseError, IntegrityError, InternalError, OperationalError
from django.test import RequestFactory

from core.errors import api_exception_handler, database_unavailable
from core.middleware import ApiErrorMiddleware


def _wrapped(django_error: type[DatabaseError], cause: Exception) -> DatabaseError:
    """``django_error`` raised from ``cause``, as Django's error wrapper does."""
    try:
        raise django_error(str(cause)) from cause
    except DatabaseError as error:
        return error


LOST = [
    _wrapped(InternalError, psycopg.InternalError("received 2 results from command 'COMMIT'")),
    _wrapped(OperationalError, psycopg.errors.AdminShutdown("terminating connection")),
    OperationalError("server closed the connection unexpectedly"),
]
BUGS = [
    _wrapped(
        InternalError, psycopg.errors.InFailedSqlTransaction("current transaction is aborted")
    ),
    _wrapped(IntegrityError, psycopg.errors.UniqueViolation("duplicate key value")),
    InternalError("no cause"),
]


@pytest.mark.parametrize("error", LOST, ids=lambda e: repr(e)[:60])
def test_a_lost_connection_answers_503(error):
    assert database_unavailable(error)
    answer = api_exception_handler(error, {})
    assert (answer.status_code, answer["Retry-After"]) == (503, "1")
    request = RequestFactory().get("/api/v1/carts/")
    assert ApiErrorMiddleware(lambda r: None).process_exception(request, error).status_code == 503


@pytest.mark.parametrize("error", BUGS, ids=lambda e: repr(e)[:60])
def test_an_error_postgresql_reported_stays_a_500(error):
    assert not database_unavailable(error)
    assert api_exception_handler(error, {}) is None
    request = RequestFactory().get("/api/v1/carts/")
    assert ApiErrorMiddleware(lambda r: None).process_exception(request, error).status_code == 500
