"""PostgreSQL-side fault injection for tests: a second, raw connection that takes table
locks so that a chosen statement of the code under test waits, finds the waiting
backend and terminates it with ``pg_terminate_backend`` (what a crashed or restarted
database does to a session)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
from django.db import connection


def database_url() -> str:
    """The URL of the test database, for a ``manage.py`` subprocess."""
    s = connection.settings_dict
    auth = s["USER"] or "postgres"
    if s["PASSWORD"]:
        auth += f":{s['PASSWORD']}"
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def raw_connection() -> psycopg.Connection:
    """An autocommit connection to the test database, outside Django."""
    s = connection.settings_dict
    return psycopg.connect(
        dbname=s["NAME"],
        host=s["HOST"] or "127.0.0.1",
        port=s["PORT"] or 5432,
        user=s["USER"] or "postgres",
        password=s["PASSWORD"] or None,
        autocommit=True,
        connect_timeout=5,
    )


def wait_for_backend(
    conn: psycopg.Connection,
    *,
    query_like: str = "%",
    wait_event_type: str = "Lock",
    wait_event: str = "%",
    timeout: float = 10.0,
) -> int:
    """The pid of the backend of this database whose current statement matches
    ``query_like`` (SQL LIKE, case-insensitive) and that waits on ``wait_event_type``
    (and ``wait_event``, e.g. ``advisory``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = conn.execute(
            """
            SELECT pid FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid()
               AND wait_event_type = %s AND wait_event LIKE %s AND query ILIKE %s
            """,
            [wait_event_type, wait_event, query_like],
        ).fetchone()
        if row:
            return row[0]
        time.sleep(0.01)
    raise AssertionError(f"no backend waiting on {wait_event_type} with {query_like!r}")


def wait_until_gone(conn: psycopg.Connection, pid: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not conn.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone():
            return
        time.sleep(0.02)
    raise AssertionError(f"backend {pid} is still there")


def terminate(conn: psycopg.Connection, pid: int) -> None:
    assert conn.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone()[0]
    wait_until_gone(conn, pid)


class InThread:
    """Runs ``fn`` in a thread with its own Django connection (closed at the end)."""

    def __init__(self, fn: Callable[[], Any]):
        self.result: Any = None
        self.error: BaseException | None = None

        def run() -> None:
            try:
                self.result = fn()
            except BaseException as exc:
                self.error = exc
            finally:
                connection.close()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def join(self, timeout: float = 30.0) -> Any:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the request did not finish"
        if self.error is not None:
            raise self.error
        return self.result
