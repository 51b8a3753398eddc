"""The admin overview (``/admin/``, ``ops.dashboard``) on a large database: its SQL
statements and its time.

On a database of its own (``checkout_dashboard`` on the server of ``DATABASE_URL`` unless
``--database`` says otherwise; dropped, re-created, migrated) it writes 200 products in 2
warehouses, ``--carts`` carts (over a quarter in checkout, about half with an order and
a captured payment), and ``--reservations`` reservations with one ``INSERT ... SELECT
generate_series`` (mostly confirmed, released and expired; 2 % pending, half of those
lapsed, some of them orphaned), then ``ANALYZE``. It then requests the admin index
``--runs`` times as a signed-in superuser (Django's test client, no HTTP server) and
prints the statements per request, the median and worst wall time of the request and
the time of each figure's query. Run from the repository root::

    .venv/bin/python benchmarks/dashboard.py
    .venv/bin/python benchmarks/dashboard.py --reservations 1000000 --runs 20
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.dbsetup import recreate_database, setup_django, with_database  # noqa: E402

RESERVATIONS_SQL = """
INSERT INTO inventory_reservation
    (quantity, status, expires_at, extension_count, release_reason, created_at, updated_at,
     confirmed_at, released_at, cart_id, order_id, product_id, stock_level_id, warehouse_id,
     allocation_strategy)
SELECT 1 + n %% 3,
       CASE WHEN n %% 50 = 0 THEN 'pending'
            WHEN n %% 3 = 0 THEN 'confirmed'
            WHEN n %% 3 = 1 THEN 'released' ELSE 'expired' END,
       -- half of the pending ones lapsed a minute ago, the others run 10 more minutes
       CASE WHEN n %% 100 = 0 THEN now() - interval '1 minute'
            ELSE now() + interval '10 minutes' END - (n %% 7) * interval '1 second',
       0, '', now() - (n %% 86400) * interval '1 second', now(), NULL, NULL,
       carts.ids[1 + n %% array_length(carts.ids, 1)], NULL,
       levels.product_ids[1 + n %% array_length(levels.ids, 1)],
       levels.ids[1 + n %% array_length(levels.ids, 1)],
       levels.warehouse_ids[1 + n %% array_length(levels.ids, 1)],
       ''
  FROM generate_series(1, %(count)s) AS n,
       (SELECT array_agg(id ORDER BY id) AS ids FROM carts_cart) AS carts,
       (SELECT array_agg(id ORDER BY id) AS ids, array_agg(product_id ORDER BY id) AS product_ids,
               array_agg(warehouse_id ORDER BY id) AS warehouse_ids FROM inventory_stocklevel) AS levels
"""


def fill(*, carts: int, reservations: int) -> None:
    from django.db import connection
    from django.utils import timezone

    from carts.models import Cart, CartStatus
    from inventory.models import Product, StockLevel, Warehouse
    from orders.models import Order
    from payments.models import Payment, PaymentStatus

    started = time.perf_counter()
    default = Warehouse.objects.get(is_default=True)
    east = Warehouse.objects.create(code="east", name="East")
    products = Product.objects.bulk_create(
        Product(sku=f"SKU-{i:04d}", name=f"Product {i}", price=Decimal("9.99")) for i in range(200)
    )
    StockLevel.objects.bulk_create(
        StockLevel(product=p, warehouse=w, on_hand=(i * 7) % 40, reserved=0)
        for i, p in enumerate(products)
        for w in (default, east)
    )
    now = timezone.now()
    statuses = [CartStatus.ACTIVE, CartStatus.CHECKOUT, *[CartStatus.COMPLETED] * 3]
    for start in range(0, carts, 10_000):
        rows = [
            Cart(
                token_hash=uuid.uuid4().hex,
                status=statuses[i % len(statuses)] if i % 10 else CartStatus.CHECKOUT,
                checkout_started_at=now,
            )
            for i in range(start, min(carts, start + 10_000))
        ]
        Cart.objects.bulk_create(rows)
        paid = [c for c in rows if c.status == CartStatus.COMPLETED]
        orders = Order.objects.bulk_create(
            Order(
                number=f"B-{uuid.uuid4().hex[:12]}",
                status="confirmed",
                cart=c,
                currency="USD",
                subtotal=Decimal("10.00"),
                total=Decimal("10.00"),
                shipping_address={"name": "A"},
                payment_method="card",
            )
            for c in paid
        )
        Payment.objects.bulk_create(
            Payment(
                cart=o.cart,
                order=o,
                gateway="dummy",
                method="card",
                amount=Decimal("10.00"),
                currency="USD",
                status=PaymentStatus.CAPTURED,
                idempotency_key=uuid.uuid4().hex,
            )
            for o in orders
        )
    with connection.cursor() as cursor:
        # The fill is one long statement; the settings' statement timeout is for requests.
        cursor.execute("SET statement_timeout = 0")
        cursor.execute(RESERVATIONS_SQL, {"count": reservations})
        cursor.execute(
            "UPDATE inventory_stocklevel s SET reserved = t.q, on_hand = GREATEST(on_hand, t.q) "
            "FROM (SELECT stock_level_id, SUM(quantity) q FROM inventory_reservation "
            "WHERE status = 'pending' GROUP BY stock_level_id) t WHERE t.stock_level_id = s.id"
        )
        # What autovacuum does to a table of that age: statistics and the visibility map
        # (which lets the partial indexes answer counts without visiting the table).
        cursor.execute("VACUUM ANALYZE")
        cursor.execute("RESET statement_timeout")
    print(
        f"filled: {reservations:,} reservations, {carts:,} carts in "
        f"{time.perf_counter() - started:.1f} s"
    )


def measure(runs: int) -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    user, _ = get_user_model().objects.get_or_create(
        username="bench", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client(HTTP_HOST="localhost")  # in the default ALLOWED_HOSTS
    client.force_login(user)
    client.get("/admin/")  # warm caches and the connection
    times, statements, per_query = [], set(), {}
    counts = 0
    for _ in range(runs):
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            response = client.get("/admin/")
            times.append(time.perf_counter() - started)
        assert response.status_code == 200, response.status_code
        statements.add(len(queries))
        counts = 0
        for query in queries.captured_queries:
            if "COUNT(*)" in query["sql"]:
                counts += 1
                table = query["sql"].split("FROM ")[1].split()[0].strip('"')
                per_query.setdefault(f"#{counts:02d} {table}", []).append(float(query["time"]))
    print(f"statements per request: {sorted(statements)}")
    print(
        f"request time over {runs} runs: median {statistics.median(times) * 1000:.1f} ms, "
        f"worst {max(times) * 1000:.1f} ms"
    )
    print(f"figure queries (COUNT) per request: {counts}, median time each:")
    for name, spent in sorted(per_query.items()):
        print(f"  {statistics.median(spent) * 1000:7.2f} ms  {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default="checkout_dashboard")
    parser.add_argument("--reservations", type=int, default=1_000_000)
    parser.add_argument("--carts", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument(
        "--no-fill", action="store_true", help="measure the database of a previous run again"
    )
    args = parser.parse_args()
    url = with_database(
        os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/checkout"),
        args.database,
    )
    if not args.no_fill:
        recreate_database(url)
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_DEBUG", "0")
    setup_django()
    from django.conf import settings
    from django.core.management import call_command

    settings.DEBUG = False
    if not args.no_fill:
        call_command("migrate", verbosity=0)
        fill(carts=args.carts, reservations=args.reservations)
    measure(args.runs)


if __name__ == "__main__":
    main()
