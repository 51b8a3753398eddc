"""Client CPU per reservation op and per API request, measured in-process (cProfile on
demand): the figures of ``docs/performance.md`` that no load benchmark prints.

Two measurements, on a database of its own (``checkout_profile`` on the server of
``DATABASE_URL`` unless ``--database`` says otherwise; dropped, re-created, migrated,
seeded), with the production settings (JSON logging and metrics on, log lines
discarded):

* ``cycle`` — the op of ``benchmarks/reservations.py``: ``inventory.services.reserve``
  of 1 unit, then ``release`` of it, ``--ops`` times in one process. Prints the CPU time
  of this process per op (``time.process_time``: Django, the ORM, the driver), the CPU
  of its PostgreSQL backend per op (from ``/proc``, when the server is on this machine)
  and the statements per op.
* ``requests`` — a shopper's checkout through the API with Django's test client (the
  whole middleware, DRF and view stack, no HTTP server): GET a product, create a cart,
  add ``--lines`` lines, start the checkout, GET it, PATCH addresses and payment
  method, confirm with an ``Idempotency-Key``; ``--shoppers`` times after 5 unmeasured
  shoppers. Prints, per request, the mean and median CPU ms and the SQL statements Django
  sent (BEGIN/COMMIT included: the figures pinned by
  ``tests/checkout/test_request_statements.py``).

``--profile N`` also prints the N entries of each measurement's cProfile with the most
cumulative time, and its own time summed by package (Django by sub-package, each app of
this project, the rest). Run from the repository root::

    .venv/bin/python benchmarks/profile_requests.py
    .venv/bin/python benchmarks/profile_requests.py --only cycle --ops 2000 --profile 25
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import statistics
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import procstat  # noqa: E402
from benchmarks.dbsetup import recreate_database, setup_django, with_database  # noqa: E402

API = "/api/v1"
HOST = "localhost"  # in the default ALLOWED_HOSTS
ADDRESS = {
    "name": "Ada Lovelace",
    "line1": "12 St James's Square",
    "city": "London",
    "postal_code": "SW1Y 4JH",
    "country": "GB",
}


def _seed(skus: int) -> list[str]:
    from decimal import Decimal

    from inventory.models import Product, Warehouse
    from inventory.services import set_stock

    warehouse = Warehouse.objects.get(is_default=True)
    products = Product.objects.bulk_create(
        [
            Product(sku=f"PROF-{i:04d}", name=f"Item {i}", price=Decimal("9.99"), currency="USD")
            for i in range(skus)
        ]
    )
    for product in products:
        set_stock(product=product, warehouse=warehouse, on_hand=1_000_000, actor="bench")
    return [p.sku for p in products]


def _package(filename: str) -> str:
    """Where a profiled function lives: an installed package (Django by sub-package),
    this project's app, or the standard library / built-ins."""
    if "site-packages/" in filename:
        parts = filename.split("site-packages/", 1)[1].split("/")
        if parts[0] == "django" and len(parts) > 2:
            return "/".join(parts[:3] if parts[1] == "db" and len(parts) > 3 else parts[:2])
        return parts[0]
    if filename.startswith(str(ROOT) + "/"):
        return "project: " + filename[len(str(ROOT)) + 1 :].split("/", 1)[0]
    return "built-ins" if filename.startswith(("~", "<")) else "standard library"


def _profiled(run: Callable[[], None], top: int) -> None:
    """Runs ``run`` under cProfile and prints its ``top`` entries by cumulative time, then
    the profile's own time summed by package (cProfile measures wall time: a function
    waiting for PostgreSQL counts its wait)."""
    profile = cProfile.Profile()
    profile.runcall(run)
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    stats.sort_stats("cumulative").print_stats(top)
    print(out.getvalue())
    own: dict[str, float] = defaultdict(float)
    for (filename, _line, _name), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():
        own[_package(filename)] += tottime
    total = sum(own.values()) or 1.0
    print("own time by package:")
    for package, seconds in sorted(own.items(), key=lambda item: -item[1])[:20]:
        print(f"  {100 * seconds / total:5.1f} %  {package}")


