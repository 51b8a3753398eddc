"""PostgreSQL restarts while shoppers are checking out through gunicorn.

A private PostgreSQL instance (never the shared server) backs a real gunicorn with two
workers and persistent database connections. Six shopper threads run the whole flow
(cart → lines → checkout → address and payment → confirm) over HTTP; mid-run the
database is stopped (``pg_ctl stop -m fast``: every session is terminated), left down
for a moment, and started again. While it is down every answer is the error envelope —
503 ``SERVICE_UNAVAILABLE`` with ``Retry-After`` — never another 5xx, an HTML page or a
dropped connection; once it is back the service recovers by itself (no restart of
gunicorn) and checkouts complete again; afterwards the stock invariants hold and no unit
left stock without an order item.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import psycopg
import pytest
import urllib3

from tests.faults.servers import Gunicorn, PrivatePostgres, app_env, manage
from tests.support import ADDRESS

pytestmark = pytest.mark.slow

SHOPPERS = 6
SKUS = 20
ON_HAND = 1000
DOWN_SECONDS = 2.0

SEED = f"""
from decimal import Decimal
from inventory.models import Product, Warehouse
from inventory.services import set_stock
warehouse = Warehouse.objects.get(is_default=True)
for i in range({SKUS}):
    product = Product.objects.create(sku=f"PGR-{{i:03d}}", name=f"Item {{i}}", price=Decimal("5.00"))
    set_stock(product=product, warehouse=warehouse, on_hand={ON_HAND}, actor="test")
"""


@dataclass
class Answer:
    at: float
    step: str
    status: int  # 0: no HTTP answer at all
    code: str | None
    envelope: bool
    retry_after: str | None


@dataclass
class Log:
    answers: list[Answer] = field(default_factory=list)
    completed_at: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, answer: Answer) -> None:
        with self.lock:
            self.answers.append(answer)


class Shopper:
    def __init__(self, http: urllib3.PoolManager, base_url: str, log: Log, seed: int):
        self.http = http
        self.api = f"{base_url}/api/v1"
        self.log = log
        self.seed = seed

    def call(self, step: str, method: str, path: str, body=None, headers=None):
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        try:
            r = self.http.request(
                method,
                self.api + path,
                body=json.dumps(body).encode() if body is not None else None,
                headers=all_headers,
            )
        except urllib3.exceptions.HTTPError:
            self.log.add(Answer(time.monotonic(), step, 0, None, False, None))
            return 0, None
        try:
            data = json.loads(r.data) if r.data else None
        except ValueError:
            data = None
        error = data.get("error") if isinstance(data, dict) else None
        envelope = (
            isinstance(error, dict)
            and set(data) == {"error"}
            and set(error) == {"code", "message", "details"}
        )
        self.log.add(
            Answer(
                time.monotonic(),
                step,
                r.status,
                error.get("code") if isinstance(error, dict) else None,
                envelope,
                r.headers.get("Retry-After"),
            )
        )
        return r.status, data

    def run_once(self, n: int) -> None:
        status, cart = self.call("create", "POST", "/carts/", {})
        if status != 201:
            return
        h = {"X-Cart-Token": cart["token"]}
        base = f"/carts/{cart['id']}"
        for k in range(2):
            sku = f"PGR-{(self.seed * 7 + n * 3 + k) % SKUS:03d}"
            status, _ = self.call("add", "POST", f"{base}/items/", {"sku": sku, "quantity": 1}, h)
            if status != 201:
                return
        if self.call("start", "POST", f"{base}/checkout/", {}, h)[0] != 201:
            return
        update = {"shipping_address": ADDRESS, "payment_method": "card"}
        if self.call("update", "PATCH", f"{base}/checkout/", update, h)[0] != 200:
            return
        key = {"Idempotency-Key": str(uuid.uuid4())}
        if self.call("confirm", "POST", f"{base}/checkout/confirm/", {}, {**h, **key})[0] == 201:
            with self.log.lock:
                self.log.completed_at.append(time.monotonic())


def _completed_after(log: Log, t: float) -> int:
    with log.lock:
        return sum(1 for c in log.completed_at if c > t)


def _wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def private_postgres():
    pg = PrivatePostgres()
    pg.init()
    pg.start()
    try:
        yield pg
    finally:
        pg.destroy()


def test_postgres_restart_under_load_answers_503_then_recovers(private_postgres, tmp_path):
    pg = private_postgres
    url = pg.create_database("checkout_restart")
    env = app_env(url)
    migrated = manage(env, "migrate", "--noinput")
    assert migrated.returncode == 0, migrated.stderr
    seeded = manage(env, "shell", "-c", SEED)
    assert seeded.returncode == 0, seeded.stderr

    server = Gunicorn(env, tmp_path, workers=2)
    server.start()
    log = Log()
    stop = threading.Event()
    http = urllib3.PoolManager(
        maxsize=SHOPPERS, retries=False, timeout=urllib3.Timeout(connect=5, read=30)
    )

    def shop(seed: int) -> None:
        shopper = Shopper(http, server.base_url, log, seed)
        n = 0
        while not stop.is_set():
            shopper.run_once(n)
            n += 1

    threads = [threading.Thread(target=shop, args=(i,), daemon=True) for i in range(SHOPPERS)]
    try:
        for t in threads:
            t.start()
        assert _wait_for(lambda: _completed_after(log, 0) >= 3, 30), "no checkout before"
        down_at = time.monotonic()
        pg.stop("fast")
        time.sleep(DOWN_SECONDS)
        pg.start()
        up_at = time.monotonic()
        recovered = _wait_for(lambda: _completed_after(log, up_at) >= 3, 30)
        stop.set()
        for t in threads:
            t.join(timeout=60)
        health = http.request("GET", f"{server.base_url}/healthz")
    finally:
        stop.set()
        server.stop()

    answers = log.answers
    during = [a for a in answers if down_at <= a.at <= up_at]
    by_status = Counter((a.status, a.code) for a in answers)
    assert recovered, f"no checkout completed after the restart: {by_status}"
    assert health.status == 200
    assert all(a.status != 0 for a in answers), f"dropped connections: {by_status}"
    assert [a for a in answers if a.status >= 500 and a.status != 503] == [], by_status
    unavailable = [a for a in answers if a.status == 503]
    assert unavailable, f"the outage was never seen: {by_status}"
    assert all(a.code == "SERVICE_UNAVAILABLE" and a.envelope for a in unavailable)
    assert all(a.retry_after == "1" for a in unavailable)
    assert all(a.envelope for a in answers if a.status >= 400), by_status
    assert any(a.status == 503 for a in during)

    with psycopg.connect(url, autocommit=True) as conn:
        drift = conn.execute(
            """
            SELECT count(*) FROM inventory_stocklevel s
             WHERE s.reserved <> COALESCE((SELECT sum(quantity) FROM inventory_reservation r
                                            WHERE r.stock_level_id = s.id
                                              AND r.status = 'pending'), 0)
                OR s.reserved < 0 OR s.reserved > s.on_hand
            """
        ).fetchone()[0]
        left_stock, sold = conn.execute(
            """
            SELECT (SELECT sum(%s - on_hand) FROM inventory_stocklevel),
                   (SELECT COALESCE(sum(quantity), 0) FROM orders_orderitem)
            """,
            [ON_HAND],
        ).fetchone()
    assert drift == 0
    assert left_stock == sold
    checked = manage(env, "check_inventory")
    assert checked.returncode == 0, checked.stdout + checked.stderr
