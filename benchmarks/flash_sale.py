"""Flash sale: concurrent shoppers through real HTTP against gunicorn, then an audit.

Each *shopper* runs the whole storefront flow over HTTP::

    POST carts/ → POST carts/{id}/items/ (once per line) → POST carts/{id}/checkout/
      → PATCH carts/{id}/checkout/ (addresses + payment method)
      → POST carts/{id}/checkout/confirm/ (with an Idempotency-Key)

A share of shoppers walks away after the PATCH (``--abandon-rate``: their reservations
are left to lapse), and a share pays with ``test_decline`` (``--decline-rate``: the
dummy gateway declines at authorization, 402 ``PAYMENT_DECLINED``, reservations
released). Shoppers whose checkout start is refused with ``INSUFFICIENT_STOCK`` are
counted as *sold out*; that is the expected end of a flash sale, not an error.

Scenarios (``--mode``):

* ``hot`` — every cart holds one unit of the one flash sku (``--hot-stock`` units on
  hand, fewer than the shoppers want) plus ``--lines - 1`` lines drawn from the other
  skus: everyone queues on one stock row and the sale sells out.
* ``uniform`` — every line is drawn (without repeats inside a cart) from ``--skus``
  skus with plenty of stock: the throughput case.

The harness is self-contained: it drops and re-creates its own database (default
``checkout_flash`` on the server of ``DATABASE_URL``), migrates and seeds it, starts
gunicorn (``config/gunicorn.conf.py``, ``--workers`` processes) bound to 127.0.0.1 on a
free port with PostgreSQL and Redis (broker ``--broker-url``), runs the shoppers from a
thread pool of ``--shoppers`` threads until ``--checkouts`` shoppers have run or
``--duration`` seconds have passed, stops the server, and audits the database.

Reservation TTLs of the server are scaled down to ``--reservation-ttl`` seconds
(``CHECKOUT_RESERVATION_TTL_SECONDS`` and ``CHECKOUT_EXTENSION_TTL_SECONDS`` = T,
``CHECKOUT_EXTENSION_THRESHOLD_SECONDS`` = 0.4 T, the ratio of the defaults) so that an
abandoned checkout's reservations lapse within the run; the payment TTL is left as is.

Audit definitions (all from the database, never from what the client saw):

* **oversold units** — per sku, ``max(0, sold - initial on_hand)`` where *sold* is the
  quantity in order items; summed over skus. Goal 0.
* **stock drift** — per sku, ``|(initial on_hand - final on_hand) - sold|``: units that
  left stock without an order item, or the reverse. Goal 0.
* **leftover reserved units** — after the load, the harness waits until every pending
  reservation's ``expires_at`` has passed (at most T + 5 s: a reservation that would hold
  longer, such as a payment TTL left behind by a confirm that never finished, is not
  waited for and so is counted), runs the reservation sweeper and the
  abandon-expired-checkouts job once each through their ``manage.py`` commands, then
  sums ``StockLevel.reserved``. Abandoned carts are thus *lapsed*, never cancelled.
  Goal 0.
* **invariant drift** — rows where ``reserved`` differs from the sum of pending
  reservations or lies outside ``0..on_hand``, and the exit code of
  ``manage.py check_inventory``. Goal 0 / exit 0.
* **lost payments** — captured payments without an order. Goal 0.

Run (about a minute; loopback only; bounded by ``--checkouts`` and ``--duration``)::

    .venv/bin/python benchmarks/flash_sale.py --mode uniform --shoppers 32 --lines 3
    .venv/bin/python benchmarks/flash_sale.py --mode hot --shoppers 32 --hot-stock 300
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.dbsetup import recreate_database  # noqa: E402
from benchmarks.gunicorn_process import start_gunicorn, stop_gunicorn  # noqa: E402

VENV_BIN = ROOT / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python") if (VENV_BIN / "python").exists() else sys.executable

ADDRESS = {
    "name": "Flash Shopper",
    "line1": "1 Sale Street",
    "city": "Springfield",
    "postal_code": "12345",
    "country": "US",
}
EXPECTED_CODES = {"INSUFFICIENT_STOCK", "PAYMENT_DECLINED"}
PROTECTED_DATABASES = {"postgres", "template0", "template1", "checkout"}


# --- settings -------------------------------------------------------------------------


@dataclass
class Options:
    mode: str
    shoppers: int
    checkouts: int
    duration: float
    lines: int
    quantity: int
    skus: int
    stock: int
    hot_stock: int
    abandon_rate: float
    decline_rate: float
    reservation_ttl: int
    workers: int
    threads: int
    database_url: str
    broker_url: str
    cache_url: str
    seed: int
    json_path: str | None
    log_level: str
    keep_logs: bool


def parse_args(argv: list[str] | None = None) -> Options:
    default_db = urlunsplit(
        urlsplit(
            os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/checkout")
        )._replace(path="/checkout_flash")
    )
    p = argparse.ArgumentParser(
        description="Flash-sale load test through HTTP against gunicorn, with a DB audit.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--mode", choices=["hot", "uniform"], default="uniform")
    p.add_argument("--shoppers", type=int, default=32, help="concurrent shoppers (threads)")
    p.add_argument("--checkouts", type=int, default=3000, help="shoppers to run in total")
    p.add_argument("--duration", type=float, default=60.0, help="stop starting shoppers after")
    p.add_argument("--lines", type=int, default=3, help="lines per cart")
    p.add_argument("--quantity", type=int, default=1, help="units per line")
    p.add_argument("--skus", type=int, default=200, help="skus besides the hot one")
    p.add_argument("--stock", type=int, default=1_000_000, help="on_hand of each normal sku")
    p.add_argument("--hot-stock", type=int, default=300, help="on_hand of the hot sku")
    p.add_argument("--abandon-rate", type=float, default=0.10)
    p.add_argument("--decline-rate", type=float, default=0.05)
    p.add_argument("--reservation-ttl", type=int, default=30, help="server checkout TTL (s)")
    p.add_argument("--workers", type=int, default=3, help="gunicorn worker processes")
    p.add_argument("--threads", type=int, default=1, help="gunicorn threads per worker")
    p.add_argument("--database-url", default=default_db, help="dropped and re-created!")
    p.add_argument("--broker-url", default="redis://127.0.0.1:6379/0")
    p.add_argument("--cache-url", default="redis://127.0.0.1:6379/1")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", dest="json_path", default=None, help="also write results here")
    p.add_argument("--log-level", default="INFO", help="server LOG_LEVEL")
    p.add_argument("--keep-logs", action="store_true", help="keep the server log directory")
    a = p.parse_args(argv)
    if not 0 <= a.abandon_rate <= 1 or not 0 <= a.decline_rate <= 1:
        p.error("rates are between 0 and 1")
    if a.abandon_rate + a.decline_rate > 1:
        p.error("abandon-rate + decline-rate must not exceed 1")
    if a.lines < 1 or a.shoppers < 1 or a.checkouts < 1 or a.quantity < 1:
        p.error("lines, shoppers, checkouts and quantity must be >= 1")
    normal_lines = a.lines - 1 if a.mode == "hot" else a.lines
    if normal_lines > a.skus:
        p.error("--skus must be at least the number of lines drawn from them")
    if a.reservation_ttl < 5:
        p.error("--reservation-ttl must be >= 5 seconds")
    name = urlsplit(a.database_url).path.lstrip("/")
    if not name or name in PROTECTED_DATABASES:
        p.error(f"refusing to drop database {name!r}; give the benchmark its own database")
    return Options(**{k: v for k, v in vars(a).items()})


# --- database -------------------------------------------------------------------------


def server_env(opts: Options, metrics_dir: str) -> dict[str, str]:
    ttl = opts.reservation_ttl
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": opts.database_url,
            "CELERY_BROKER_URL": opts.broker_url,
            "REDIS_CACHE_URL": opts.cache_url,
            "CHECKOUT_RESERVATION_TTL_SECONDS": str(ttl),
            "CHECKOUT_EXTENSION_TTL_SECONDS": str(ttl),
            "CHECKOUT_EXTENSION_THRESHOLD_SECONDS": str(int(ttl * 0.4)),
            "LOG_LEVEL": opts.log_level,
            "PROMETHEUS_MULTIPROC_DIR": metrics_dir,
            "PYTHONUNBUFFERED": "1",
        }
    )
    for name in ("API_THROTTLE_ANON", "API_THROTTLE_USER", "DEBUG"):
        env.pop(name, None)
    return env


def manage(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PYTHON, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def setup_django(env: dict[str, str]) -> None:
    for key in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "CELERY_BROKER_URL", "REDIS_CACHE_URL"):
        os.environ[key] = env[key]
    os.environ["LOG_LEVEL"] = "WARNING"  # seeding logs are not part of the report
    import django

    django.setup()


@dataclass
class Catalog:
    hot_sku: str | None
    skus: list[str]
    initial: dict[str, int]


def seed(opts: Options) -> Catalog:
    """Products and stock through the reservation service's ``set_stock`` (the only code
    that changes stock numbers), in the default warehouse."""
    from decimal import Decimal

    from django.db import connection

    from inventory.models import Product, Warehouse
    from inventory.services import set_stock

    warehouse = Warehouse.objects.get(is_default=True)
    wanted: dict[str, int] = {f"FLASH-{i:04d}": opts.stock for i in range(opts.skus)}
    hot = None
    if opts.mode == "hot":
        hot = "FLASH-HOT"
        wanted[hot] = opts.hot_stock
    products = Product.objects.bulk_create(
        [
            Product(sku=sku, name=f"Flash item {sku}", price=Decimal("19.99"), currency="USD")
            for sku in wanted
        ]
    )
    for product in products:
        set_stock(product=product, warehouse=warehouse, on_hand=wanted[product.sku], actor="bench")
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    connection.close()
    return Catalog(hot_sku=hot, skus=[s for s in wanted if s != hot], initial=wanted)


# --- server ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """gunicorn with the project's config file, on 127.0.0.1:<free port>."""

    def __init__(self, opts: Options, env: dict[str, str], log_dir: str):
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(log_dir) / "gunicorn.log"
        self.env = dict(env)
        self.env.update(
            {
                "HOST": "127.0.0.1",
                "PORT": str(self.port),
                "WEB_CONCURRENCY": str(opts.workers),
                "GUNICORN_THREADS": str(opts.threads),
                "GUNICORN_ACCESSLOG": str(Path(log_dir) / "access.log"),
            }
        )
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> None:
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        try:
            self.proc = start_gunicorn(
                env=self.env, log=self._log, base_url=self.base_url, timeout=timeout
            )
        except RuntimeError as error:
            raise SystemExit(f"{error}; see {self.log_path}") from None

    def stop(self) -> None:
        stop_gunicorn(self.proc)
        if getattr(self, "_log", None):
            self._log.close()


