"""Cleanup throughput: how fast the expire-reservations job drains a backlog.

The database is seeded with ``--reservations`` (default 200,000) lapsed pending
reservations spread evenly over ``--stock-rows`` (default 5,000) stock rows, with every
row's ``reserved`` equal to the sum of its pending reservations (SPEC §3), by two
``INSERT ... SELECT generate_series`` statements. Then N worker processes
(``multiprocessing``, spawned; each calls ``django.setup()`` with the production
settings, logging and metrics included) each run the job's real loop,
``inventory.cleanup.expire_reservations`` (``inventory.services.expire_due`` batch after
batch, ``FOR UPDATE SKIP LOCKED``), until nothing is left. The parent then checks that
every reservation was expired exactly once and that no stock counter drifted.

Reported per worker count: reservations expired per second (all of them, divided by the
wall time from the common start to the last worker's end), and the peak resident memory
of the workers (``resource.getrusage(RUSAGE_SELF).ru_maxrss``), next to what a worker
holds right after ``django.setup()`` before sweeping.

The benchmark drops and re-creates its own database, ``checkout_bench_cleanup`` on the
server of ``DATABASE_URL`` unless ``--database`` says otherwise, migrates it, and seeds
the backlog again before each measurement::

    .venv/bin/python benchmarks/cleanup.py --workers 1 2 --history 0 1000000

``--history`` seeds reservations that ended long ago below the backlog, as in a table
that has been in service for a while; it changes the plans PostgreSQL picks (with only
pending rows in the table, the statistics say every reservation is pending).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.dbsetup import recreate_database, setup_django, with_database  # noqa: E402


@dataclass(frozen=True)
class WorkerResult:
    expired: int
    batches: int
    started: float
    finished: float
    rss_after_setup_kb: int
    rss_peak_kb: int


def _seed_catalog(stock_rows: int) -> None:
    """``stock_rows`` products with one stock row each in the default warehouse."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO inventory_product (id, sku, name, price, currency, created_at, updated_at)
            SELECT gen_random_uuid(), 'SWEEP-' || lpad(g::text, 6, '0'), 'Sweep ' || g,
                   10.00, 'USD', now(), now()
              FROM generate_series(1, %s) g
            """,
            [stock_rows],
        )
        cursor.execute(
            """
            INSERT INTO inventory_stocklevel (product_id, warehouse_id, on_hand, reserved, updated_at)
            SELECT p.id, w.id, 1000000, 0, now()
              FROM inventory_product p, inventory_warehouse w
             WHERE w.is_default
             ORDER BY p.sku
            """
        )


_INSERT_RESERVATIONS_SQL = """
WITH rows AS (
    SELECT id, product_id, warehouse_id, row_number() OVER (ORDER BY id) - 1 AS n
      FROM inventory_stocklevel
)
INSERT INTO inventory_reservation
       (stock_level_id, product_id, warehouse_id, quantity, status, expires_at,
        extension_count, release_reason, created_at, updated_at, released_at)
SELECT s.id, s.product_id, s.warehouse_id, 1, %(status)s, now() - interval '10 minutes', 0,
       '', now() - interval '15 minutes', now() - interval '15 minutes',
       CASE WHEN %(status)s = 'pending' THEN NULL ELSE now() - interval '10 minutes' END
  FROM generate_series(0, %(count)s - 1) g
  JOIN rows s ON s.n = g %% (SELECT count(*) FROM inventory_stocklevel)
 ORDER BY g
"""


def _seed_backlog(reservations: int, history: int) -> float:
    """Empties the reservation tables, inserts ``history`` reservations that ended long
    ago (status ``expired``, lower ids: a table in service holds mostly those), then
    ``reservations`` lapsed pending reservations of 1 unit, round-robin over the stock
    rows (so consecutive ids belong to different rows, as when many shoppers check out
    at once), and sets every row's ``reserved`` to match. Returns the seconds it took."""
    from django.db import connection, transaction

    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL statement_timeout = 0")  # seeding only; workers keep theirs
        cursor.execute("TRUNCATE inventory_reservationevent, inventory_reservation CASCADE")
        cursor.execute("UPDATE inventory_stocklevel SET reserved = 0 WHERE reserved <> 0")
        for status, count in (("expired", history), ("pending", reservations)):
            if count:
                cursor.execute(_INSERT_RESERVATIONS_SQL, {"status": status, "count": count})
        cursor.execute(
            """
            UPDATE inventory_stocklevel s
               SET reserved = held.quantity, updated_at = now()
              FROM (SELECT stock_level_id, SUM(quantity) AS quantity
                      FROM inventory_reservation WHERE status = 'pending'
                     GROUP BY stock_level_id) held
             WHERE held.stock_level_id = s.id
            """
        )
    with connection.cursor() as cursor:  # autocommit: VACUUM may not run in a transaction
        cursor.execute(
            "VACUUM ANALYZE inventory_stocklevel, inventory_reservation, inventory_reservationevent"
        )
    return time.perf_counter() - started


