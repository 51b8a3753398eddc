"""Reservation throughput: the real service against hand-written SQL run by pgbench.

One *cycle* is two transactions, exactly what a shopper who starts and then cancels a
checkout costs the stock rows:

1. ``inventory.services.reserve`` of 1 unit of one sku (lock the stock row, raise
   ``reserved``, insert the reservation and its ``created`` event, commit);
2. ``inventory.services.release`` of that reservation (lock the stock row, then the
   reservation, lower ``reserved``, mark it released, insert the ``released`` event,
   commit).

Scenarios: ``hot`` — every cycle on the same sku (all workers queue on one row lock);
``uniform`` — each cycle on a random sku out of 10,000; ``split3`` — each cycle reserves
3 units of a random sku that names no warehouse, out of 3,000 skus stocked with 1 unit in
each of three warehouses, so the allocation splits the line over all three (three stock
rows locked, three reservations and events written, three released); each worker draws
from skus of its own, so two never compete for the single units. Each runs with N worker
processes (``--workers``, default ``1 2``); every process calls ``django.setup()`` and
runs the real service with the production settings (logging and metrics included).
The reference is the same two transactions written as plain SQL (same statements, same
row locks, same rows written) run by ``pgbench`` with as many clients, on the same
database, in the same run. The table shows cycles per second of both and their ratio.

The benchmark creates (drops and re-creates) its own database, ``checkout_bench`` on the
server of ``DATABASE_URL`` unless ``--database`` says otherwise, migrates and seeds it,
and empties the reservation tables before each measurement::

    .venv/bin/python benchmarks/reservations.py --seconds 10 --workers 1 2
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing as mp
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.dbsetup import recreate_database, setup_django, with_database  # noqa: E402

UNIFORM_SKUS = 10_000
ON_HAND = 1_000_000_000  # never the limit: every cycle gives its unit back
TTL_SECONDS = 300

SPLIT_SKUS = 3_000
SPLIT_QUANTITY = 3  # 1 unit in each of the three warehouses: every line splits over all

RAW_SQL_CYCLE = f"""
\\set sid random(:sid_lo, :sid_hi)
BEGIN;
SELECT s.id, s.product_id, s.warehouse_id, s.on_hand, s.reserved, s.waitlisted
  FROM inventory_stocklevel s WHERE s.id = :sid FOR UPDATE;
UPDATE inventory_stocklevel SET reserved = reserved + 1, updated_at = now()
 WHERE id = :sid AND on_hand - reserved >= 1;
INSERT INTO inventory_reservation
       (stock_level_id, product_id, warehouse_id, quantity, status, expires_at,
        extension_count, release_reason, created_at, updated_at)
SELECT id, product_id, warehouse_id, 1, 'pending', now() + interval '{TTL_SECONDS} seconds',
       0, '', now(), now()
  FROM inventory_stocklevel WHERE id = :sid
RETURNING id AS rid \\gset
INSERT INTO inventory_reservationevent
       (reservation_id, kind, quantity, expires_at, actor, reason, request_id, at)
VALUES (:rid, 'created', 1, now() + interval '{TTL_SECONDS} seconds', 'bench', '', '', now());
COMMIT;
BEGIN;
SELECT s.id, s.on_hand, s.reserved FROM inventory_stocklevel s
 WHERE s.id = (SELECT stock_level_id FROM inventory_reservation WHERE id = :rid)
   FOR UPDATE;
SELECT r.id, r.stock_level_id, r.quantity, r.status, held.waitlisted
  FROM inventory_reservation r JOIN inventory_stocklevel held ON held.id = r.stock_level_id
 WHERE r.id = :rid FOR UPDATE OF r, held;
UPDATE inventory_stocklevel SET reserved = reserved - 1, updated_at = now()
 WHERE id = :sid;
UPDATE inventory_reservation
   SET status = 'released', release_reason = 'api', released_at = now(), updated_at = now()
 WHERE id = :rid;
INSERT INTO inventory_reservationevent
       (reservation_id, kind, quantity, expires_at, actor, reason, request_id, at)
