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

``--waitlist`` (SPEC §15; implies ``--mode hot``): many shoppers, few units. A shopper
whose checkout start is refused with ``INSUFFICIENT_STOCK`` joins the flash sku's
waitlist (``POST carts/{id}/waitlist/``; a ``409 STOCK_AVAILABLE`` sends it back to
start checkout) and polls ``GET carts/{id}/waitlist/`` every ``--poll-interval`` s. When
its entry is ``offered`` (the freed unit is held for its cart, the line is in the cart),
``--lapse-rate`` of them let the offer lapse; the others start checkout, which uses the
offer's hold, and go on as above (``--abandon-rate`` and ``--decline-rate`` apply again,
so their unit passes on too). The server's offer TTL is ``--offer-ttl`` seconds
(``WAITLIST_OFFER_TTL_SECONDS``). There is no Celery worker: a *sweeper* thread of the
harness stands in for beat, running every ``--sweep-interval`` s the jobs the beat tasks
run (``inventory.cleanup.expire_reservations`` then
``inventory.waitlist_jobs.serve_waitlists``), so lapsed holds (abandoned checkouts,
lapsed offers) are expired and their units offered in that transaction. The sale is
over when, after the last shopper started, no hold of the flash sku is pending and no
unit of it is free while someone waits (checked by the sweeper after each round, twice
in a row); shoppers still waiting then stop (at the latest ``--wait-limit`` s after
joining). From the database after the run it reports units sold; offers made, claimed,
lapsed, cancelled; the **largest out-of-order offer** (per sku, for each offer the number
of entries that joined earlier and were still waiting when it was made, order of offers
taken from their holds' ids, which the stock row lock serializes; must be 0); the time
from a unit freed to its offer (the latest release or expiry of a flash-sku hold at or
before the offer; 0 when the freeing transaction made the offer) and from a lapsed
hold's expiry to its offer (what the sweeper's interval adds); and, besides the audit
below, **units left unoffered** (free units of a sku while entries still wait at the
end; must be 0) and offers left without a pending hold (must be 0).

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

from benchmarks import procstat  # noqa: E402
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
    waitlist: bool = False
    offer_ttl: int = 10
    lapse_rate: float = 0.2
    poll_interval: float = 1.0
    sweep_interval: float = 1.0
    wait_limit: float = 180.0


# Options of ``--waitlist`` only (left out of a report without it).
WAITLIST_OPTIONS = (
    "waitlist",
    "offer_ttl",
    "lapse_rate",
    "poll_interval",
    "sweep_interval",
    "wait_limit",
)


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
    w = p.add_argument_group("waitlist mode (SPEC §15)")
    w.add_argument(
        "--waitlist",
        action="store_true",
        help="hot mode where shoppers refused at start join the waitlist and poll it",
    )
    w.add_argument("--offer-ttl", type=int, default=10, help="server offer TTL (s)")
    w.add_argument("--lapse-rate", type=float, default=0.2, help="share of offers left to lapse")
    w.add_argument("--poll-interval", type=float, default=1.0, help="waitlist poll (s)")
    w.add_argument(
        "--sweep-interval", type=float, default=1.0, help="expiry + waitlist pass every (s)"
    )
    w.add_argument(
        "--wait-limit", type=float, default=180.0, help="a shopper stops waiting after (s)"
    )
    a = p.parse_args(argv)
    if a.waitlist:
        a.mode = "hot"
        if not 0 <= a.lapse_rate <= 1:
            p.error("--lapse-rate is between 0 and 1")
        if a.offer_ttl < 1 or a.poll_interval <= 0 or a.sweep_interval <= 0:
            p.error("--offer-ttl, --poll-interval and --sweep-interval must be positive")
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
    if opts.waitlist:
        env["WAITLIST_OFFER_TTL_SECONDS"] = str(opts.offer_ttl)
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
    offer_waits: list[float] = field(default_factory=list)  # --waitlist: join to offer seen