# --- shoppers -------------------------------------------------------------------------


@dataclass
class ThreadStats:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: Counter = field(default_factory=Counter)  # (endpoint, status, code)
    outcomes: Counter = field(default_factory=Counter)
    requests: int = 0
    non_envelope: int = 0


class Shopper:
    """One shopper thread's HTTP session (urllib3: one pool shared by every thread)."""

    def __init__(self, http, base_url: str, stats: ThreadStats):
        self.http = http
        self.api = f"{base_url}/api/v1"
        self.stats = stats

    def call(
        self,
        endpoint: str,
        method: str,
        path: str,
        body: dict | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        import urllib3

        all_headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if headers:
            all_headers.update(headers)
        payload = json.dumps(body).encode() if body is not None else None
        started = time.perf_counter()
        try:
            response = self.http.request(method, self.api + path, body=payload, headers=all_headers)
        except urllib3.exceptions.HTTPError as exc:
            self.stats.latencies[endpoint].append(time.perf_counter() - started)
            self.stats.requests += 1
            self.stats.errors[(endpoint, 0, type(exc).__name__)] += 1
            return 0, None
        self.stats.latencies[endpoint].append(time.perf_counter() - started)
        self.stats.requests += 1
        try:
            data = json.loads(response.data) if response.data else None
        except ValueError:
            data = None
        if response.status >= 400:
            code = None
            if isinstance(data, dict) and isinstance(data.get("error"), dict):
                code = data["error"].get("code")
            if code is None:
                self.stats.non_envelope += 1
            self.stats.errors[(endpoint, response.status, code or "-")] += 1
        return response.status, data

    def run(self, rng: random.Random, skus: list[str], opts: Options) -> str:
        status, cart = self.call("create cart", "POST", "/carts/", {"currency": "USD"})
        if status != 201:
            return "failed"
        cart_id, token = cart["id"], cart["token"]
        h = {"X-Cart-Token": token}
        base = f"/carts/{cart_id}"
        for sku in skus:
            status, _ = self.call(
                "add line", "POST", f"{base}/items/", {"sku": sku, "quantity": opts.quantity}, h
            )
            if status != 201:
                return "failed"
        status, state = self.call("start checkout", "POST", f"{base}/checkout/", {}, h)
        if status == 400 and _code(state) == "INSUFFICIENT_STOCK":
            return "sold_out"
        if status != 201:
            return "failed"
        roll = rng.random()
        method = "test_decline" if roll < opts.decline_rate else "card"
        update = {
            "shipping_address": ADDRESS,
            "billing_address": ADDRESS,
            "payment_method": method,
            "current_step": 3,
        }
        status, _ = self.call("update checkout", "PATCH", f"{base}/checkout/", update, h)
        if status != 200:
            return "failed"
        if roll >= 1 - opts.abandon_rate:
            return "abandoned"  # walks away: the reservations are left to lapse
        status, order = self.call(
            "confirm",
            "POST",
            f"{base}/checkout/confirm/",
            {},
            {**h, "Idempotency-Key": str(uuid.uuid4())},
        )
        if status == 201:
            return "completed"
        if status == 402 and _code(order) == "PAYMENT_DECLINED":
            return "declined" if method == "test_decline" else "failed"
        if status == 400 and _code(order) == "INSUFFICIENT_STOCK":
            return "sold_out"
        return "failed"


def _code(body: Any) -> str | None:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return body["error"].get("code")
    return None


@dataclass
class LoadResult:
    elapsed: float
    stats: ThreadStats
    shoppers_started: int


def run_load(opts: Options, base_url: str, catalog: Catalog) -> LoadResult:
    import urllib3

    http = urllib3.PoolManager(
        num_pools=2,
        maxsize=opts.shoppers,
        block=False,
        retries=False,
        timeout=urllib3.Timeout(connect=10, read=60),
    )
    lock = threading.Lock()
    counter = {"next": 0}
    stop_at = time.monotonic() + opts.duration
    per_thread: list[ThreadStats] = []

    def take() -> int | None:
        with lock:
            if counter["next"] >= opts.checkouts or time.monotonic() >= stop_at:
                return None
            counter["next"] += 1
            return counter["next"]

    def worker(index: int) -> None:
        stats = ThreadStats()
        with lock:
            per_thread.append(stats)
        rng = random.Random(opts.seed * 1_000_003 + index)
        shopper = Shopper(http, base_url, stats)
        normal = opts.lines - 1 if catalog.hot_sku else opts.lines
        while take() is not None:
            skus = rng.sample(catalog.skus, normal)
            if catalog.hot_sku:
                skus.insert(0, catalog.hot_sku)
            stats.outcomes[shopper.run(rng, skus, opts)] += 1

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=opts.shoppers, thread_name_prefix="shopper") as pool:
        futures = [pool.submit(worker, i) for i in range(opts.shoppers)]
        for f in futures:
            f.result()
    elapsed = time.perf_counter() - started
    http.clear()

    total = ThreadStats()
    for s in per_thread:
        for k, v in s.latencies.items():
            total.latencies[k].extend(v)
        total.errors.update(s.errors)
        total.outcomes.update(s.outcomes)
        total.requests += s.requests
        total.non_envelope += s.non_envelope
    return LoadResult(elapsed=elapsed, stats=total, shoppers_started=counter["next"])


