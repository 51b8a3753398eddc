"""The web server as ``config/gunicorn.conf.py`` starts it by default: threaded (gthread)
workers that keep a client's connection open across requests, count every request
served by their threads in the multi-process metrics, and on SIGTERM finish the request
in flight (its answer reaches the client) before they exit."""

from __future__ import annotations

import http.client
import json
import signal
import subprocess
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from carts.tokens import hash_token
from tests.observability.metrics_helpers import child_env, sample, scrape
from tests.support import ADDRESS, API, stocked
from tests.support.factories import CartFactory, CartItemFactory, WarehouseFactory
from tests.support.processes import ROOT, free_port

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


class Server:
    """The project's gunicorn with its default worker settings (no GUNICORN_THREADS)."""

    def __init__(self, tmp_path: Path, workers: int = 1, **env: str):
        self.port = free_port()
        self.log_path = tmp_path / "gunicorn.log"
        prom_dir = tmp_path / "prometheus"
        prom_dir.mkdir()
        environment = child_env(
            PROMETHEUS_MULTIPROC_DIR=str(prom_dir),
            HOST="127.0.0.1",
            PORT=str(self.port),
            WEB_CONCURRENCY=str(workers),
            **env,
        )
        environment.pop("GUNICORN_THREADS", None)
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(  # noqa: S603
            [str(ROOT / ".venv/bin/gunicorn"), "config.wsgi", "-c", "config/gunicorn.conf.py"],
            cwd=ROOT,
            env=environment,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 40
        while not self._healthy():
            assert self.proc.poll() is None, self.log()
            assert time.monotonic() < deadline, "gunicorn did not start"
            time.sleep(0.2)

    def _healthy(self) -> bool:
        connection = self.connection()
        try:
            connection.request("GET", "/healthz")
            return connection.getresponse().status == 200
        except OSError:
            return False
        finally:
            connection.close()

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)
        self._log.close()


class Client:
    """JSON requests over one HTTP/1.1 connection, reused while the server keeps it."""

    def __init__(self, connection: http.client.HTTPConnection):
        self.connection = connection
        self.headers: dict[str, str] = {"Content-Type": "application/json"}

    def call(self, method: str, path: str, body: object = None, **headers: str):
        self.connection.request(
            method,
            f"{API}{path}",
            body=None if body is None else json.dumps(body),
            headers={**self.headers, **headers},
        )
        response = self.connection.getresponse()
        data = response.read()
        return response.status, (json.loads(data) if data else None), response

    def checkout(self, sku: str, payment_method: str) -> str:
        """A cart of one line of ``sku`` in checkout, ready to pay; its path."""
        status, cart, _ = self.call("POST", "/carts/", {})
        assert status == 201, cart
        self.headers["X-Cart-Token"] = cart["token"]
        path = f"/carts/{cart['id']}"
        status, body, _ = self.call("POST", f"{path}/items/", {"sku": sku, "quantity": 1})
        assert status == 201, body
        status, body, _ = self.call("POST", f"{path}/checkout/", {})
        assert status == 201, body
        update = {"shipping_address": ADDRESS, "payment_method": payment_method}
        status, body, _ = self.call("PATCH", f"{path}/checkout/", update)
        assert status == 200, body
        return path


def test_default_workers_are_threaded_and_keep_the_connection_alive(tmp_path):
    stock = stocked(on_hand=10, warehouse=WarehouseFactory(code="gthread-ka"))
    server = Server(tmp_path)
    try:
        client = Client(server.connection())
        client.connection.connect()
        sock = client.connection.sock
        path = client.checkout(stock.product.sku, "card")
        status, order, response = client.call(
            "POST", f"{path}/checkout/confirm/", {}, **{"Idempotency-Key": str(uuid.uuid4())}
        )
        assert status == 201, order
        assert response.getheader("Connection", "").lower() != "close"
        # Five requests, one TCP connection: the server never closed it.
        assert client.connection.sock is sock
    finally:
        server.stop()
    assert "Using worker: gthread" in server.log()


def test_metrics_count_every_request_that_threads_served(tmp_path):
    """Two threaded workers, 12 checkout starts at once: whichever worker answers the
    scrape reports all 12 (prometheus_client's multi-process files, written by threads)."""
    stock = stocked(on_hand=100, warehouse=WarehouseFactory(code="gthread-metrics"))
    carts = []
    for i in range(12):
        cart = CartFactory(token_hash=hash_token(f"threads-{i}"))
        CartItemFactory(cart=cart, product=stock.product, warehouse=stock.warehouse)
        carts.append((cart.id, f"threads-{i}"))
    server = Server(tmp_path, workers=2)

    def start(cart: tuple) -> int:
        connection = server.connection()
        try:
            connection.request(
                "POST",
                f"{API}/carts/{cart[0]}/checkout/",
                body="{}",
                headers={"Content-Type": "application/json", "X-Cart-Token": cart[1]},
            )
            return connection.getresponse().status
        finally:
            connection.close()

    def metrics_page() -> dict:
        connection = server.connection()
        try:
            connection.request("GET", "/metrics")
            return scrape(connection.getresponse().read().decode())
        finally:
            connection.close()

    try:
        with ThreadPoolExecutor(12) as pool:
            assert list(pool.map(start, carts)) == [201] * 12
        pages = [metrics_page() for _ in range(6)]
    finally:
        server.stop()
    for page in pages:
        assert sample(page, "carts_checkout_total") == 12
        assert sample(page, "stock_reservations_total", outcome="success") == 12


def test_sigterm_lets_the_request_in_flight_answer_before_the_worker_exits(tmp_path):
    stock = stocked(on_hand=10, warehouse=WarehouseFactory(code="gthread-term"))
    # test_timeout: the dummy gateway keeps the confirm busy for PAYMENT_TIMEOUT_SECONDS.
    server = Server(tmp_path, PAYMENT_TIMEOUT_SECONDS="3", PAYMENT_MAX_TRIES="1")
    try:
        client = Client(server.connection())
        path = client.checkout(stock.product.sku, "test_timeout")
        answer: dict = {}

        def confirm() -> None:
            status, body, _ = client.call(
                "POST", f"{path}/checkout/confirm/", {}, **{"Idempotency-Key": "k-1"}
            )
            answer.update(status=status, body=body)

        request = threading.Thread(target=confirm)
        request.start()
        time.sleep(1)  # the confirm is waiting on the gateway now
        server.proc.send_signal(signal.SIGTERM)
        request.join(30)
        exit_code = server.proc.wait(30)
    finally:
        server.stop()
    assert answer.get("status") == 504, (answer, server.log()[-2000:])
    assert answer["body"]["error"]["code"] == "PAYMENT_TIMEOUT"
    assert exit_code == 0
    stock.refresh_from_db()
    assert stock.reserved == 0  # the failed payment released its hold