VALUES (:rid, 'released', 1, now() + interval '{TTL_SECONDS} seconds', 'bench', 'api', '', now());
COMMIT;
"""  # noqa: S608 -- a pgbench script: constant text and pgbench variables

# The split cycle as the service runs it: the candidate rows of the sku (its three stock
# rows, with their warehouses) locked in pk order; one statement raising ``reserved`` of
# the three rows and inserting the three reservations with their events; then the release:
# stock rows, then reservations locked (their stock rows joined again for ``waitlisted``
# and locked again, ``FOR UPDATE OF r, held``, as the service's lock query does; the
# one-row cycle above does the same), one statement writing it all back. Each pgbench
# client draws its skus from a range of its own (``client_id``), as the workers do.
RAW_SQL_SPLIT_CYCLE = f"""
\\set pick random(0, :span - 1)
\\set s0 :sid_lo + :client_id * :span + :pick
\\set s1 :s0 + :skus
\\set s2 :s1 + :skus
BEGIN;
SELECT s.id, s.product_id, s.warehouse_id, s.on_hand, s.reserved, s.waitlisted,
       s.updated_at, w.id, w.code, w.is_default, w.priority, w.is_active
  FROM inventory_stocklevel s JOIN inventory_warehouse w ON w.id = s.warehouse_id
 WHERE s.id IN (:s0, :s1, :s2) AND w.is_active
 ORDER BY s.id FOR UPDATE OF s;
WITH stock AS (
    UPDATE inventory_stocklevel SET reserved = reserved + 1, updated_at = now()
     WHERE id IN (:s0, :s1, :s2)
), created AS (
    INSERT INTO inventory_reservation
           (stock_level_id, product_id, warehouse_id, quantity, status, expires_at,
            extension_count, release_reason, allocation_strategy, created_at, updated_at)
    SELECT id, product_id, warehouse_id, 1, 'pending',
           now() + interval '{TTL_SECONDS} seconds', 0, '', 'priority', now(), now()
      FROM inventory_stocklevel WHERE id IN (:s0, :s1, :s2)
    RETURNING id, quantity
)
INSERT INTO inventory_reservationevent
       (reservation_id, kind, quantity, expires_at, actor, reason, request_id, at)
SELECT id, 'created', quantity, now() + interval '{TTL_SECONDS} seconds', 'bench', '', '',
       now()
  FROM created;
COMMIT;
BEGIN;
SELECT s.id FROM inventory_stocklevel s WHERE s.id IN (:s0, :s1, :s2)
 ORDER BY s.id FOR UPDATE;
SELECT r.id, r.stock_level_id, r.quantity, r.status, held.waitlisted
  FROM inventory_reservation r JOIN inventory_stocklevel held ON held.id = r.stock_level_id
 WHERE r.stock_level_id IN (:s0, :s1, :s2) AND r.status = 'pending'
 ORDER BY r.id FOR UPDATE OF r, held;
WITH released AS (
    UPDATE inventory_reservation
       SET status = 'released', release_reason = 'api', released_at = now(), updated_at = now()
     WHERE stock_level_id IN (:s0, :s1, :s2) AND status = 'pending'
    RETURNING id, quantity
), stock AS (
    UPDATE inventory_stocklevel SET reserved = reserved - 1, updated_at = now()
     WHERE id IN (:s0, :s1, :s2)
)
INSERT INTO inventory_reservationevent
       (reservation_id, kind, quantity, expires_at, actor, reason, request_id, at)