# --- audit ----------------------------------------------------------------------------


def _scalar(sql: str, params: list | None = None) -> Any:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        return cursor.fetchone()[0]


def reserved_units() -> int:
    return int(_scalar("SELECT COALESCE(sum(reserved), 0) FROM inventory_stocklevel"))


def wait_for_lapse(opts: Options) -> float:
    """Sleeps until every pending reservation's expiry has passed, at most T + 5 s."""
    latest = _scalar("SELECT max(expires_at) FROM inventory_reservation WHERE status = 'pending'")
    if latest is None:
        return 0.0
    wait = (latest - datetime.now(UTC)).total_seconds() + 1.0
    wait = max(0.0, min(wait, opts.reservation_ttl + 5.0))
    time.sleep(wait)
    return wait


def run_sweepers(env: dict[str, str]) -> list[tuple[str, int, str]]:
    """Runs the reservation sweeper and the abandon-expired-checkouts job once, through
    their manage.py commands (whichever of the known names exists)."""
    listing = manage(env, "help", "--commands").stdout.split()
    ran = []
    for candidates in (
        ("expire_reservations",),
        ("abandon_expired_checkouts",),
    ):
        name = next((c for c in candidates if c in listing), None)
        if name is None:
            ran.append((candidates[0], -1, "command not found"))
            continue
        result = manage(env, name)
        tail = (result.stdout.strip().splitlines() or [""])[-1]
        ran.append((name, result.returncode, tail))
    return ran