def _check(reservations: int, history: int) -> None:
    """Every reservation expired exactly once; counters match the rows (SPEC §3)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FILTER (WHERE status = 'pending'), "
            "count(*) FILTER (WHERE status = 'expired') FROM inventory_reservation"
        )
        pending, expired = cursor.fetchone()
        cursor.execute(
            "SELECT count(*), count(DISTINCT reservation_id) FROM inventory_reservationevent "
            "WHERE kind = 'expired'"
        )
        events, distinct = cursor.fetchone()
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
    wanted = (0, reservations + history, reservations, reservations, 0)
    if (pending, expired, events, distinct, drift) != wanted:
        raise SystemExit(
            f"check failed: pending={pending} expired={expired} events={events} "
            f"distinct={distinct} drifted_rows={drift}"
        )


def _worker(batch_size: int, barrier, results) -> None:
    # Logs are written as in production (one line per batch) but not over the table.
    sys.stderr = open(os.devnull, "w")  # noqa: SIM115
    setup_django()
    from django.db import connection

    from inventory.cleanup import expire_reservations

    connection.ensure_connection()
    rss_after_setup = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    barrier.wait()
    started = time.time()
    run = expire_reservations(batch_size=batch_size, max_batches=None, actor="bench")
    finished = time.time()
    connection.close()
    results.put(
        WorkerResult(
            expired=run.done,
            batches=run.batches,
            started=started,
            finished=finished,
            rss_after_setup_kb=rss_after_setup,
            rss_peak_kb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        )
    )


def sweep(workers: int, batch_size: int) -> list[WorkerResult]:
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(workers)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_worker, args=(batch_size, barrier, results)) for _ in range(workers)
    ]
    for p in procs:
        p.start()
    out = [results.get(timeout=900) for _ in procs]
    for p in procs:
        p.join()
        if p.exitcode != 0:
            raise SystemExit(f"worker exited with {p.exitcode}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reservations", type=int, default=200_000)
    parser.add_argument("--stock-rows", type=int, default=5_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument(
        "--history",
        type=int,
        nargs="+",
        default=[0],
        help="reservations that ended long ago, seeded below the backlog (default 0)",
    )
    parser.add_argument(
        "--batch-size", type=int, default=None, help="default: the CLEANUP_BATCH_SIZE setting"
    )
    parser.add_argument("--database", default="checkout_bench_cleanup")
    args = parser.parse_args()

    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/checkout")
    url = with_database(base, args.database)
    os.environ["DATABASE_URL"] = url  # inherited by the worker processes
    os.environ.setdefault("LOG_LEVEL", "INFO")

    recreate_database(url)
    setup_django()
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    _seed_catalog(args.stock_rows)
    batch_size = args.batch_size or settings.CLEANUP_BATCH_SIZE

    print(f"load average at start: {_load()}")
    print(
        f"database {args.database}; {args.reservations:,} lapsed reservations over "
        f"{args.stock_rows:,} stock rows; batch size {batch_size}; "
        f"each worker runs inventory.cleanup.expire_reservations until nothing is left"
    )
    header = (
        f"{'history':>9}{'workers':>8}{'expired':>10}{'seconds':>9}{'rows/s':>9}{'batches':>9}"
        f"{'peak RSS MB':>13}{'RSS after setup MB':>20}{'seed s':>8}"
    )
    print(header)
    print("-" * len(header))
    for history in args.history:
        for workers in args.workers:
            seeded = _seed_backlog(args.reservations, history)
            results = sweep(workers, batch_size)
            _check(args.reservations, history)
            expired = sum(r.expired for r in results)
            if expired != args.reservations:  # the workers' own counts, beside _check's
                raise SystemExit(
                    f"check failed: the workers expired {expired:,}, not {args.reservations:,}"
                )
            seconds = max(r.finished for r in results) - min(r.started for r in results)
            peak = max(r.rss_peak_kb for r in results) / 1024
            setup = max(r.rss_after_setup_kb for r in results) / 1024
            print(
                f"{history:>9,}{workers:>8}{expired:>10,}{seconds:>9.2f}"
                f"{expired / seconds:>9,.0f}{sum(r.batches for r in results):>9}"
                f"{peak:>13.1f}{setup:>20.1f}{seeded:>8.1f}",
                flush=True,
            )
    print(f"load average at end: {_load()} ({os.cpu_count()} CPUs, shared with PostgreSQL)")
    # A failed check stops the run with exit status 1 (SystemExit with its message).
    print(
        "checks passed after every measurement: each reservation expired exactly once, "
        "none left pending, no stock counter drifted (exit status 0)"
    )


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


if __name__ == "__main__":
    main()