@dataclass
class Sale:
    """What the shoppers of ``--waitlist`` share: ``started_all`` is set once no shopper
    is left to start, ``over`` once no unit of the flash sku can be offered any more;
    ``busy`` counts the shoppers between starting and finishing that are not waiting
    for an offer (one of them may still reserve, join or free a unit)."""

    started_all: threading.Event = field(default_factory=threading.Event)
    over: threading.Event = field(default_factory=threading.Event)
    deadline: float = float("inf")  # time.monotonic() after which no shopper starts
    busy: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def all_started(self) -> bool:
        return self.started_all.is_set() or time.monotonic() >= self.deadline

    def add_busy(self, n: int) -> None:
        with self._lock:
            self.busy += n

    def quiet_shoppers(self) -> bool:
        """Every shopper has started and each has finished or is waiting for an offer."""
        with self._lock:
            return self.all_started() and self.busy == 0


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
        return self._checkout(rng, opts, base, h)

    def _checkout(self, rng: random.Random, opts: Options, base: str, h: dict[str, str]) -> str:
        """From a started checkout: PATCH, then walk away, or confirm (card or decline)."""
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

    def run_waitlist(self, rng: random.Random, skus: list[str], opts: Options, sale: Sale) -> str:
        """A shopper of ``--waitlist``: as :meth:`run`, but refused at start it joins the
        flash sku's waitlist, polls it, and on an offer lets it lapse (``--lapse-rate``)
        or starts checkout with it. Outcomes of the offered ones start with ``offer_``."""
        status, cart = self.call("create cart", "POST", "/carts/", {"currency": "USD"})
        if status != 201:
            return "failed"
        h = {"X-Cart-Token": cart["token"]}
        base = f"/carts/{cart['id']}"
        for sku in skus:
            status, _ = self.call(
                "add line", "POST", f"{base}/items/", {"sku": sku, "quantity": opts.quantity}, h
            )
            if status != 201:
                return "failed"
        for _ in range(5):  # a STOCK_AVAILABLE join sends the shopper back to start
            status, state = self.call("start checkout", "POST", f"{base}/checkout/", {}, h)
            if status == 201:
                return self._checkout(rng, opts, base, h)
            if status != 400 or _code(state) != "INSUFFICIENT_STOCK":
                return "failed"
            body = {"sku": skus[0], "quantity": opts.quantity}
            status, entry = self.call("join waitlist", "POST", f"{base}/waitlist/", body, h)
            if status == 201:
                break
            if status != 409 or _code(entry) != "STOCK_AVAILABLE":
                return "failed"
        else:
            return "failed"
        joined = time.monotonic()
        sale.add_busy(-1)  # waiting: the sale may end without this shopper
        try:
            seen = self._wait_for_offer(opts, sale, base, h, entry["id"], joined)
        finally:
            sale.add_busy(1)
        if seen != "offered":
            return seen
        self.stats.offer_waits.append(time.monotonic() - joined)
        if rng.random() < opts.lapse_rate:
            return "offer_lapsed"  # walks away: the offer's hold lapses and passes on
        status, state = self.call("start checkout", "POST", f"{base}/checkout/", {}, h)
        if status != 201:
            return "offer_start_refused"
        return "offer_" + self._checkout(rng, opts, base, h)

    def _wait_for_offer(
        self,
        opts: Options,
        sale: Sale,
        base: str,
        h: dict[str, str],
        entry_id: int,
        joined: float,
    ) -> str:
        """Polls the cart's waitlist until the entry is offered (``offered``), the sale is
        over or ``--wait-limit`` passed (``still_waiting``); anything else is an outcome."""
        give_up = joined + opts.wait_limit
        while True:
            if sale.over.wait(opts.poll_interval) or time.monotonic() >= give_up:
                return "still_waiting"
            status, listing = self.call("poll waitlist", "GET", f"{base}/waitlist/", None, h)
            if status != 200:
                return "failed"
            [mine] = [e for e in listing["entries"] if e["id"] == entry_id]
            if mine["status"] == "offered":
                return "offered"
            if mine["status"] != "waiting":
                return f"waitlist_{mine['status']}"  # ended without an offer seen: unexpected


def _code(body: Any) -> str | None:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return body["error"].get("code")
    return None


@dataclass
class LoadResult:
    elapsed: float
    stats: ThreadStats
    shoppers_started: int


def run_load(
    opts: Options, base_url: str, catalog: Catalog, sale: Sale | None = None
) -> LoadResult:
    """Runs the shoppers; with ``sale`` (``--waitlist``) they are waitlist shoppers
    (:meth:`Shopper.run_waitlist`) and ``sale.started_all`` is set once none is left to
    start."""
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
    if sale is not None:
        sale.deadline = stop_at

    def take() -> int | None:
        with lock:
            if counter["next"] >= opts.checkouts or time.monotonic() >= stop_at:
                if sale is not None:
                    sale.started_all.set()
                return None
            counter["next"] += 1
            if sale is not None:
                sale.add_busy(1)  # busy from now: counted before started_all can be seen
                if counter["next"] >= opts.checkouts:
                    sale.started_all.set()  # the last shopper starts now
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
            if sale is not None:
                try:
                    stats.outcomes[shopper.run_waitlist(rng, skus, opts, sale)] += 1
                finally:
                    sale.add_busy(-1)  # made busy by take()
            else:
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
        total.offer_waits.extend(s.offer_waits)
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


