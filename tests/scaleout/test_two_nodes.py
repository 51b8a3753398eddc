"""Two web nodes and two Celery workers on one PostgreSQL, all through PgBouncer.

Two gunicorn processes (two workers each) on two ports, two Celery workers and one beat
(every job of the beat schedule due each second), every one of them connected through the session's
PgBouncer (transaction pooling, 5 server connections) with
``DATABASE_POOL_MODE=transaction``. A flash sale (``benchmarks/flash_sale.py``'s
shopper) sends each shopper's requests to the two nodes in turn; a quarter of the
shoppers walk away after filling in the checkout, whose holds lapse after a few seconds
and are swept while the sale goes on. Then, from the database: nothing oversold, no unit
lost (on hand + sold = initial for every product, nothing left reserved or pending), one
order per confirmed checkout and none missing for a captured payment, no 5xx and every
error in the envelope with an expected code, and ``manage.py check_inventory`` clean.
"""

from __future__ import annotations

import random
import signal
import subprocess
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import pytest
import redis
from django.db.models import Sum

from benchmarks.flash_sale import Shopper, ThreadStats
from carts.models import Cart
from inventory.models import Reservation, ReservationEvent, ReservationStatus, StockLevel
from ops.schedule import SCHEDULE, sync_schedule
from orders.models import Order, OrderItem
from payments.models import Payment
from tests.faults.dbfaults import database_url
from tests.faults.servers import PYTHON, Gunicorn, app_env, manage
from tests.support import assert_stock_invariants, stocked
from tests.support.processes import ROOT

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

SHOPPERS = 48
CONCURRENCY = 8
HOT_STOCK = 20  # fewer than the shoppers who pay: the sale sells out
OTHER_SKUS = 6
TTL = 5  # seconds a checkout holds its stock
# A shopper walks away after filling in the checkout (its holds lapse) or pays with a
# card the dummy gateway declines; the rest pay.
BEHAVIOUR = SimpleNamespace(quantity=1, abandon_rate=0.25, decline_rate=0.10)
# Answers a flash sale may give: sold out at start or confirm, declined, a hold that
# lapsed before the confirm on a busy machine.
EXPECTED_CODES = {"INSUFFICIENT_STOCK", "PAYMENT_DECLINED", "CHECKOUT_EXPIRED"}


class AlternatingShopper(Shopper):
    """The benchmark's shopper, each request to the next node in turn."""

    def __init__(self, http, base_urls: list[str], stats: ThreadStats, first: int):
        super().__init__(http, base_urls[0], stats)
        self.apis = [f"{url}/api/v1" for url in base_urls]
        self.turn = first
        self.served: Counter = Counter()

    def call(self, *args, **kwargs):
        self.api = self.apis[self.turn % len(self.apis)]
        self.turn += 1
        self.served[self.api] += 1
        return super().call(*args, **kwargs)


