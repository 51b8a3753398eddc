"""The payment gateway's circuit breaker across real processes.

Two gunicorn servers (two workers each: four processes, as two web nodes would be) share
one PostgreSQL (a private instance) and one Redis. Shoppers pay with ``test_timeout``
until the breaker opens; from then on every confirm, on either server, is refused at once
with 503 ``PAYMENT_UNAVAILABLE`` and ``Retry-After`` — nothing charged, the cart still in
checkout with its holds. After the reset period one trial payment goes through and closes
it for everyone. With the breaker's Redis stopped (a private ``redis-server``), payments
keep working: the breaker fails open, and the log says so.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import tempfile
import threading
import time

import psycopg
import pytest
import urllib3
from django.conf import settings as django_settings

from tests.faults.servers import Gunicorn, PrivatePostgres, app_env, free_port, manage
from tests.support import ADDRESS

pytestmark = pytest.mark.slow

FAILURES = 3
RESET_SECONDS = 4
SEED = """
from decimal import Decimal
from inventory.models import Product, Warehouse
from inventory.services import set_stock
warehouse = Warehouse.objects.get(is_default=True)
product = Product.objects.create(sku="BRK-1", name="Breaker item", price=Decimal("5.00"))
set_stock(product=product, warehouse=warehouse, on_hand=1000, actor="test")
"""


class Shop:
    """A shopper's HTTP calls against one server."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.api = f"{base_url}/api/v1"
        self.http = urllib3.PoolManager(
            maxsize=10, retries=False, timeout=urllib3.Timeout(connect=5, read=30)
        )

    def call(self, method: str, path: str, body=None, token: str | None = None, **headers):
        all_headers = {"Content-Type": "application/json", **headers}
        if token:
            all_headers["X-Cart-Token"] = token
        r = self.http.request(
            method,
            self.api + path,
            body=json.dumps(body).encode() if body is not None else None,
            headers=all_headers,
        )
        return r

    def ready_checkout(self, payment_method: str) -> tuple[str, str]:
        cart = json.loads(self.call("POST", "/carts/", {}).data)
        cart_id, token = cart["id"], cart["token"]
        added = self.call(
            "POST", f"/carts/{cart_id}/items/", {"sku": "BRK-1", "quantity": 1}, token
        )
        assert added.status == 201, added.data
        assert self.call("POST", f"/carts/{cart_id}/checkout/", {}, token).status == 201
        patched = self.call(
            "PATCH",
            f"/carts/{cart_id}/checkout/",
            {"shipping_address": ADDRESS, "payment_method": payment_method},
            token,
        )
        assert patched.status == 200, patched.data
        return cart_id, token

    def pay_with(self, cart_id: str, token: str, method: str) -> None:
        patched = self.call(
            "PATCH", f"/carts/{cart_id}/checkout/", {"payment_method": method}, token
        )
        assert patched.status == 200, patched.data

    def confirm(self, cart_id: str, token: str, key: str):
        started = time.monotonic()
        r = self.call(
            "POST", f"/carts/{cart_id}/checkout/confirm/", {}, token, **{"Idempotency-Key": key}
        )
        return r, time.monotonic() - started

    def metric(self, sample: str) -> float | None:
        text = self.http.request("GET", f"{self.base_url}/metrics").data.decode()
        for line in text.splitlines():
            if line.startswith(sample + " "):
                return float(line.split()[-1])
        return None


def _code(response) -> str | None:
    try:
        return json.loads(response.data)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None