SELECT id, 'released', quantity, now(), 'bench', 'api', '', now() FROM released;
COMMIT;
"""  # noqa: S608 -- a pgbench script: constant text and pgbench variables


def raw_sql_statements(script: str = RAW_SQL_CYCLE) -> list[str]:
    """The SQL statements of a pgbench script besides BEGIN/COMMIT: meta-commands
    (``\\set``) dropped, a statement ended by ``;`` or by ``\\gset``."""
    body = "\n".join(line for line in script.splitlines() if not line.startswith("\\set"))
    parts = (part.strip() for part in re.split(r";|\\gset", body))
    return [part for part in parts if part and part.upper() not in ("BEGIN", "COMMIT")]


@dataclass(frozen=True)
class Scenario:
    name: str
    first_sku: int  # inclusive, index into the seeded skus BENCH-00000 ...
    last_sku: int
    split: bool = False  # SPLIT-xxxxx skus, 3 units over three warehouses, unpinned

    @property
    def script(self) -> str:
        return RAW_SQL_SPLIT_CYCLE if self.split else RAW_SQL_CYCLE


SCENARIOS = {
    "hot": Scenario("hot", 0, 0),
    "uniform": Scenario("uniform", 1, UNIFORM_SKUS),
    "split3": Scenario("split3", 0, SPLIT_SKUS - 1, split=True),
}


def _seed_split() -> int:
    """``SPLIT_SKUS`` products (SPLIT-00000 ...) with 1 unit in each of three warehouses
    (the default, priority 0, and two more, priority 1 and 2), rows inserted warehouse by
    warehouse: product i's rows are ``first + i``, ``first + SPLIT_SKUS + i`` and
    ``first + 2 * SPLIT_SKUS + i``. Returns ``first``."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO inventory_warehouse (code, name, is_default, priority, is_active, created_at)
            VALUES ('split-1', 'Split 1', false, 1, true, now()),
                   ('split-2', 'Split 2', false, 2, true, now())
            """
        )
        cursor.execute(
            """
            INSERT INTO inventory_product (id, sku, name, price, currency, created_at, updated_at)
            SELECT gen_random_uuid(), 'SPLIT-' || lpad(g::text, 5, '0'), 'Split ' || g,
                   10.00, 'USD', now(), now()
              FROM generate_series(0, %s) g
            """,
            [SPLIT_SKUS - 1],
        )
        cursor.execute("SELECT max(id) FROM inventory_stocklevel")
        (before,) = cursor.fetchone()
        for code in ("default", "split-1", "split-2"):
            cursor.execute(
                """
                INSERT INTO inventory_stocklevel
                       (product_id, warehouse_id, on_hand, reserved, updated_at)
                SELECT p.id, w.id, 1, 0, now()
                  FROM inventory_product p, inventory_warehouse w
                 WHERE w.code = %s AND p.sku LIKE 'SPLIT-%%'
                 ORDER BY p.sku
                """,
                [code],
            )
        cursor.execute(
            "SELECT min(id), max(id), count(*) FROM inventory_stocklevel WHERE id > %s",
            [before],
        )
        lo, hi, count = cursor.fetchone()
    if hi - lo + 1 != count or count != 3 * SPLIT_SKUS:
        raise SystemExit("split stock row ids are not consecutive; cannot address skus by id")
    return lo


def _seed() -> tuple[int, int]:
    """10,001 products (BENCH-00000 is the hot one) with one stock row each in the default
    warehouse; stock row ids are consecutive in sku order. Returns the first stock id."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO inventory_product (id, sku, name, price, currency, created_at, updated_at)
            SELECT gen_random_uuid(), 'BENCH-' || lpad(g::text, 5, '0'), 'Bench ' || g,
                   10.00, 'USD', now(), now()
              FROM generate_series(0, %s) g
            """,
            [UNIFORM_SKUS],
        )
        cursor.execute(
            """
            INSERT INTO inventory_stocklevel (product_id, warehouse_id, on_hand, reserved, updated_at)
            SELECT p.id, w.id, %s, 0, now()
              FROM inventory_product p, inventory_warehouse w
             WHERE w.is_default AND p.sku LIKE 'BENCH-%%'
             ORDER BY p.sku
            """,
            [ON_HAND],
        )
        cursor.execute("SELECT min(id), max(id), count(*) FROM inventory_stocklevel")
        lo, hi, count = cursor.fetchone()
    if hi - lo + 1 != count:
        raise SystemExit("stock row ids are not consecutive; cannot address skus by id")
    return lo, hi


def _reset() -> None:
    """Empties the reservation tables and gives every row its full stock back, so each
    measurement starts from the same state."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE inventory_reservationevent, inventory_reservation CASCADE")
        cursor.execute("UPDATE inventory_stocklevel SET reserved = 0 WHERE reserved <> 0")
    with connection.cursor() as cursor:  # autocommit: VACUUM may not run in a transaction
        cursor.execute("VACUUM ANALYZE inventory_stocklevel, inventory_reservation")


