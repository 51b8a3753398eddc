"""What transaction pooling takes away, checked from inside a test run whose database
connection goes through PgBouncer with ``DATABASE_POOL_MODE=transaction``: the timeouts
on every server connection of the pool, no server-side cursor, no prepared statement, and
503 (not 500) for a COMMIT on a server connection that died.

Not collected by a plain ``pytest`` run (the name does not match ``test_*.py``):
``test_pooled_suite.py`` passes this file to the pytest run it starts behind PgBouncer,
together with the checkout, concurrency and sweeper test modules.
"""

from __future__ import annotations

import os
import threading
import time

import psycopg
import pytest
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext

from core.errors import api_exception_handler
from core.middleware import ApiErrorMiddleware
from inventory.models import Product
from tests.support.factories import ProductFactory

POOL_SIZE = int(os.environ.get("SCALEOUT_POOL_SIZE", "5"))


@pytest.fixture(autouse=True)
def _behind_the_transaction_pooler():
    """These checks mean something only behind the pooler: anywhere else they fail."""
    assert settings.DATABASE_POOL_MODE == "transaction", "run through test_pooled_suite.py"
    assert int(connection.settings_dict["PORT"]) == int(os.environ["SCALEOUT_PGBOUNCER_PORT"])


@pytest.mark.django_db(transaction=True)
def test_every_server_connection_of_the_pool_has_the_timeouts():
    """All the pool's server connections at once (each thread holds a transaction open
    until every other one has one): each has lock_timeout and statement_timeout, which
    the settings no longer send as startup parameters."""
    barrier = threading.Barrier(POOL_SIZE, timeout=30)
    seen: list[tuple[int, str, str]] = []
    errors: list[BaseException] = []

    def hold_one() -> None:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_backend_pid(), current_setting('lock_timeout'),"
                    " current_setting('statement_timeout')"
                )
                seen.append(cursor.fetchone())
                barrier.wait()
        except BaseException as error:  # reported below, from the test's thread
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=hold_one) for _ in range(POOL_SIZE)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert len({pid for pid, _, _ in seen}) == POOL_SIZE
    assert {(lock, statement) for _, lock, statement in seen} == {("5s", "1min")}
    assert "options" not in connection.settings_dict["OPTIONS"]


@pytest.mark.django_db(transaction=True)
def test_iterating_a_queryset_declares_no_server_side_cursor():
    """A ``WITH HOLD`` cursor lives in one server session; the next FETCH could reach
    another one. Outside a transaction (autocommit), where Django would declare one."""
    ProductFactory.create_batch(5)
    assert connection.settings_dict["DISABLE_SERVER_SIDE_CURSORS"] is True
    with CaptureQueriesContext(connection) as queries:
        skus = [product.sku for product in Product.objects.iterator(chunk_size=2)]
    assert len(skus) == 5
    assert not [q["sql"] for q in queries if "DECLARE" in q["sql"].upper()]


@pytest.mark.django_db
def test_no_statement_is_prepared_on_the_server():
    """psycopg prepares a statement run often enough on one connection unless the cursor
    binds client-side; a prepared statement lives in one server session. Inside one
    transaction (one server session) the same query runs many times, and the session
    holds no prepared statement."""
    ProductFactory.create_batch(2)
    for _ in range(20):
        assert Product.objects.filter(price__gte=0).count() == 2
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements")
        assert cursor.fetchone()[0] == 0


@pytest.mark.django_db(transaction=True)
def test_a_commit_after_the_server_connection_died_answers_503():
    """The server connection under an open transaction dies (a restart, a terminated
    backend) before the COMMIT. Directly, psycopg raises ``OperationalError``; behind
    PgBouncer, the server's error and the pooler's arrive as two results of the COMMIT and
    psycopg raises ``InternalError``. Either way the API answers 503 with ``Retry-After``
    (a database outage), never 500."""
    server = psycopg.connect(os.environ["SCALEOUT_SERVER_URL"], autocommit=True)
    with server, pytest.raises(DatabaseError) as raised, transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            [pid] = cursor.fetchone()
        assert server.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone()[0]
        deadline = time.monotonic() + 10
        while server.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone():
            assert time.monotonic() < deadline, "the backend did not go away"
            time.sleep(0.05)

    answer = api_exception_handler(raised.value, {})
    assert answer is not None, f"{raised.value!r} would answer 500"
    assert (answer.status_code, answer["Retry-After"]) == (503, "1")
    assert answer.data["error"]["code"] == "SERVICE_UNAVAILABLE"
    request = RequestFactory().post("/api/v1/carts/")
    outside_drf = ApiErrorMiddleware(lambda request: None).process_exception(request, raised.value)
    assert outside_drf.status_code == 503