def _in_parallel(calls):
    results: list = [None] * len(calls)

    def run(i, fn):
        results[i] = fn()

    threads = [threading.Thread(target=run, args=(i, fn)) for i, fn in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


@pytest.fixture
def database():
    pg = PrivatePostgres()
    pg.init()
    pg.start()
    try:
        url = pg.create_database("checkout_breaker")
        yield pg, url
    finally:
        pg.destroy()


def _prepare(url: str, **extra: str) -> dict[str, str]:
    settings = {
        "PAYMENT_BREAKER_FAILURES": str(FAILURES),
        "PAYMENT_BREAKER_RESET_SECONDS": str(RESET_SECONDS),
        "PAYMENT_TIMEOUT_SECONDS": "0.5",
        "PAYMENT_MAX_TRIES": "1",
        "PAYMENT_BREAKER_REDIS_URL": django_settings.PAYMENT_BREAKER_REDIS_URL,
    }
    env = app_env(url, **{**settings, **extra})
    migrated = manage(env, "migrate", "--noinput")
    assert migrated.returncode == 0, migrated.stderr
    seeded = manage(env, "shell", "-c", SEED)
    assert seeded.returncode == 0, seeded.stderr
    return env


def _cart(url: str, cart_id: str) -> tuple[str, list[str], int]:
    with psycopg.connect(url, autocommit=True) as conn:
        status = conn.execute("SELECT status FROM carts_cart WHERE id = %s", [cart_id]).fetchone()
        holds = conn.execute(
            "SELECT status FROM inventory_reservation WHERE cart_id = %s", [cart_id]
        ).fetchall()
        payments = conn.execute(
            "SELECT count(*) FROM payments_payment WHERE cart_id = %s", [cart_id]
        ).fetchone()
    return status[0], [h[0] for h in holds], payments[0]


def test_breaker_opens_across_workers_and_servers_refuses_fast_and_closes_after_a_trial(
    database, tmp_path
):
    _pg, url = database
    env = _prepare(url)
    servers = [Gunicorn(env, tmp_path / name, workers=2) for name in ("a", "b")]
    try:
        for server in servers:
            server.start()
        a, b = (Shop(s.base_url) for s in servers)

        # The shoppers who pay once it is open get ready first: the breaker stays open only
        # RESET_SECONDS, and on a busy machine their two dozen requests can take that long.
        waiting = [(shop, shop.ready_checkout("card")) for shop in (a, b, a, b, a, b)]

        # FAILURES shoppers meet a gateway that never answers, on both servers.
        failing = [(shop, shop.ready_checkout("test_timeout")) for shop in (a, b, a)]
        answers = _in_parallel(
            [(lambda s=shop, c=cart: s.confirm(*c, key="k-timeout")) for shop, cart in failing]
        )
        assert [(r.status, _code(r)) for r, _ in answers] == [(504, "PAYMENT_TIMEOUT")] * 3
        assert a.metric('payment_breaker_state{state="open"}') == 1
        assert b.metric('payment_breaker_state{state="open"}') == 1

        # Open: every confirm, on any worker of either server, is refused at once.
        refused = _in_parallel(
            [(lambda s=shop, c=cart: s.confirm(*c, key="k-card")) for shop, cart in waiting]
        )
        for response, elapsed in refused:
            assert (response.status, _code(response)) == (503, "PAYMENT_UNAVAILABLE"), response.data
            assert 1 <= int(response.headers["Retry-After"]) <= RESET_SECONDS
            assert elapsed < 0.5, elapsed
        for _shop, (cart_id, _token) in waiting:
            assert _cart(url, cart_id) == ("checkout", ["pending"], 0)  # nothing charged
        state = json.loads(
            a.call("GET", f"/carts/{waiting[0][1][0]}/checkout/", None, waiting[0][1][1]).data
        )
        assert state["status"] == "checkout"

        # After the reset period one trial payment goes through and closes it for all.
        time.sleep(int(refused[0][0].headers["Retry-After"]) + 0.2)
        trial, _ = b.confirm(*waiting[1][1], key="k-card")
        assert trial.status == 201, trial.data
        assert a.metric('payment_breaker_state{state="closed"}') == 1
        rest = _in_parallel(
            [
                (lambda s=shop, c=cart: s.confirm(*c, key="k-card"))
                for shop, cart in waiting
                if cart != waiting[1][1]
            ]
        )
        assert [r.status for r, _ in rest] == [201] * 5

        def total(to: str) -> float:
            return sum(
                shop.metric(f'payment_breaker_transitions_total{{to="{to}"}}') or 0
                for shop in (a, b)
            )

        assert total("open") == 1
        assert total("half_open") == 1
        assert total("closed") == 1
    finally:
        for server in servers:
            server.stop()
    logs = "".join(s.log_tail(200_000) for s in servers)
    opened = [line for line in logs.splitlines() if '"payment_breaker.opened"' in line]
    assert len(opened) == 1, logs[-3000:]
    assert '"payment_breaker.half_opened"' in servers[1].log_tail(200_000)
    assert '"payment_breaker.closed"' in servers[1].log_tail(200_000)


class PrivateRedis:
    """A throw-away ``redis-server`` on a free port (never the shared one)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="redis-breaker-")
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(  # noqa: S603 - fixed argument list
            [
                shutil.which("redis-server") or "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.dir,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


def test_redis_outage_leaves_payments_working_and_is_logged(database, tmp_path):
    _pg, url = database
    redis_server = PrivateRedis()
    redis_server.start()
    try:
        env = _prepare(url, PAYMENT_BREAKER_REDIS_URL=redis_server.url)
        server = Gunicorn(env, tmp_path, workers=2)
        server.start()
        try:
            shop = Shop(server.base_url)
            first, _ = shop.confirm(*shop.ready_checkout("card"), key="k-1")
            assert first.status == 201, first.data
            assert shop.metric("payment_breaker_storage_up") == 1

            redis_server.stop()

            # Beyond the threshold of failures: never refused, the breaker fails open.
            for n in range(FAILURES + 1):
                r, _ = shop.confirm(*shop.ready_checkout("test_timeout"), key=f"k-t{n}")
                assert (r.status, _code(r)) == (504, "PAYMENT_TIMEOUT"), r.data
            paid, elapsed = shop.confirm(*shop.ready_checkout("card"), key="k-2")
            assert paid.status == 201, paid.data
            assert elapsed < 2
            assert shop.metric("payment_breaker_storage_up") == 0
            assert shop.metric('payment_breaker_state{state="closed"}') == 1

            # Redis back: the storage is used again after its retry period.
            redis_server.start()
            deadline = time.monotonic() + 15
            while shop.metric("payment_breaker_storage_up") != 1:
                assert time.monotonic() < deadline, "the breaker never saw Redis again"
                time.sleep(0.5)
        finally:
            server.stop()
        log = server.log_tail(200_000)
        assert '"payment_breaker.storage_unavailable"' in log, log[-3000:]
        assert '"fail_open"' in log
        assert "RedisError" not in log  # one line per outage, not a traceback per call
    finally:
        redis_server.stop()
        shutil.rmtree(redis_server.dir, ignore_errors=True)
