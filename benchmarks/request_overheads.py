"""What the small per-request costs of the configuration add up to: CPU per call of the
connection health check, of a JSON log line, and of an ORM read under three database
configurations, in one process with the production settings.

The figures of ``docs/performance.md`` ("Against the peer", the levers) that no load
benchmark can show, being smaller than its run-to-run noise. Each measurement repeats the
call ``--calls`` times after 200 unmeasured ones and prints this process's CPU
(``time.process_time``) and the CPU of the PostgreSQL backend serving it (``/proc``) per
call:

* ``health check`` — ``connection.is_usable()``, the ``SELECT 1`` that
  ``CONN_HEALTH_CHECKS`` sends at each request's first query;
* ``JSON log line`` — one line shaped like a reservation event, through the project's
  formatter and request-id filter, into memory;
* ``statement`` — ``SELECT %s`` through Django's cursor, on the project's connection
  (django-prometheus's backend: a counter and a histogram per statement) and on one with
  Django's own PostgreSQL backend, both binding client-side;
* ``ORM read`` — a join of stock, product and warehouse, then a product id lookup (two
  queries; figures are per query), on three connections to the same database: the
  project's (django-prometheus's backend, client-side binding), Django's own PostgreSQL
  backend (client-side binding), and the project's with ``server_side_binding`` +
  ``prepare_threshold=2`` (prepared statements: what ``DATABASE_PREPARED_STATEMENTS`` turns
  on). ``--rounds`` rounds, alternating the three.

Metrics are written as in production, to a ``PROMETHEUS_MULTIPROC_DIR`` (a temporary
one unless set). Its own database (``--database``, default ``checkout_overheads`` on the server of
``DATABASE_URL``; dropped and re-created). Run from the repository root::

    .venv/bin/python benchmarks/request_overheads.py
"""

from __future__ import annotations

import argparse
import copy
import io
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import procstat  # noqa: E402
from benchmarks.dbsetup import recreate_database, setup_django, with_database  # noqa: E402


def measure(name: str, alias: str, call: Callable[[], None], calls: int, per: int = 1) -> None:
    """Prints the CPU of this process and of ``alias``'s backend per call of ``call``
    (each call making ``per`` of what is counted)."""
    from django.db import connections

    connection = connections[alias]
    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    for _ in range(200):
        call()
    cpu0, backend0 = time.process_time(), procstat.cpu_seconds(backend)
    for _ in range(calls):
        call()
    cpu1, backend1 = time.process_time(), procstat.cpu_seconds(backend)
    n = calls * per
    print(
        f"  {name:<78} this process {1e6 * (cpu1 - cpu0) / n:7.1f} µs"
        f"   PostgreSQL backend {1e6 * (backend1 - backend0) / n:7.1f} µs"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database", default="checkout_overheads")
    args = parser.parse_args()

    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/checkout")
    url = with_database(base, args.database)
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="overheads-metrics-")
    recreate_database(url)
    setup_django()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connections

    from core.logging import JsonFormatter, RequestIdFilter
    from inventory.models import Product, StockLevel, Warehouse
    from inventory.services import set_stock

    call_command("migrate", verbosity=0)
    product = Product.objects.create(sku="OVERHEAD-1", name="x", price=Decimal("1.00"))
    set_stock(
        product=product,
        warehouse=Warehouse.objects.get(is_default=True),
        on_hand=10,
        actor="bench",
    )
    print(f"database {args.database}; load average {os.getloadavg()[0]:.1f}; per call:")

    measure("health check (connection.is_usable: SELECT 1)", "default", _usable, args.calls)

    handler = logging.StreamHandler(io.StringIO())
    handler.setFormatter(JsonFormatter(settings.LOGGING["formatters"]["json"]["format"]))
    handler.addFilter(RequestIdFilter())
    logger = logging.getLogger("benchmarks.overheads")
    logger.handlers, logger.propagate = [handler], False
    logger.setLevel(logging.INFO)
    event = {
        "event": "reservation.created",
        "reservation_ids": [1, 2, 3],
        "cart_id": "9981d296-5712-4117-b22d-c9ecf864d509",
        "order_id": None,
        "quantity": 3,
        "actor": "shopper",
    }
    measure(
        "JSON log line (a reservation event)",
        "default",
        lambda: logger.info("reservation.created", extra=event),
        args.calls,
    )

    project = connections.settings["default"]
    # The variants name their binding themselves, whatever DATABASE_PREPARED_STATEMENTS
    # gave the project's connection.
    client_side = {
        key: value
        for key, value in project["OPTIONS"].items()
        if key not in ("server_side_binding", "prepare_threshold")
    }
    variants = {
        "project (django-prometheus backend, client-side binding)": {"OPTIONS": client_side},
        "Django's own PostgreSQL backend": {
            "ENGINE": "django.db.backends.postgresql",
            "OPTIONS": client_side,
        },
        "project + server_side_binding, prepare_threshold=2": {
            "OPTIONS": {**client_side, "server_side_binding": True, "prepare_threshold": 2}
        },
    }
    for i, overrides in enumerate(variants.values()):
        connections.settings[f"variant{i}"] = {**copy.deepcopy(project), **overrides}

    def statement(alias: str) -> Callable[[], None]:
        def run() -> None:
            with connections[alias].cursor() as cursor:
                cursor.execute("SELECT %s", [1])
                cursor.fetchone()

        return run

    def orm_read(alias: str) -> Callable[[], None]:
        def read() -> None:
            rows = StockLevel.objects.using(alias).select_related("product", "warehouse")
            list(rows.filter(product__sku="OVERHEAD-1")[:5])
            Product.objects.using(alias).filter(sku="OVERHEAD-1").values_list("id").first()

        return read

    for n in range(1, args.rounds + 1):
        for i, name in list(enumerate(variants))[:2]:
            alias = f"variant{i}"
            measure(f"statement, round {n}: {name}", alias, statement(alias), args.calls)
    for n in range(1, args.rounds + 1):
        for i, name in enumerate(variants):
            alias = f"variant{i}"
            measure(f"ORM read, round {n}: {name}", alias, orm_read(alias), args.calls // 2, 2)
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


def _usable() -> None:
    from django.db import connection

    connection.is_usable()


if __name__ == "__main__":
    main()