def _check_invariants() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT count(*) FROM inventory_stocklevel s
             WHERE s.reserved <> COALESCE((SELECT sum(quantity) FROM inventory_reservation r
                                            WHERE r.stock_level_id = s.id
                                              AND r.status = 'pending'), 0)
                OR s.reserved < 0 OR s.reserved > s.on_hand
            """
        )
        (drift,) = cursor.fetchone()
    if drift:
        raise SystemExit(f"invariant broken on {drift} stock rows")


def _worker(
    first_stock_id: int,
    scenario: Scenario,
    seconds: float,
    warmup: float,
    barrier,
    results,
    index: int = 0,
    workers: int = 1,
) -> None:
    # Logs are formatted as in production but not printed over the result table.
    sys.stderr = open(os.devnull, "w")  # noqa: SIM115
    setup_django()
    from django.db import connection

    from inventory import services
    from inventory.models import StockLevel

    if scenario.split:
        # This worker's own skus (as pgbench's client_id range), unpinned: 3 units each.
        span = SPLIT_SKUS // workers
        ids = range(first_stock_id + index * span, first_stock_id + (index + 1) * span)
        lines = [
            services.ReservationLine(product_id=p, warehouse_id=None, quantity=SPLIT_QUANTITY)
            for p in StockLevel.objects.filter(id__in=ids)
            .order_by("id")
            .values_list("product_id", flat=True)
        ]
    else:
        ids = range(first_stock_id + scenario.first_sku, first_stock_id + scenario.last_sku + 1)
        lines = [
            services.ReservationLine(product_id=p, warehouse_id=w, quantity=1)
            for p, w in StockLevel.objects.filter(id__in=ids)
            .order_by("id")
            .values_list("product_id", "warehouse_id")
        ]
    rng = random.Random(os.getpid())

    def cycle() -> None:
        reservations = services.reserve(
            lines=[rng.choice(lines)], ttl_seconds=TTL_SECONDS, actor="bench"
        )
        services.release(reservation_ids=[r.id for r in reservations], reason="api", actor="bench")

    barrier.wait()
    end = time.perf_counter() + warmup
    while time.perf_counter() < end:
        cycle()
    count = 0
    start = time.perf_counter()
    end = start + seconds
    while time.perf_counter() < end:
        cycle()
        count += 1
    results.put(count / (time.perf_counter() - start))
    connection.close()


def run_ours(first_stock_id: int, scenario: Scenario, workers: int, seconds: int, args) -> float:
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(workers)
    results = ctx.Queue()
    procs = [
        ctx.Process(
            target=_worker,
            args=(first_stock_id, scenario, seconds, args.warmup, barrier, results, i, workers),
        )
        for i in range(workers)
    ]
    for p in procs:
        p.start()
    rates = [results.get(timeout=seconds + args.warmup + 120) for _ in procs]
    for p in procs:
        p.join()
        if p.exitcode != 0:
            raise SystemExit(f"worker exited with {p.exitcode}")
    return sum(rates)


def run_raw(
    url: str,
    first_stock_id: int,
    scenario: Scenario,
    workers: int,
    seconds: int,
    protocol: str = "simple",
) -> float:
    pgbench = shutil.which("pgbench")
    if not pgbench:
        raise SystemExit("pgbench not found: apt-get install postgresql-client (or -contrib)")
    parts = urlsplit(url)
    env = dict(os.environ)
    if parts.password:
        env["PGPASSWORD"] = parts.password
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as script:
        script.write(scenario.script)
    bounds = (
        [
            *("-D", f"sid_lo={first_stock_id}"),
            *("-D", f"span={SPLIT_SKUS // workers}"),
            *("-D", f"skus={SPLIT_SKUS}"),
        ]
        if scenario.split
        else [
            "-D",
            f"sid_lo={first_stock_id + scenario.first_sku}",
            "-D",
            f"sid_hi={first_stock_id + scenario.last_sku}",
        ]
    )
    try:
        out = subprocess.run(
            [
                pgbench,
                "-h",
                parts.hostname or "127.0.0.1",
                "-p",
                str(parts.port or 5432),
                "-U",
                parts.username or "postgres",
                "-n",
                "-M",
                protocol,
                "-c",
                str(workers),
                "-j",
                str(workers),
                "-T",
                str(seconds),
                *bounds,
                "-f",
                script.name,
                parts.path.lstrip("/"),
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(script.name)
    match = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out)
    if not match:
        raise SystemExit(f"cannot read pgbench output:\n{out}")
    return float(match.group(1))


def queries_per_cycle(first_stock_id: int, *, split: bool = False) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from inventory import services
    from inventory.models import StockLevel

    product_id, warehouse_id = StockLevel.objects.values_list("product_id", "warehouse_id").get(
        id=first_stock_id
    )
    line = (
        services.ReservationLine(product_id=product_id, warehouse_id=None, quantity=SPLIT_QUANTITY)
        if split
        else services.ReservationLine(product_id=product_id, warehouse_id=warehouse_id, quantity=1)
    )
    logging.getLogger("inventory.reservations").disabled = True  # not over the table
    with CaptureQueriesContext(connection) as captured:
        reservations = services.reserve(lines=[line], ttl_seconds=TTL_SECONDS, actor="bench")
        if split and len(reservations) != SPLIT_QUANTITY:
            raise SystemExit(f"the split line was allocated to {len(reservations)} warehouses")
        services.release(reservation_ids=[r.id for r in reservations], reason="api", actor="bench")
    return sum(1 for q in captured if q["sql"] not in ("BEGIN", "COMMIT"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seconds", type=int, default=10, help="per measurement and side")
    parser.add_argument(
        "--rounds", type=int, default=2, help="slices of --seconds, alternating sides"
    )
    parser.add_argument("--warmup", type=float, default=1.0, help="per worker, not counted")
    parser.add_argument(
        "--scenarios",
        nargs="+",
        choices=sorted(SCENARIOS),
        default=["hot", "uniform", "split3"],
    )
    parser.add_argument("--database", default="checkout_bench")
    parser.add_argument(
        "--raw-protocol",
        choices=["simple", "prepared"],
        default="simple",
        help="how pgbench sends the raw SQL (its -M): every statement parsed and planned "
        "each time, or prepared once per client",
    )
    args = parser.parse_args()
    slice_ = max(1, args.seconds // args.rounds)

    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/checkout")
    url = with_database(base, args.database)
    os.environ["DATABASE_URL"] = url  # inherited by the worker processes
    os.environ.setdefault("LOG_LEVEL", "INFO")

    recreate_database(url)
    sys.stderr.flush()
    setup_django()
    from django.conf import settings
    from django.core.management import call_command

    logging.disable(logging.INFO)  # the migration's own log lines, not over the table
    call_command("migrate", verbosity=0)
    logging.disable(logging.NOTSET)
    first_stock_id, _ = _seed()
    first_split_id = _seed_split()
    _reset()
    per_cycle = queries_per_cycle(first_stock_id)
    per_split_cycle = queries_per_cycle(first_split_id, split=True)
    _reset()

    print(
        f"database {args.database}; one cycle (op) = reserve 1 unit + release it: 2 "
        f"transactions, {per_cycle} statements besides BEGIN/COMMIT in ours, "
        f"{len(raw_sql_statements())} in the raw SQL; split3: reserve 3 units split over 3 "
        f"warehouses + release them, {per_split_cycle} statements in ours, "
        f"{len(raw_sql_statements(RAW_SQL_SPLIT_CYCLE))} in the raw SQL; "
        f"{slice_ * args.rounds} s per side in {args.rounds} alternating slices; ours "
        f"{'with' if settings.DATABASE_PREPARED_STATEMENTS else 'without'} prepared "
        f"statements (DATABASE_PREPARED_STATEMENTS), the raw SQL sent by pgbench -M "
        f"{args.raw_protocol}; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    header = f"{'scenario':<10}{'workers':>8}{'ops/s ours':>14}{'ops/s raw SQL':>16}{'ratio':>8}"
    print(header)
    print("-" * len(header))
    for name in args.scenarios:
        scenario = SCENARIOS[name]
        for workers in args.workers:
            # Alternate which side runs first, so that a change in the machine's load
            # during the run weighs on both alike.
            ours = raw = 0.0
            for round_ in range(args.rounds):
                sides = ["ours", "raw"] if round_ % 2 == 0 else ["raw", "ours"]
                for side in sides:
                    first = first_split_id if scenario.split else first_stock_id
                    if side == "ours":
                        ours += run_ours(first, scenario, workers, slice_, args)
                    else:
                        raw += run_raw(url, first, scenario, workers, slice_, args.raw_protocol)
                    _check_invariants()
                    _reset()
            ours, raw = ours / args.rounds, raw / args.rounds
            print(f"{name:<10}{workers:>8}{ours:>14.0f}{raw:>16.0f}{ours / raw:>8.0%}", flush=True)
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    # A broken invariant stops the run with exit status 1 (SystemExit with its message).
    print("stock invariants held after every measurement (exit status 0)")


if __name__ == "__main__":
    main()