# --- waitlist mode ----------------------------------------------------------------------

SWEEP_EXPIRE_ACTOR = "bench:expire_reservations"
SWEEP_SERVE_ACTOR = "bench:serve_waitlists"


class Sweeper:
    """Stands in for Celery beat in ``--waitlist``: every ``--sweep-interval`` s it runs
    the expire-reservations job, then the serve-waitlists job (the functions the beat
    tasks run), and, once every shopper has started, ends the sale when nothing more can
    be offered (no pending hold of the flash sku, and no unit free while someone waits)
    two rounds in a row."""

    def __init__(self, opts: Options, hot_sku: str, sale: Sale):
        self.opts, self.hot_sku, self.sale = opts, hot_sku, sale
        self.rounds = 0
        self.waitlists_served = 0
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sweeper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def _run(self) -> None:
        from django.db import connection

        from inventory.cleanup import expire_reservations
        from inventory.models import Product
        from inventory.waitlist_jobs import serve_waitlists

        quiet = 0
        try:
            product_id = Product.objects.get(sku=self.hot_sku).id
            while not self._stop.is_set():
                expire_reservations(batch_size=1000, actor=SWEEP_EXPIRE_ACTOR)
                served = serve_waitlists(batch_size=1000, actor=SWEEP_SERVE_ACTOR)
                self.waitlists_served += served.done
                self.rounds += 1
                if self.sale.quiet_shoppers():
                    pending, free, waiting = _sale_state(product_id)
                    quiet = quiet + 1 if pending == 0 and (free == 0 or waiting == 0) else 0
                    if quiet >= 2:
                        self.sale.over.set()
                self._stop.wait(self.opts.sweep_interval)
        except Exception as exc:  # reported (and a safety check fails), the sale ends
            self.error = f"{type(exc).__name__}: {exc}"
            self.sale.over.set()
        finally:
            connection.close()


def _sale_state(product_id: Any) -> tuple[int, int, int]:
    """Pending holds of the product, its free units in active warehouses, waiting entries."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT
              (SELECT count(*) FROM inventory_reservation
                WHERE product_id = %(p)s AND status = 'pending'),
              (SELECT COALESCE(sum(GREATEST(s.on_hand - s.reserved, 0)), 0)
                 FROM inventory_stocklevel s JOIN inventory_warehouse w ON w.id = s.warehouse_id
                WHERE s.product_id = %(p)s AND w.is_active),
              (SELECT count(*) FROM inventory_waitlistentry
                WHERE product_id = %(p)s AND status = 'waiting')
            """,
            {"p": product_id},
        )
        pending, free, waiting = cursor.fetchone()
    return int(pending), int(free), int(waiting)