@dataclass
class Audit:
    reserved_after_load: int
    lapse_wait: float
    sweepers: list[tuple[str, int, str]]
    oversold: int
    stock_drift: int
    leftover_reserved: int
    pending_after_sweep: int
    carts_in_checkout: int
    invariant_rows: int
    orders: int
    order_units: int
    lost_payments: int
    per_sku_hot: dict[str, int] | None
    check_inventory_exit: int
    check_inventory_tail: str


def audit(opts: Options, env: dict[str, str], catalog: Catalog) -> Audit:
    from django.db import connection

    reserved_after_load = reserved_units()
    waited = wait_for_lapse(opts)
    connection.close()
    sweepers = run_sweepers(env)

    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT p.sku, s.on_hand, s.reserved,
                   COALESCE((SELECT sum(oi.quantity) FROM orders_orderitem oi
                              JOIN orders_order o ON o.id = oi.order_id
                             WHERE oi.product_id = p.id AND o.status <> 'cancelled'), 0)
              FROM inventory_stocklevel s JOIN inventory_product p ON p.id = s.product_id
            """
        )
        rows = cursor.fetchall()
    oversold = drift = 0
    hot = None
    for sku, on_hand, _reserved, sold in rows:
        initial = catalog.initial[sku]
        oversold += max(0, sold - initial)
        drift += abs((initial - on_hand) - sold)
        if sku == catalog.hot_sku:
            hot = {"initial": initial, "final_on_hand": on_hand, "sold": int(sold)}

    invariant_rows = _scalar(
        """
        SELECT count(*) FROM inventory_stocklevel s
         WHERE s.reserved <> COALESCE((SELECT sum(quantity) FROM inventory_reservation r
                                        WHERE r.stock_level_id = s.id
                                          AND r.status = 'pending'), 0)
            OR s.reserved < 0 OR s.reserved > s.on_hand OR s.on_hand < 0
        """
    )
    result = Audit(
        reserved_after_load=reserved_after_load,
        lapse_wait=waited,
        sweepers=sweepers,
        oversold=oversold,
        stock_drift=drift,
        leftover_reserved=reserved_units(),
        pending_after_sweep=int(
            _scalar(
                "SELECT COALESCE(sum(quantity), 0) FROM inventory_reservation"
                " WHERE status = 'pending'"
            )
        ),
        carts_in_checkout=int(_scalar("SELECT count(*) FROM carts_cart WHERE status='checkout'")),
        invariant_rows=int(invariant_rows),
        orders=int(_scalar("SELECT count(*) FROM orders_order")),
        order_units=int(_scalar("SELECT COALESCE(sum(quantity), 0) FROM orders_orderitem")),
        lost_payments=int(
            _scalar(
                "SELECT count(*) FROM payments_payment"
                " WHERE status = 'captured' AND order_id IS NULL"
            )
        ),
        per_sku_hot=hot,
        check_inventory_exit=0,
        check_inventory_tail="",
    )
    connection.close()
    check = manage(env, "check_inventory")
    result.check_inventory_exit = check.returncode
    text = (check.stdout + check.stderr).strip().splitlines()
    result.check_inventory_tail = text[-1] if text else ""
    return result


# --- report ---------------------------------------------------------------------------

ENDPOINT_ORDER = ["create cart", "add line", "start checkout", "update checkout", "confirm"]


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, int(-(-q * len(sorted_values) // 100)))  # ceil(q/100 * n)
    return sorted_values[min(rank, len(sorted_values)) - 1]


def machine_load() -> str:
    try:
        one, five, fifteen = os.getloadavg()
        return f"{one:.2f} {five:.2f} {fifteen:.2f}"
    except OSError:
        return "?"


def _proc_cpu_seconds(pid: int) -> float:
    """utime + stime of one process (Linux /proc), 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid:
            found.append(int(entry))
    return found