def _backend_cpu_reader() -> Callable[[], float | None]:
    """CPU seconds of this connection's PostgreSQL backend so far (``None`` when the
    server runs on another machine)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    local = procstat.is_postgres(pid)
    return lambda: procstat.cpu_seconds(pid) if local else None


def measure_cycle(ops: int, top: int) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from inventory import services
    from inventory.models import StockLevel

    product_id, warehouse_id = StockLevel.objects.values_list("product_id", "warehouse_id")[0]
    line = services.ReservationLine(product_id=product_id, warehouse_id=warehouse_id, quantity=1)

    def cycle() -> None:
        [reservation] = services.reserve(lines=[line], ttl_seconds=300, actor="bench")
        services.release(reservation_ids=[reservation.id], reason="api", actor="bench")

    for _ in range(20):  # warm-up: connection, caches, first-call imports
        cycle()
    with CaptureQueriesContext(connection) as captured:
        cycle()
    statements = sum(1 for q in captured if q["sql"] not in ("BEGIN", "COMMIT"))
    backend = _backend_cpu_reader()
    started_backend = backend()
    started_cpu, started_wall = time.process_time(), time.perf_counter()
    for _ in range(ops):
        cycle()
    cpu = (time.process_time() - started_cpu) / ops * 1000
    wall = (time.perf_counter() - started_wall) / ops * 1000
    backend_ms = (
        f"{(backend() - started_backend) / ops * 1000:.2f} ms"
        if started_backend is not None
        else "n/a (PostgreSQL is not on this machine)"
    )
    print(
        f"cycle (reserve 1 unit + release it), {ops} ops: {cpu:.2f} ms CPU of this process "
        f"per op ({wall:.2f} ms wall), PostgreSQL backend CPU per op {backend_ms}, "
        f"{statements} statements besides BEGIN/COMMIT"
    )
    if top:
        _profiled(lambda: [cycle() for _ in range(ops)], top)


class _Shopper:
    def __init__(
        self, skus: list[str], lines: int, costs: dict, counts: dict | None = None
    ) -> None:
        from rest_framework.test import APIClient

        self.client = APIClient(HTTP_HOST=HOST)
        self.skus, self.lines, self.costs, self.counts = skus, lines, costs, counts

    def _call(self, name: str, method: str, path: str, body: Any = None, **headers: str):
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        send = getattr(self.client, method)
        if self.counts is not None:  # recording the SQL costs CPU: never while timing
            with CaptureQueriesContext(connection) as captured:
                response = send(API + path, body, format="json", **headers)
            self.counts[name] = len(captured)
        else:
            started = time.process_time()
            response = send(API + path, body, format="json", **headers)
            self.costs[name].append((time.process_time() - started) * 1000)
        if response.status_code >= 300:
            raise SystemExit(f"{name}: {response.status_code} {response.content[:300]!r}")
        return response.json()

    def run(self, product_id: str) -> None:
        self._call("GET product", "get", f"/products/{product_id}/")
        cart = self._call("create cart", "post", "/carts/", {"currency": "USD"})
        base, token = f"/carts/{cart['id']}", {"HTTP_X_CART_TOKEN": cart["token"]}
        for sku in self.skus[: self.lines]:
            self._call("add line", "post", f"{base}/items/", {"sku": sku, "quantity": 1}, **token)
        self._call("start checkout", "post", f"{base}/checkout/", {}, **token)
        self._call("get checkout", "get", f"{base}/checkout/", None, **token)
        update = {
            "shipping_address": ADDRESS,
            "billing_address": ADDRESS,
            "payment_method": "card",
            "current_step": 3,
        }
        self._call("PATCH checkout", "patch", f"{base}/checkout/", update, **token)
        key = {"HTTP_IDEMPOTENCY_KEY": str(uuid.uuid4())}
        self._call("confirm", "post", f"{base}/checkout/confirm/", {}, **token, **key)


def measure_requests(skus: list[str], shoppers: int, lines: int, top: int) -> None:
    from inventory.models import Product

    product_id = str(Product.objects.values_list("id", flat=True).get(sku=skus[0]))
    costs: dict[str, list[float]] = defaultdict(list)
    counts: dict[str, int] = {}
    for _ in range(5):  # warm-up, not timed; the statements are counted here
        _Shopper(skus, lines, defaultdict(list), counts).run(product_id)

    def run_all() -> None:
        for _ in range(shoppers):
            _Shopper(skus, lines, costs).run(product_id)

    if top:
        _profiled(run_all, top)
    else:
        run_all()
    print(
        f"requests of {shoppers} shoppers ({lines} lines each), in-process test client, "
        f"CPU of this process per request (mean, median) and SQL statements Django sent "
        f"(BEGIN/COMMIT included):"
    )
    for name, values in costs.items():
        print(
            f"  {name:<16}{statistics.mean(values):>8.2f} ms{statistics.median(values):>8.2f} ms"
            f"{counts[name]:>5} statements"
        )
    per_checkout = sum(
        statistics.mean(values) * (lines if name == "add line" else 1)
        for name, values in costs.items()
        if name not in ("GET product", "get checkout")
    )
    print(
        f"  one checkout (create cart .. confirm, as the flash sale runs it): {per_checkout:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=["cycle", "requests"], default=None)
    parser.add_argument("--ops", type=int, default=1000, help="reservation cycles")
    parser.add_argument("--shoppers", type=int, default=100)
    parser.add_argument("--lines", type=int, default=3)
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="cProfile top N")
    parser.add_argument("--database", default="checkout_profile")
    args = parser.parse_args()

    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/checkout")
    url = with_database(base, args.database)
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("LOG_LEVEL", "INFO")
    recreate_database(url)
    setup_django()
    import logging

    from django.core.management import call_command

    logging.disable(logging.INFO)  # the migration's own log lines
    call_command("migrate", verbosity=0)
    logging.disable(logging.NOTSET)
    skus = _seed(max(args.lines, 10))
    # Log lines are formatted as in production, then discarded: the log handlers hold
    # the process's stderr, so it is pointed at /dev/null while measuring.
    sys.stderr.flush()
    real_stderr = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        print(f"database {args.database}; load average {os.getloadavg()[0]:.1f}", flush=True)
        if args.only in (None, "cycle"):
            measure_cycle(args.ops, args.profile)
        if args.only in (None, "requests"):
            measure_requests(skus, args.shoppers, args.lines, args.profile)
        print(f"load average at the end {os.getloadavg()[0]:.1f}")
    finally:
        sys.stderr.flush()
        os.dup2(real_stderr, 2)
        os.close(devnull)


if __name__ == "__main__":
    main()