def _ms_summary(values: list[float]) -> dict[str, float | int]:
    """count, p50, p95, max of durations given in seconds, in milliseconds."""
    ordered = sorted(values)
    if not ordered:
        return {"count": 0}
    return {
        "count": len(ordered),
        "p50_ms": round(percentile(ordered, 50) * 1000, 1),
        "p95_ms": round(percentile(ordered, 95) * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
    }


def waitlist_audit(
    opts: Options, catalog: Catalog, load: LoadResult, sweeper: Sweeper
) -> dict[str, Any]:
    """The waitlist figures of the run, from the database (module docstring)."""
    from django.db import connection

    from inventory.models import Product

    product = Product.objects.get(sku=catalog.hot_sku)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT e.id, e.status, e.offered_at, e.ended_at,
                   (SELECT min(r.id) FROM inventory_reservation r
                     WHERE r.waitlist_entry_id = e.id)
              FROM inventory_waitlistentry e
             WHERE e.product_id = %s
             ORDER BY e.id
            """,
            [product.id],
        )
        entries = cursor.fetchall()
        cursor.execute(
            """
            SELECT ev.kind, ev.at, ev.expires_at
              FROM inventory_reservationevent ev
              JOIN inventory_reservation r ON r.id = ev.reservation_id
             WHERE r.product_id = %s AND ev.kind IN ('released', 'expired')
             ORDER BY ev.at, ev.id
            """,
            [product.id],
        )
        freed = cursor.fetchall()
        cursor.execute(
            """
            SELECT ev.actor, count(*)
              FROM inventory_reservationevent ev
              JOIN inventory_reservation r ON r.id = ev.reservation_id
             WHERE r.product_id = %s AND r.waitlist_entry_id IS NOT NULL
               AND ev.kind = 'created'
             GROUP BY ev.actor
            """,
            [product.id],
        )
        by_actor = cursor.fetchall()
        cursor.execute(
            """
            SELECT count(*) FROM inventory_waitlistentry e
             WHERE e.status = 'offered' AND NOT EXISTS (
                   SELECT 1 FROM inventory_reservation r
                    WHERE r.waitlist_entry_id = e.id AND r.status = 'pending')
            """
        )
        [without_hold] = cursor.fetchone()
        cursor.execute(
            """
            SELECT count(*) FROM inventory_stocklevel s
             WHERE s.waitlisted <> COALESCE((SELECT sum(e.quantity)
                                               FROM inventory_waitlistentry e
                                              WHERE e.product_id = s.product_id
                                                AND e.status = 'waiting'), 0)
            """
        )
        [counter_drift] = cursor.fetchone()
    connection.close()

    # Order: for each offer, the entries that joined earlier (lower id) and were still
    # waiting when it was made: offered later (a higher first hold id: holds are created
    # under the product's stock row locks, so their ids follow the order of the offers),
    # or never offered and not ended before it.
    offers = [(eid, at, seq) for eid, _, at, _, seq in entries if seq is not None]
    passed = []
    for eid, at, seq in offers:
        passed.append(
            sum(
                1
                for fid, _, _, ended, fseq in entries
                if fid < eid
                and (
                    (fseq is not None and fseq > seq)
                    or (fseq is None and (ended is None or ended > at))
                )
            )
        )
    # From a unit freed to its offer: the latest release or expiry of a flash-sku hold at
    # or before the offer (0 when the freeing transaction made it); from a lapsed hold's
    # expiry to the offer its expiry made.
    to_offer, lapse_to_offer, same_transaction = [], [], 0
    for _, at, _ in offers:
        before = [row for row in freed if row[1] <= at]
        if not before:
            continue
        kind, freed_at, expired_at = before[-1]
        to_offer.append((at - freed_at).total_seconds())
        same_transaction += freed_at == at
        if kind == "expired" and expired_at is not None:
            lapse_to_offer.append((at - expired_at).total_seconds())
    statuses = Counter(status for _, status, _, _, _ in entries)
    made_by = Counter()
    for actor, n in by_actor:
        if actor == SWEEP_EXPIRE_ACTOR:
            made_by["expiry sweeper"] += n
        elif actor == SWEEP_SERVE_ACTOR:
            made_by["waitlist pass (serve_waitlists job)"] += n
        elif actor.startswith("command:"):
            made_by[f"audit's {actor.removeprefix('command:')}"] += n
        else:
            made_by["a shopper's request"] += n
    pending, free, waiting = _sale_state(product.id)
    connection.close()
    return {
        "entries": len(entries),
        "entry_statuses": dict(sorted(statuses.items())),
        "offers_made": len(offers),
        "offers_claimed": statuses.get("claimed", 0),
        "offers_lapsed": statuses.get("expired", 0),
        "offers_cancelled": sum(
            1 for _, status, at, _, _ in entries if status == "cancelled" and at is not None
        ),
        "offers_open_at_end": statuses.get("offered", 0),
        "offer_holds_by_actor": dict(sorted(made_by.items())),
        "largest_out_of_order_offer": max(passed, default=0),
        "offers_out_of_order": sum(1 for n in passed if n),
        "freed_to_offer": _ms_summary(to_offer),
        "offers_in_the_freeing_transaction": same_transaction,
        "lapse_to_offer": _ms_summary(lapse_to_offer),
        "join_to_offer_seen_by_shopper": _ms_summary(load.stats.offer_waits),
        # Free units the first waiting entry would fit in (every entry wants --quantity).
        "units_left_unoffered": free if waiting and free >= opts.quantity else 0,
        "free_units_at_end": free,
        "waiting_entries_at_end": waiting,
        "pending_flash_holds_at_end": pending,
        "offers_without_a_pending_hold": int(without_hold),
        "waitlisted_counter_drift_rows": int(counter_drift),
        "sweeper_rounds": sweeper.rounds,
        "waitlists_served_by_the_pass": sweeper.waitlists_served,
        "sweeper_error": sweeper.error,
        "sale_over_detected": sweeper.sale.over.is_set(),
    }


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
        pids = [self.server_pid, *procstat.children(self.server_pid)]
        return sum(procstat.cpu_seconds(p) for p in pids)

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
                    seconds = procstat.cpu_seconds(pid)
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
    # A join that finds its unit free again (409 STOCK_AVAILABLE) is expected too.
    expected = EXPECTED_CODES | ({"STOCK_AVAILABLE"} if opts.waitlist else set())
    unexpected = sum(n for (_, _, code), n in s.errors.items() if code not in expected)
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
        "options": {
            k: v
            for k, v in vars(opts).items()
            if k != "json_path" and (opts.waitlist or k not in WAITLIST_OPTIONS)
        },
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
    if "waitlist" in report:
        print_waitlist(report, out)
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
        **(waitlist_safety(report["waitlist"]) if "waitlist" in report else {}),
    }


def waitlist_safety(w: dict[str, Any]) -> dict[str, bool]:
    return {
        "0 out-of-order offers": w["largest_out_of_order_offer"] == 0,
        "0 units left unoffered": w["units_left_unoffered"] == 0,
        "0 offers without a pending hold": w["offers_without_a_pending_hold"] == 0,
        "0 waitlisted counter drift": w["waitlisted_counter_drift_rows"] == 0,
        "sweeper ran without error": w["sweeper_error"] is None,
    }


def print_waitlist(report: dict[str, Any], out: Callable[[str], None]) -> None:
    w, o = report["waitlist"], report["options"]
    hot = report["audit"]["hot_sku"] or {}

    def ms(summary: dict[str, Any]) -> str:
        if not summary.get("count"):
            return "none"
        return (
            f"p50 {summary['p50_ms']} ms, p95 {summary['p95_ms']} ms, max {summary['max_ms']} ms"
            f" ({summary['count']})"
        )

    out("")
    out(
        f"  waitlist (database; offer TTL {o['offer_ttl']} s, lapse rate {o['lapse_rate']},"
        f" poll every {o['poll_interval']} s, sweeper every {o['sweep_interval']} s):"
    )
    out(f"    units sold (flash sku)                    {hot.get('sold')} of {hot.get('initial')}")
    out(f"    entries by status                         {w['entry_statuses']}")
    out(
        f"    offers made / claimed / lapsed / cancelled {w['offers_made']} / "
        f"{w['offers_claimed']} / {w['offers_lapsed']} / {w['offers_cancelled']}"
        f" (open at the end: {w['offers_open_at_end']})"
    )
    out(f"    offers made by                            {w['offer_holds_by_actor']}")
    out(
        f"    largest out-of-order offer                {w['largest_out_of_order_offer']}"
        f"  (offers passing an earlier entry: {w['offers_out_of_order']})"
    )
    out(
        f"    unit freed -> offer                       {ms(w['freed_to_offer'])};"
        f" in the freeing transaction: {w['offers_in_the_freeing_transaction']}"
    )
    out(f"    hold lapsed -> offer                      {ms(w['lapse_to_offer'])}")
    out(f"    join -> offer seen by the shopper         {ms(w['join_to_offer_seen_by_shopper'])}")
    out(
        f"    units left unoffered                      {w['units_left_unoffered']}"
        f"  (free at the end {w['free_units_at_end']}, waiting {w['waiting_entries_at_end']},"
        f" flash holds pending {w['pending_flash_holds_at_end']})"
    )
    out(f"    offers without a pending hold             {w['offers_without_a_pending_hold']}")
    out(f"    stock rows with waitlisted drift          {w['waitlisted_counter_drift_rows']}")
    out(
        f"    sweeper rounds {w['sweeper_rounds']}, waitlists served by the pass"
        f" {w['waitlists_served_by_the_pass']}, sale end detected {w['sale_over_detected']}"
        + (f", ERROR {w['sweeper_error']}" if w["sweeper_error"] else "")
    )


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    random.seed(opts.seed)
    log_dir = tempfile.mkdtemp(prefix="flash-sale-")
    metrics_dir = Path(log_dir) / "prometheus"
    metrics_dir.mkdir()
    env = server_env(opts, str(metrics_dir))
    if opts.waitlist:  # the sweeper thread makes offers too: the same offer TTL
        os.environ["WAITLIST_OFFER_TTL_SECONDS"] = env["WAITLIST_OFFER_TTL_SECONDS"]

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
        sale = sweeper = None
        if opts.waitlist:
            sale = Sale()
            sweeper = Sweeper(opts, catalog.hot_sku, sale)
            sweeper.start()
        meter.start()
        try:
            load = run_load(opts, server.base_url, catalog, sale)
        finally:
            if sweeper is not None:
                sweeper.stop()
        meter.stop(load.elapsed)
        load_after = machine_load()
    finally:
        server.stop()
    print(f"[flash] load done in {load.elapsed:.1f} s; auditing")
    result = audit(opts, env, catalog)
    report = build_report(opts, load, result, load_before, load_after, meter.result)
    if sweeper is not None:
        report["waitlist"] = waitlist_audit(opts, catalog, load, sweeper)
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
