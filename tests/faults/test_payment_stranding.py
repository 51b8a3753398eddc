"""No shopper stranded, no money lost — through real processes (SPEC §13).

A private PostgreSQL instance backs a real gunicorn (``config/gunicorn.conf.py``, its
real worker timeout) and real ``manage.py`` jobs; the dummy gateway's memory is the
shared Redis, so every process sees the same provider.

* A gateway that hangs: the confirm answers 504 ``PAYMENT_TIMEOUT`` in the envelope
  inside ``PAYMENT_DEADLINE_SECONDS``, the worker is not killed by its timeout (same pid,
  no ``WORKER TIMEOUT``), the stock is released.
* A worker killed with SIGKILL in the middle of a confirm (after the provider captured,
  or with the payment only authorized): the shopper's next confirm answers 409 with
  ``Retry-After`` while the payment is in flight, and after
  ``PAYMENT_IN_FLIGHT_TIMEOUT_SECONDS`` gets the order — never a lock-out, charged once,
  stock exact.
* A refund refused twice, then accepted, through the reconcile job: one refund at the
  gateway, no money unaccounted.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import psycopg
import pytest
import urllib3

from payments.gateway import DummyGateway, GatewayState, PaymentRequest
from tests.faults.servers import Gunicorn, PrivatePostgres, app_env, manage
from tests.support import ADDRESS

pytestmark = pytest.mark.slow

SEED = """
from decimal import Decimal
from inventory.models import Product, Warehouse
from inventory.services import set_stock
warehouse = Warehouse.objects.get(is_default=True)
for sku in ("HANG-1", "KILL-1", "REFUND-1"):
    product = Product.objects.create(sku=sku, name=sku, price=Decimal("7.50"))
    set_stock(product=product, warehouse=warehouse, on_hand=10, actor="test")
