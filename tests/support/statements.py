"""What each HTTP request of a checkout costs in SQL statements, by request name.

The single source of the figures: ``tests/checkout/test_request_statements.py`` pins them
(and checks the table of ``docs/performance.md`` shows the same), other tests use them as
bounds."""

from __future__ import annotations

REQUEST_STATEMENTS = {
    "create cart": 2,
    "add line": 8,
    "start checkout": 12,
    "get checkout": 4,
    "PATCH checkout": 7,
    # One more than v1: the high-demand check of the extension (SPEC §15).
    "PATCH checkout, extending the reservations": 11,
    "confirm": 32,
    "confirm, without an Idempotency-Key": 29,
}