def _machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return sum(values) - idle, sum(values)


@dataclass
class CpuMeter:
    """Where the cores went during the load: the whole machine, gunicorn (master and
    workers), this database's PostgreSQL backends, and this client process.

    Backends come and go (connections are opened by the first requests and renewed
    after ``DATABASE_CONN_MAX_AGE``), so a thread samples them every half second and
    keeps the last CPU time seen of each; a backend's last half second may be missed.
    """

    server_pid: int
    database_url: str
    start_machine: tuple[float, float] = (0.0, 0.0)
    start_gunicorn: float = 0.0
    start_client: float = 0.0
    result: dict[str, float] = field(default_factory=dict)
    _backends: dict[int, float] = field(default_factory=dict)
    _baseline: dict[int, float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _gunicorn(self) -> float:
        pids = [self.server_pid, *_children(self.server_pid)]
        return sum(_proc_cpu_seconds(p) for p in pids)

    def _client(self) -> float:
        usage = os.times()
        return usage.user + usage.system

    def _sample_backends(self) -> None:
        import psycopg

        name = urlsplit(self.database_url).path.lstrip("/")
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            first = True
            while True:
                rows = conn.execute(
                    "SELECT pid FROM pg_stat_activity"
                    " WHERE datname = %s AND pid <> pg_backend_pid()",
                    [name],
                ).fetchall()
                for (pid,) in rows:
                    seconds = _proc_cpu_seconds(pid)
                    if first:
                        self._baseline[pid] = seconds
                    if seconds:
                        self._backends[pid] = seconds
                first = False
                if self._stop.wait(0.5):
                    break

    def start(self) -> None:
        self.start_machine = _machine_busy()
        self.start_gunicorn = self._gunicorn()
        self.start_client = self._client()
        self._thread = threading.Thread(target=self._sample_backends, daemon=True)
        self._thread.start()

    def stop(self, elapsed: float) -> None:
        busy, total = _machine_busy()
        gunicorn = self._gunicorn() - self.start_gunicorn
        client = self._client() - self.start_client
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        postgres = sum(self._backends.values()) - sum(self._baseline.values())
        machine_busy = (busy - self.start_machine[0]) / max(1, total - self.start_machine[1])
        self.result = {
            "machine_busy_pct": round(100 * machine_busy, 1),
            "gunicorn_cores": round(gunicorn / elapsed, 2),
            "postgres_backends_cores": round(postgres / elapsed, 2),
            "client_cores": round(client / elapsed, 2),
            "cores": os.cpu_count() or 1,
        }


def build_report(
    opts: Options,
    load: LoadResult,
    result: Audit,
    load_before: str,
    load_after: str,
    cpu: dict[str, float],
) -> dict[str, Any]:
    s = load.stats
    completed = s.outcomes.get("completed", 0)
    endpoints = {}
    for name in ENDPOINT_ORDER + sorted(set(s.latencies) - set(ENDPOINT_ORDER)):
        values = sorted(s.latencies.get(name, []))
        if not values:
            continue
        endpoints[name] = {
            "count": len(values),
            "p50_ms": round(percentile(values, 50) * 1000, 1),
            "p95_ms": round(percentile(values, 95) * 1000, 1),
            "p99_ms": round(percentile(values, 99) * 1000, 1),
            "max_ms": round(values[-1] * 1000, 1),
        }
    server_errors = sum(n for (_, status, _), n in s.errors.items() if status >= 500)
    transport_errors = sum(n for (_, status, _), n in s.errors.items() if status == 0)
    unexpected = sum(n for (_, _, code), n in s.errors.items() if code not in EXPECTED_CODES)
    confirm_p99 = endpoints.get("confirm", {}).get("p99_ms", float("nan"))
    cost = {}
    if cpu and completed:
        # CPU per completed checkout, the work of abandoned/declined shoppers included:
        # independent of what else runs on the machine, unlike checkouts/s.
        for name in ("gunicorn", "postgres_backends", "client"):
            cost[f"{name}_ms"] = round(cpu[f"{name}_cores"] * load.elapsed * 1000 / completed, 1)
        total = sum(cost.values())
        cost["total_ms"] = round(total, 1)
        cost["ceiling_checkouts_per_s_on_all_cores"] = round(cpu["cores"] * 1000 / total, 1)
    return {
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "options": {k: v for k, v in vars(opts).items() if k not in ("json_path",)},
        "machine": {
            "cpus": os.cpu_count(),
            "loadavg_before": load_before,
            "loadavg_after": load_after,
            "cpu_during_load": cpu,
            "cpu_per_checkout": cost,
        },
        "elapsed_s": round(load.elapsed, 2),
        "shoppers_run": sum(s.outcomes.values()),
        "outcomes": dict(s.outcomes),
        "checkouts_per_s": round(completed / load.elapsed, 1),
        "requests": s.requests,
        "requests_per_s": round(s.requests / load.elapsed, 1),
        "endpoints": endpoints,
        "errors": {
            f"{endpoint} {status} {code}": n
            for (endpoint, status, code), n in sorted(s.errors.items(), key=lambda kv: -kv[1])
        },
        "server_errors_5xx": server_errors,
        "transport_errors": transport_errors,
        "unexpected_errors": unexpected,
        "non_envelope_errors": s.non_envelope,
        "audit": {
            "reserved_units_after_load": result.reserved_after_load,
            "lapse_wait_s": round(result.lapse_wait, 1),
            "sweepers": [
                {"command": n, "exit": rc, "summary": tail} for n, rc, tail in result.sweepers
            ],
            "oversold_units": result.oversold,
            "stock_drift_units": result.stock_drift,
            "leftover_reserved_units": result.leftover_reserved,
            "pending_reservation_units_after_sweep": result.pending_after_sweep,
            "carts_still_in_checkout": result.carts_in_checkout,
            "invariant_rows_broken": result.invariant_rows,
            "orders": result.orders,
            "order_units": result.order_units,
            "lost_payments": result.lost_payments,
            "hot_sku": result.per_sku_hot,
            "check_inventory_exit": result.check_inventory_exit,
            "check_inventory_summary": result.check_inventory_tail,
        },
        "goals": {
            "0 oversold": result.oversold == 0,
            "0 5xx": server_errors == 0,
            "0 leftover reserved": result.leftover_reserved == 0,
            "0 invariant drift": result.invariant_rows == 0
            and result.stock_drift == 0
            and result.check_inventory_exit == 0,
            ">= 50 checkouts/s": completed / load.elapsed >= 50,
            "confirm p99 < 250 ms": confirm_p99 < 250,
        },
    }


def print_report(report: dict[str, Any], out: Callable[[str], None] = print) -> None:
    o = report["options"]
    out(f"Flash sale — {report['when']}, {report['machine']['cpus']} CPUs")
    out(
        f"  mode={o['mode']} shoppers={o['shoppers']} lines={o['lines']}x{o['quantity']} "
        f"skus={o['skus']} hot_stock={o['hot_stock'] if o['mode'] == 'hot' else '-'} "
        f"abandon={o['abandon_rate']} decline={o['decline_rate']} "
        f"gunicorn={o['workers']}w x {o['threads']}t ttl={o['reservation_ttl']}s"
    )
    out(
        f"  load average before {report['machine']['loadavg_before']}, "
        f"after {report['machine']['loadavg_after']}"
    )
    c = report["machine"]["cpu_during_load"]
    if c:
        out(
            f"  CPU during the load: machine {c['machine_busy_pct']}% busy of {c['cores']} cores;"
            f" gunicorn {c['gunicorn_cores']} cores, PostgreSQL backends"
            f" {c['postgres_backends_cores']}, this client {c['client_cores']}"
        )
    k = report["machine"]["cpu_per_checkout"]
    if k:
        out(
            f"  CPU per completed checkout: gunicorn {k['gunicorn_ms']} ms, PostgreSQL"
            f" {k['postgres_backends_ms']} ms, client {k['client_ms']} ms = {k['total_ms']} ms"
            f" -> at most {k['ceiling_checkouts_per_s_on_all_cores']} checkouts/s on"
            f" {c['cores']} otherwise idle cores"
        )
    out("")
    out(
        f"  {report['shoppers_run']} shoppers in {report['elapsed_s']} s: "
        + ", ".join(f"{k} {v}" for k, v in sorted(report["outcomes"].items()))
    )
    out(f"  checkouts/s   {report['checkouts_per_s']}")
    out(f"  requests/s    {report['requests_per_s']}  ({report['requests']} requests)")
    out("")
    out(f"  {'endpoint':<16} {'count':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for name, e in report["endpoints"].items():
        out(
            f"  {name:<16} {e['count']:>7} {e['p50_ms']:>8} {e['p95_ms']:>8} "
            f"{e['p99_ms']:>8} {e['max_ms']:>8}"
        )
    out("")
    out("  errors by endpoint, status, code:")
    for key, n in report["errors"].items() or [("none", "")]:
        out(f"    {key:<48} {n}")
    out(
        f"  5xx: {report['server_errors_5xx']}   transport errors: {report['transport_errors']}"
        f"   unexpected: {report['unexpected_errors']}"
        f"   not in the envelope: {report['non_envelope_errors']}"
    )
    a = report["audit"]
    out("")
    out("  audit (database):")
    out(f"    reserved units right after the load      {a['reserved_units_after_load']}")
    out(f"    waited for reservations to lapse          {a['lapse_wait_s']} s")
    for sw in a["sweepers"]:
        out(f"    manage.py {sw['command']:<30} exit {sw['exit']}  {sw['summary']}")
    out(f"    oversold units                            {a['oversold_units']}")
    out(f"    stock drift units (left stock w/o order)  {a['stock_drift_units']}")
    out(f"    leftover reserved units                   {a['leftover_reserved_units']}")
    out(
        f"    pending reservation units after sweep     {a['pending_reservation_units_after_sweep']}"
    )
    out(f"    carts still in checkout                   {a['carts_still_in_checkout']}")
    out(f"    stock rows breaking invariants            {a['invariant_rows_broken']}")
    out(f"    orders / units                            {a['orders']} / {a['order_units']}")
    out(f"    captured payments without an order        {a['lost_payments']}")
    if a["hot_sku"]:
        h = a["hot_sku"]
        out(
            f"    hot sku: initial {h['initial']}, sold {h['sold']}, "
            f"on hand now {h['final_on_hand']}"
        )
    out(
        f"    manage.py check_inventory                 exit {a['check_inventory_exit']}"
        f"  {a['check_inventory_summary']}"
    )
    out("")
    out(
        "  goals: "
        + ", ".join(f"{name}: {'met' if ok else 'MISSED'}" for name, ok in report["goals"].items())
    )
    failed = [name for name, ok in report.get("safety", {}).items() if not ok]
    if failed:
        out("  safety: FAILED " + ", ".join(failed) + " (exit status 1)")
    else:
        out(f"  safety: all {len(report.get('safety', {}))} checks passed (exit status 0)")


def safety_checks(report: dict[str, Any]) -> dict[str, bool]:
    """Every safety result the report prints, each True when it holds; the exit status is
    1 unless all hold. Throughput and latency goals are reported, not enforced."""
    a = report["audit"]
    return {
        "0 5xx": report["server_errors_5xx"] == 0,
        "0 transport errors": report["transport_errors"] == 0,
        "0 unexpected error codes": report["unexpected_errors"] == 0,
        "every error in the envelope": report["non_envelope_errors"] == 0,
        "0 oversold": a["oversold_units"] == 0,
        "0 stock drift": a["stock_drift_units"] == 0,
        "0 leftover reserved": a["leftover_reserved_units"] == 0,
        "0 pending after the sweep": a["pending_reservation_units_after_sweep"] == 0,
        "0 stock rows breaking invariants": a["invariant_rows_broken"] == 0,
        "0 captured payments without an order": a["lost_payments"] == 0,
        "sweeper commands exit 0": all(sw["exit"] == 0 for sw in a["sweepers"]),
        "check_inventory exit 0": a["check_inventory_exit"] == 0,
    }


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    random.seed(opts.seed)
    log_dir = tempfile.mkdtemp(prefix="flash-sale-")
    metrics_dir = Path(log_dir) / "prometheus"
    metrics_dir.mkdir()
    env = server_env(opts, str(metrics_dir))

    print(f"[flash] re-creating database {urlsplit(opts.database_url).path.lstrip('/')}")
    recreate_database(opts.database_url)
    migrated = manage(env, "migrate", "--noinput")
    if migrated.returncode != 0:
        print(migrated.stdout, migrated.stderr, file=sys.stderr)
        return 2
    setup_django(env)
    catalog = seed(opts)
    print(f"[flash] seeded {len(catalog.initial)} skus; starting gunicorn ({opts.workers} workers)")

    server = Server(opts, env, log_dir)
    try:
        server.start()
        print(
            f"[flash] {server.base_url} up (gunicorn master pid {server.proc.pid}); "
            f"{opts.shoppers} shoppers, logs in {log_dir}"
        )
        load_before = machine_load()
        meter = CpuMeter(server.proc.pid, opts.database_url)
        meter.start()
        load = run_load(opts, server.base_url, catalog)
        meter.stop(load.elapsed)
        load_after = machine_load()
    finally:
        server.stop()
    print(f"[flash] load done in {load.elapsed:.1f} s; auditing")
    result = audit(opts, env, catalog)
    report = build_report(opts, load, result, load_before, load_after, meter.result)
    report["safety"] = safety_checks(report)
    print()
    print_report(report)
    if opts.json_path:
        Path(opts.json_path).write_text(json.dumps(report, indent=2, default=str))
    safe = all(report["safety"].values())
    if not opts.keep_logs and safe:
        import shutil

        shutil.rmtree(log_dir, ignore_errors=True)
    else:
        print(f"\n  server logs kept in {log_dir}")
    return 0 if safe else 1


if __name__ == "__main__":
    sys.exit(main())