"""


@pytest.fixture(scope="module")
def database():
    pg = PrivatePostgres()
    pg.init()
    pg.start()
    try:
        url = pg.create_database("checkout_stranding")
        env = app_env(url)
        migrated = manage(env, "migrate", "--noinput")
        assert migrated.returncode == 0, migrated.stderr
        seeded = manage(env, "shell", "-c", SEED)
        assert seeded.returncode == 0, seeded.stderr
        yield url
    finally:
        pg.destroy()


class Shopper:
    def __init__(self, base_url: str):
        self.api = f"{base_url}/api/v1"
        self.http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=5, read=90))
        self.headers: dict[str, str] = {"Content-Type": "application/json"}
        self.cart_id = ""

    def call(self, method: str, path: str, body=None, headers=None):
        r = self.http.request(
            method,
            self.api + path,
            body=json.dumps(body).encode() if body is not None else None,
            headers={**self.headers, **(headers or {})},
        )
        return r

    def checkout(self, sku: str, quantity: int, method: str) -> None:
        cart = json.loads(self.call("POST", "/carts/", {}).data)
        self.cart_id = cart["id"]
        self.headers["X-Cart-Token"] = cart["token"]
        base = f"/carts/{self.cart_id}"
        assert self.call("POST", f"{base}/items/", {"sku": sku, "quantity": quantity}).status == 201
        assert self.call("POST", f"{base}/checkout/", {}).status == 201
        update = {"shipping_address": ADDRESS, "payment_method": method}
        assert self.call("PATCH", f"{base}/checkout/", update).status == 200

    def confirm(self, key: str):
        return self.call(
            "POST", f"/carts/{self.cart_id}/checkout/confirm/", {}, {"Idempotency-Key": key}
        )


def envelope_of(response) -> dict:
    assert response.headers.get("Content-Type", "").startswith("application/json"), (
        response.status,
        response.data[:300],
    )
    body = json.loads(response.data)
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    return body["error"]


def workers_of(master_pid: int) -> set[int]:
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    return {int(pid) for pid in children}


def query(url: str, sql: str, *params):
    with psycopg.connect(url.replace("postgres://", "postgresql://"), autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


def stock_of(url: str, sku: str) -> tuple[int, int]:
    return query(
        url,
        "SELECT s.on_hand, s.reserved FROM inventory_stocklevel s "
        "JOIN inventory_product p ON p.id = s.product_id WHERE p.sku = %s",
        sku,
    )[0]


def money_unaccounted(url: str) -> list:
    """Captured money on no live order that is neither refunded nor owed/flagged."""
    return query(
        url,
        "SELECT p.id, p.status, p.amount FROM payments_payment p "
        "LEFT JOIN orders_order o ON o.id = p.order_id "
        "WHERE p.payment_id <> '' AND p.status NOT IN ('refunded', 'refund_pending') "
        "AND (o.id IS NULL OR o.status = 'cancelled') AND NOT p.needs_attention",
    )


def at_gateway(payment_id: str, method: str):
    return DummyGateway().status(PaymentRequest(str(payment_id), 0, "USD", method))


def test_a_hanging_gateway_answers_504_in_the_envelope_inside_the_deadline(database, tmp_path):
    # The defaults: PAYMENT_DEADLINE_SECONDS 20, GUNICORN_TIMEOUT 30, PAYMENT_TIMEOUT 10 s
    # per call x PAYMENT_MAX_TRIES 3 plus backoff (which alone would exceed 30 s).
    env = app_env(database)
    for name in ("PAYMENT_DEADLINE_SECONDS", "GUNICORN_TIMEOUT", "PAYMENT_TIMEOUT_SECONDS"):
        env.pop(name, None)
    server = Gunicorn(env, tmp_path, workers=1)
    server.start()
    try:
        workers_before = workers_of(server.proc.pid)
        shopper = Shopper(server.base_url)
        shopper.checkout("HANG-1", 2, "test_timeout")
        started = time.monotonic()
        response = shopper.confirm("hang-1")
        elapsed = time.monotonic() - started
        health = shopper.http.request("GET", f"{server.base_url}/healthz")
        workers_after = workers_of(server.proc.pid)
    finally:
        server.stop()

    assert response.status == 504
    assert envelope_of(response)["code"] == "PAYMENT_TIMEOUT"
    assert elapsed < 20 + 2, elapsed
    assert health.status == 200
    assert workers_after == workers_before, "the worker was replaced"
    assert "WORKER TIMEOUT" not in server.log_tail(100_000)
    assert stock_of(database, "HANG-1") == (10, 0)
    (status, needs_attention), *_ = query(
        database,
        "SELECT status, needs_attention FROM payments_payment WHERE cart_id = %s",
        shopper.cart_id,
    )
    assert (status, needs_attention) == ("failed", False)


@pytest.mark.parametrize(
    ("gateway", "method", "provider_state", "stop"),
    [
        ("DiesAfterCaptureGateway", "test_hang_after_capture", GatewayState.CAPTURED, "sigkill"),
        ("DiesAtCaptureGateway", "test_hang_at_capture", GatewayState.AUTHORIZED, "sigkill"),
        # A call that ignores every timeout: gunicorn's own worker timeout aborts it.
        ("DiesAfterCaptureGateway", "test_hang_after_capture", GatewayState.CAPTURED, "abort"),
    ],
)
def test_a_worker_killed_mid_confirm_never_locks_the_shopper_out(
    database, tmp_path, gateway, method, provider_state, stop
):
    in_flight_timeout = 15
    env = app_env(
        database,
        PAYMENT_GATEWAY=f"tests.faults.gateways.{gateway}",
        GUNICORN_TIMEOUT="10",
        PAYMENT_DEADLINE_SECONDS="5",
        PAYMENT_IN_FLIGHT_TIMEOUT_SECONDS=str(in_flight_timeout),
        CHECKOUT_CONFIRM_WAIT_SECONDS="1",
    )
    before = stock_of(database, "KILL-1")
    server = Gunicorn(env, tmp_path, workers=1)
    server.start()
    try:
        shopper = Shopper(server.base_url)
        shopper.checkout("KILL-1", 3, method)
        first: dict = {}
        request = threading.Thread(
            target=lambda: first.setdefault("answer", _swallow(lambda: shopper.confirm("k-1"))),
            daemon=True,
        )
        request.start()
        # Wait until the provider holds the payment in the expected state, then kill the
        # worker serving the confirm (the one whose capture hangs).
        deadline = time.monotonic() + 20
        payment_id = None
        while time.monotonic() < deadline:
            rows = query(
                database, "SELECT id FROM payments_payment WHERE cart_id = %s", shopper.cart_id
            )
            if rows and at_gateway(rows[0][0], method).state == provider_state:
                payment_id = rows[0][0]
                break
            time.sleep(0.1)
        assert payment_id is not None, server.log_tail()
        time.sleep(0.3)  # inside the hanging call now
        if stop == "sigkill":
            (worker,) = workers_of(server.proc.pid)
            os.kill(worker, signal.SIGKILL)
            request.join(timeout=30)
            # The connection died with the worker: no answer at all.
            assert isinstance(first.get("answer"), urllib3.exceptions.HTTPError), first
        else:
            request.join(timeout=30)
            aborted = first.get("answer")
            # Aborted by GUNICORN_TIMEOUT: still the envelope, never gunicorn's HTML page.
            assert aborted.status == 503, aborted.data[:300]
            assert envelope_of(aborted)["code"] == "SERVICE_UNAVAILABLE"
            assert "WORKER TIMEOUT" in server.log_tail(100_000)

        # In flight: 409 with how long to wait, in the body and in Retry-After. (After
        # the worker timeout's abort the payment may be past the in-flight timeout
        # already, on a slow machine: then this confirm finishes it at once.)
        waiting = shopper.confirm("k-2")
        key = "k-2"
        if stop == "sigkill" or waiting.status == 409:
            assert waiting.status == 409, waiting.data
            error = envelope_of(waiting)
            assert error["code"] == "INVALID_CART_STATUS"
            retry_after = error["details"]["retry_after_seconds"]
            assert 1 <= retry_after <= in_flight_timeout
            assert waiting.headers["Retry-After"] == str(retry_after)
            time.sleep(retry_after + 0.5)
            key = "k-3"
            done = shopper.confirm(key)
        else:
            done = waiting
        assert done.status == 201, done.data
        order = json.loads(done.data)
        repeat = shopper.confirm(key)
    finally:
        server.stop()

    assert repeat.status == 200 and json.loads(repeat.data)["id"] == order["id"]
    captured = query(
        database,
        "SELECT id, order_id FROM payments_payment WHERE cart_id = %s AND status = 'captured'",
        shopper.cart_id,
    )
    assert len(captured) == 1 and str(captured[0][1]) == order["id"]
    if provider_state == GatewayState.CAPTURED:
        assert captured[0][0] == payment_id  # the interrupted payment itself: no 2nd charge
    else:
        assert at_gateway(payment_id, method).state == GatewayState.VOIDED
    on_hand, reserved = stock_of(database, "KILL-1")
    assert (on_hand, reserved) == (before[0] - 3, before[1])
    checked = manage(app_env(database), "check_inventory")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert money_unaccounted(database) == []


def test_a_refund_refused_twice_is_made_once_by_the_reconcile_job(database, tmp_path):
    env = app_env(
        database,
        PAYMENT_GATEWAY="tests.faults.gateways.RefusesTwoRefundsGateway",
        REFUND_RETRY_BASE_SECONDS="6",
    )
    server = Gunicorn(env, tmp_path, workers=1)
    server.start()
    try:
        shopper = Shopper(server.base_url)
        shopper.checkout("REFUND-1", 2, "card")
        placed = shopper.confirm("r-1")
        assert placed.status == 201, placed.data
        order = json.loads(placed.data)
        cancelled = shopper.call("POST", f"/orders/{order['id']}/cancel/", {})
    finally:
        server.stop()

    assert cancelled.status == 200, cancelled.data
    body = json.loads(cancelled.data)
    assert body["status"] == "cancelled"
    # The first attempt (right after the cancel committed) was refused: owed, not lost.
    assert body["payment"]["status"] == "refund_pending"
    assert body["payment"]["refunded_amount"] == "0.00"
    assert stock_of(database, "REFUND-1") == (10, 0)

    def reconcile() -> None:
        run = manage(env, "reconcile_payments")
        assert run.returncode == 0, run.stdout + run.stderr

    def payment():
        return query(
            database,
            "SELECT id, status, refund_attempts, refunded_amount, amount, needs_attention "
            "FROM payments_payment WHERE order_id = %s",
            order["id"],
        )[0]

    def wait_until_due() -> None:
        (seconds,) = query(
            database,
            "SELECT EXTRACT(EPOCH FROM refund_next_attempt_at - now()) FROM payments_payment "
            "WHERE order_id = %s",
            order["id"],
        )[0]
        time.sleep(max(0.0, float(seconds)) + 0.3)

    assert payment()[1:3] == ("refund_pending", 1)
    wait_until_due()  # backoff: 6 s after the first attempt
    reconcile()  # second attempt: refused again, next in 12 s
    assert payment()[1:3] == ("refund_pending", 2)
    reconcile()  # not due yet
    assert payment()[1:3] == ("refund_pending", 2)
    wait_until_due()
    reconcile()  # third attempt: refunded
    payment_id, status, attempts, refunded, amount, flagged = payment()
    assert (status, attempts, flagged) == ("refunded", 3, False)
    assert refunded == amount and str(amount) == order["total"]
    reconcile()  # nothing left
    assert payment()[1:3] == ("refunded", 3)
    assert len(at_gateway(payment_id, "card").refund_ids) == 1
    assert money_unaccounted(database) == []


def _swallow(call):
    try:
        return call()
    except urllib3.exceptions.HTTPError as error:
        return error