class Celery:
    """``celery -A config <args>`` in its own session, its output in ``log_path``."""

    def __init__(self, env: dict[str, str], log_path: Path, *args: str):
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(  # noqa: S603 - fixed argument list
            [PYTHON, "-m", "celery", "-A", "config", *args],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log():
            assert self.proc.poll() is None, f"celery exited: {self.log()[-3000:]}"
            assert time.monotonic() < deadline, f"no {text!r} in: {self.log()[-3000:]}"
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()


class PoolWatch(threading.Thread):
    """Samples PgBouncer's pool of the test database: the most clients and the most
    server connections seen at once."""

    def __init__(self, pgbouncer, dbname: str):
        super().__init__(daemon=True)
        self.pgbouncer, self.dbname = pgbouncer, dbname
        self.stop_event = threading.Event()
        self.clients = self.servers = 0

    def run(self) -> None:
        while not self.stop_event.is_set():
            pool = self.pgbouncer.pool(self.dbname)
            if pool is not None:
                self.clients = max(self.clients, pool["cl_active"] + pool["cl_waiting"])
                self.servers = max(
                    self.servers,
                    sum(
                        pool[k]
                        for k in ("sv_active", "sv_idle", "sv_used", "sv_tested", "sv_login")
                    ),
                )
            self.stop_event.wait(0.1)


def _flash_sale(base_urls: list[str], skus: list[str], hot: str) -> tuple[ThreadStats, Counter]:
    import urllib3

    http = urllib3.PoolManager(
        num_pools=2, maxsize=CONCURRENCY, retries=False, timeout=urllib3.Timeout(10, read=60)
    )
    lock = threading.Lock()
    total, served = ThreadStats(), Counter()

    def one(index: int) -> None:
        rng = random.Random(index)
        stats = ThreadStats()
        shopper = AlternatingShopper(http, base_urls, stats, first=index)
        outcome = shopper.run(rng, [hot, rng.choice(skus)], BEHAVIOUR)
        with lock:
            total.outcomes[outcome] += 1
            total.errors.update(stats.errors)
            total.requests += stats.requests
            total.non_envelope += stats.non_envelope
            served.update(shopper.served)

    with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        for future in [pool.submit(one, i) for i in range(SHOPPERS)]:
            future.result()
    http.clear()
    return total, served


def _wait_until_everything_ended(timeout: float) -> None:
    """The sweepers end every lapsed hold and abandoned checkout."""
    deadline = time.monotonic() + timeout
    while (
        Reservation.objects.filter(status=ReservationStatus.PENDING).exists()
        or Cart.objects.filter(status="checkout").exists()
    ):
        assert time.monotonic() < deadline, "the sweepers left holds or checkouts behind"
        time.sleep(0.25)


def test_flash_sale_on_two_nodes_and_two_workers_through_pgbouncer(pgbouncer, settings, tmp_path):
    hot = stocked(sku="FLASH-HOT", on_hand=HOT_STOCK)
    others = [stocked(sku=f"FLASH-{i}", on_hand=1000) for i in range(OTHER_SKUS)]
    initial = {level.product.sku: level.on_hand for level in [hot, *others]}

    env = app_env(
        pgbouncer.behind(database_url()),
        DATABASE_POOL_MODE="transaction",
        CHECKOUT_RESERVATION_TTL_SECONDS=str(TTL),
        CHECKOUT_EXTENSION_TTL_SECONDS=str(TTL),
        CHECKOUT_EXTENSION_THRESHOLD_SECONDS="2",
    )
    for name in ("DATABASE_LOCK_TIMEOUT_MS", "DATABASE_STATEMENT_TIMEOUT_MS"):
        env.pop(name, None)  # behind the pooler, its connect_query sets them
    for job in SCHEDULE:  # every sweeper due each second
        setattr(settings, job.interval_setting, 1)
    sync_schedule(force=True)
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    broker.flushdb()

    worker_env = {**env, "LOG_LEVEL": "INFO"}  # "Task ... succeeded" lines
    nodes = [Gunicorn(env, tmp_path / f"node{i}", workers=2) for i in (1, 2)]
    celery: list[Celery] = []
    watch = PoolWatch(pgbouncer, database_url().rsplit("/", 1)[1])
    try:
        for i in (1, 2):
            celery.append(
                Celery(
                    worker_env, tmp_path / f"worker{i}.log", "worker", "--pool=solo",
                    f"--hostname=scaleout{i}@%h", "--without-gossip", "--without-mingle",
                    "--loglevel=INFO",
                )
            )  # fmt: skip
        celery.append(
            Celery(
                env, tmp_path / "beat.log", "beat", "--loglevel=INFO",
                f"--schedule={tmp_path / 'beat-schedule'}", f"--pidfile={tmp_path / 'beat.pid'}",
            )
        )  # fmt: skip
        with ThreadPoolExecutor(max_workers=2) as starting:
            for started in [starting.submit(node.start, timeout=90) for node in nodes]:
                started.result()
        for worker in celery[:2]:
            worker.wait_for(" ready.")
        watch.start()

        stats, served = _flash_sale(
            [node.base_url for node in nodes], list(initial)[1:], "FLASH-HOT"
        )
        _wait_until_everything_ended(timeout=TTL + 25)
    finally:
        watch.stop_event.set()
        for process in celery:
            process.stop()
        for node in nodes:
            node.stop()
        broker.flushdb()
        broker.close()

    # Both nodes served, both workers swept, more clients than server connections.
    assert len(served) == 2 and min(served.values()) >= stats.requests // 3, served
    for worker in celery[:2]:
        assert "succeeded" in worker.log(), worker.log()[-3000:]
    assert watch.servers <= pgbouncer.pool_size < watch.clients, (watch.servers, watch.clients)

    # No 5xx, every error in the envelope and expected.
    assert not [key for key, n in stats.errors.items() if key[1] == 0 or key[1] >= 500], (
        stats.errors
    )
    assert stats.non_envelope == 0
    assert {code for _, _, code in stats.errors} <= EXPECTED_CODES, stats.errors
    assert stats.outcomes["completed"] > 0 and stats.outcomes["sold_out"] > 0, stats.outcomes
    assert stats.outcomes["abandoned"] > 0, stats.outcomes

    # Nothing oversold, nothing lost.
    sold = dict(
        OrderItem.objects.exclude(order__status="cancelled")
        .values_list("product__sku")
        .annotate(units=Sum("quantity"))
    )
    for level in StockLevel.objects.select_related("product"):
        sku = level.product.sku
        assert sold.get(sku, 0) <= initial[sku], sku
        assert (level.on_hand + sold.get(sku, 0), level.reserved) == (initial[sku], 0), sku
    assert Order.objects.count() == stats.outcomes["completed"]
    assert not Payment.objects.captured_without_order().exists()
    swept = ReservationEvent.objects.filter(actor__startswith="task:").count()
    assert swept > 0, "no lapsed hold was swept by a worker"
    assert_stock_invariants()
    checked = manage(env, "check_inventory")
    assert checked.returncode == 0, checked.stdout + checked.stderr
