"""Gateway outage: does the rest of the shop keep answering while every payment hangs?

A real gunicorn (``config/gunicorn.conf.py``, ``--workers`` sync workers, the project's
real payment settings: ``PAYMENT_TIMEOUT_SECONDS``, ``PAYMENT_MAX_TRIES``,
``PAYMENT_DEADLINE_SECONDS``, ``PAYMENT_BREAKER_FAILURES``,
``PAYMENT_BREAKER_RESET_SECONDS`` as the environment gives them, else their defaults)
serves two kinds of shoppers over HTTP:

* **browsers** (``--browsers`` threads), each with a cart in checkout (paying by
  ``card``, never confirming), loop over the catalog (``GET products/``,
  ``GET products/{id}/``), their cart (``GET carts/{id}/``,
  ``GET carts/{id}/validate-stock/``) and their checkout state
  (``GET carts/{id}/checkout/``) — the requests that must keep their latency;
* **payers** (``--payers`` threads) put a cart in checkout with the dummy gateway's
  ``test_timeout`` (the provider never answers) and confirm it; a confirm refused with
  503 ``PAYMENT_UNAVAILABLE`` is tried again after ``min(Retry-After, --payer-retry)``
  seconds, as a shopper pressing the button again would; any other answer ends that cart.

Phases, on one server: a warm-up (browsers only, not measured); the **baseline**
(browsers only, ``--baseline`` seconds: the shop without the outage); the **outage**
(browsers and payers, ``--outage`` seconds). With ``--without-breaker`` a second server
runs the outage phase again with the breaker unable to open
(``PAYMENT_BREAKER_FAILURES`` = 1000000): what the breaker protects against.

Printed: p50 / p99 / max of the browsing requests per phase and their ratio to the
baseline (goal: outage p99 within 2x of the baseline p99), the payers' answers, and the
breaker's transitions from ``/metrics``.

Safety checks (exit 1 if one fails): every browsing request answered 200; every payer
answer was one of 503 ``PAYMENT_UNAVAILABLE`` (with ``Retry-After``), 504
``PAYMENT_TIMEOUT`` or the cart's own 409/410 (all in the error envelope, never another
5xx); the breaker opened (some confirm was refused with 503); nothing was charged (no
``test_timeout`` payment captured); ``manage.py check_inventory`` exits 0. The 2x goal is
reported, and exits 1 only with ``--require-goal``.

The database (``--database``, default ``checkout_outage`` on the server of
``DATABASE_URL``) is dropped and created again. Run (about three minutes)::

    .venv/bin/python benchmarks/gateway_outage.py
    .venv/bin/python benchmarks/gateway_outage.py --without-breaker --outage 60
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.dbsetup import recreate_database, with_database  # noqa: E402
from benchmarks.gunicorn_process import start_gunicorn, stop_gunicorn  # noqa: E402

VENV_BIN = ROOT / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python") if (VENV_BIN / "python").exists() else sys.executable
PROTECTED_DATABASES = {"postgres", "template0", "template1", "checkout"}
ADDRESS = {
    "name": "Outage Shopper",
    "line1": "1 Gateway Road",
    "city": "Springfield",
    "postal_code": "12345",
    "country": "US",
}
SKUS = 50
SEED = f"""
from decimal import Decimal
from inventory.models import Product, Warehouse
from inventory.services import set_stock
warehouse = Warehouse.objects.get(is_default=True)
for i in range({SKUS}):
    product = Product.objects.create(sku=f"OUT-{{i:03d}}", name=f"Item {{i}}", price=Decimal("9.99"))
    set_stock(product=product, warehouse=warehouse, on_hand=100000, actor="bench")
"""
PAYER_CODES = {
    (503, "PAYMENT_UNAVAILABLE"),
    (504, "PAYMENT_TIMEOUT"),
    (409, "INVALID_CART_STATUS"),
    (410, "CHECKOUT_EXPIRED"),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workers", type=int, default=3, help="gunicorn sync workers")
    p.add_argument("--browsers", type=int, default=4, help="browsing shopper threads")
    p.add_argument("--payers", type=int, default=4, help="paying (test_timeout) threads")
    p.add_argument("--warmup", type=float, default=5.0, help="seconds, not measured")
    p.add_argument("--baseline", type=float, default=40.0, help="seconds without the outage")
    p.add_argument("--outage", type=float, default=90.0, help="seconds of the outage")
    p.add_argument("--payer-retry", type=float, default=1.0, help="max pause after a 503")
    p.add_argument("--without-breaker", action="store_true", help="also run the outage unguarded")
    p.add_argument("--require-goal", action="store_true", help="exit 1 if p99 ratio > 2")
    p.add_argument("--database", default="checkout_outage")
    p.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/checkout"),
    )
    p.add_argument(
        "--broker-url", default=os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
    )
    p.add_argument(
        "--cache-url", default=os.environ.get("REDIS_CACHE_URL", "redis://127.0.0.1:6379/1")
    )
    p.add_argument("--seed", type=int, default=19)
    opts = p.parse_args(argv)
    if opts.database in PROTECTED_DATABASES:
        p.error(f"refusing to drop database {opts.database!r}")
    opts.url = with_database(opts.database_url, opts.database)
    return opts


def server_env(opts: argparse.Namespace, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("API_THROTTLE_ANON", "API_THROTTLE_USER", "DEBUG"):
        env.pop(name, None)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": opts.url,
            "CELERY_BROKER_URL": opts.broker_url,
            "REDIS_CACHE_URL": opts.cache_url,
            # This run's breaker state only (it lives in Redis).
            "PAYMENT_BREAKER_NAMESPACE": f"bench-outage-{uuid.uuid4().hex}",
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PYTHON, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


class Server:
    def __init__(self, opts: argparse.Namespace, env: dict[str, str], log_dir: Path):
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        metrics_dir = log_dir / "prometheus"
        metrics_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / "gunicorn.log"
        self.env = {
            **env,
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "WEB_CONCURRENCY": str(opts.workers),
            "GUNICORN_THREADS": "1",
            "GUNICORN_ACCESSLOG": str(log_dir / "access.log"),
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        }
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Server:
        self._log = open(self.log_path, "wb")
        try:
            self.proc = start_gunicorn(
                env=self.env, log=self._log, base_url=self.base_url, timeout=60
            )
        except RuntimeError as error:
            raise SystemExit(f"{error}; see {self.log_path}") from None
        return self

    def __exit__(self, *exc: object) -> None:
        stop_gunicorn(self.proc)
        self._log.close()


# --- shoppers -------------------------------------------------------------------------


@dataclass
class Phase:
    name: str
    browse: list[float] = field(default_factory=list)
    browse_failures: Counter = field(default_factory=Counter)
    confirms: Counter = field(default_factory=Counter)  # (status, code)
    confirm_seconds: list[float] = field(default_factory=list)
    missing_retry_after: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class Client:
    def __init__(self, base_url: str):
        import urllib3

        self.api = f"{base_url}/api/v1"
        self.http = urllib3.PoolManager(
            maxsize=2, retries=False, timeout=urllib3.Timeout(connect=10, read=60)
        )

    def call(self, method: str, path: str, body=None, token: str | None = None, **headers):
        import urllib3

        all_headers = {"Content-Type": "application/json", "Accept": "application/json"}
        all_headers.update(headers)
        if token:
            all_headers["X-Cart-Token"] = token
        started = time.perf_counter()
        try:
            r = self.http.request(
                method,
                self.api + path,
                body=json.dumps(body).encode() if body is not None else None,
                headers=all_headers,
            )
        except urllib3.exceptions.HTTPError as exc:
            return 0, {"error": {"code": type(exc).__name__}}, {}, time.perf_counter() - started
        elapsed = time.perf_counter() - started
        try:
            data = json.loads(r.data) if r.data else None
        except ValueError:
            data = None
        return r.status, data, r.headers, elapsed

    def checkout(self, rng: random.Random, method: str) -> tuple[str, str]:
        status, cart, _, _ = self.call("POST", "/carts/", {})
        assert status == 201, (status, cart)
        cart_id, token = cart["id"], cart["token"]
        sku = f"OUT-{rng.randrange(SKUS):03d}"
        status, body, _, _ = self.call(
            "POST", f"/carts/{cart_id}/items/", {"sku": sku, "quantity": 1}, token
        )
        assert status == 201, (status, body)
        status, body, _, _ = self.call("POST", f"/carts/{cart_id}/checkout/", {}, token)
        assert status == 201, (status, body)
        update = {"shipping_address": ADDRESS, "payment_method": method}
        status, body, _, _ = self.call("PATCH", f"/carts/{cart_id}/checkout/", update, token)
        assert status == 200, (status, body)
        return cart_id, token


def _code(body: Any) -> str | None:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return body["error"].get("code")
    return None


def browser(base_url: str, seed: int, phase_of, stop: threading.Event) -> None:
    rng = random.Random(seed)
    client = Client(base_url)
    cart_id, token = client.checkout(rng, "card")
    status, products, _, _ = client.call("GET", "/products/?page_size=50")
    product_ids = [p["id"] for p in products["results"]]
    paths = [
        ("/products/", None),
        (None, None),  # a product
        (f"/carts/{cart_id}/", token),
        (f"/carts/{cart_id}/validate-stock/", token),
        (f"/carts/{cart_id}/checkout/", token),
    ]
    while not stop.is_set():
        for path, cart_token in paths:
            if path is None:
                path = f"/products/{rng.choice(product_ids)}/"
            status, body, _, elapsed = client.call("GET", path, None, cart_token)
            phase = phase_of()
            if phase is None:
                continue
            with phase.lock:
                phase.browse.append(elapsed)
                if status != 200:
                    phase.browse_failures[(path.split("/")[1], status, _code(body))] += 1


def payer(base_url: str, seed: int, opts, phase_of, stop: threading.Event) -> None:
    rng = random.Random(seed)
    client = Client(base_url)
    while not stop.is_set():
        phase = phase_of()
        if phase is None or phase.name == "baseline":
            time.sleep(0.1)
            continue
        cart_id, token = client.checkout(rng, "test_timeout")
        while not stop.is_set():
            status, body, headers, elapsed = client.call(
                "POST",
                f"/carts/{cart_id}/checkout/confirm/",
                {},
                token,
                **{"Idempotency-Key": str(uuid.uuid4())},
            )
            phase = phase_of()
            if phase is None:
                break
            with phase.lock:
                phase.confirms[(status, _code(body))] += 1
                phase.confirm_seconds.append(elapsed)
                if status == 503 and not headers.get("Retry-After"):
                    phase.missing_retry_after += 1
            if status != 503:
                break
            retry_after = float(headers.get("Retry-After") or 1)
            time.sleep(min(retry_after, opts.payer_retry))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def run_phases(opts, base_url: str, phases: list[tuple[str, float]]) -> dict[str, Phase]:
    current: list[Phase | None] = [None]
    results: dict[str, Phase] = {}
    stop = threading.Event()
    threads = [
        threading.Thread(
            target=browser, args=(base_url, opts.seed + i, lambda: current[0], stop), daemon=True
        )
        for i in range(opts.browsers)
    ] + [
        threading.Thread(
            target=payer,
            args=(base_url, opts.seed + 100 + i, opts, lambda: current[0], stop),
            daemon=True,
        )
        for i in range(opts.payers)
    ]
    for t in threads:
        t.start()
    try:
        for name, seconds in phases:
            phase = Phase(name) if name != "warmup" else None
            current[0] = phase
            print(f"[outage] {name}: {seconds:.0f} s", flush=True)
            time.sleep(seconds)
            if phase is not None:
                results[name] = phase
    finally:
        current[0] = None
        stop.set()
        for t in threads:
            t.join(90)
    return results


def metrics(base_url: str) -> dict[str, float]:
    import urllib3

    text = urllib3.request("GET", f"{base_url}/metrics", timeout=10).data.decode()
    wanted = ("payment_breaker_transitions_total", "payments_total{")
    out = {}
    for line in text.splitlines():
        if line.startswith(wanted):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def audit(env: dict[str, str]) -> dict[str, Any]:
    import psycopg

    with psycopg.connect(env["DATABASE_URL"], autocommit=True) as conn:
        charged = conn.execute(
            "SELECT count(*) FROM payments_payment WHERE method = 'test_timeout' "
            "AND status IN ('captured', 'authorized')"
        ).fetchone()[0]
        payments = dict(
            conn.execute(
                "SELECT status, count(*) FROM payments_payment "
                "WHERE method = 'test_timeout' GROUP BY status"
            ).fetchall()
        )
    checked = manage(env, "check_inventory")
    return {"charged": charged, "payments": payments, "check_inventory": checked.returncode}


def summary(phase: Phase) -> dict[str, Any]:
    return {
        "requests": len(phase.browse),
        "p50_ms": percentile(phase.browse, 0.50) * 1000,
        "p99_ms": percentile(phase.browse, 0.99) * 1000,
        "max_ms": max(phase.browse, default=float("nan")) * 1000,
        "over_1s": sum(1 for v in phase.browse if v > 1),
    }


def print_phase(label: str, s: dict[str, Any], base: dict[str, Any] | None) -> None:
    line = (
        f"  {label:<34} {s['requests']:>6} req  p50 {s['p50_ms']:7.1f} ms  "
        f"p99 {s['p99_ms']:7.1f} ms  max {s['max_ms']:8.1f} ms  >1s {s['over_1s']:>3}"
    )
    if base:
        line += (
            f"  p50 x{s['p50_ms'] / base['p50_ms']:.2f}  p99 x{s['p99_ms'] / base['p99_ms']:.2f}"
        )
    print(line)


def run_server(opts, env: dict[str, str], log_dir: Path, phases) -> tuple[dict, dict]:
    with Server(opts, env, log_dir) as server:
        results = run_phases(opts, server.base_url, phases)
        counted = metrics(server.base_url)
    return results, counted


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    log_dir = Path(tempfile.mkdtemp(prefix="gateway-outage-"))
    env = server_env(opts)
    print(f"[outage] re-creating database {opts.database}", flush=True)
    recreate_database(opts.url)
    for step in (("migrate", "--noinput"), ("shell", "-c", SEED)):
        done = manage(env, *step)
        if done.returncode != 0:
            print(done.stdout, done.stderr, file=sys.stderr)
            return 2

    print(
        f"[outage] gunicorn {opts.workers} workers; {opts.browsers} browsers, "
        f"{opts.payers} payers (test_timeout); logs in {log_dir}",
        flush=True,
    )
    phases = [("warmup", opts.warmup), ("baseline", opts.baseline), ("outage", opts.outage)]
    results, counted = run_server(opts, env, log_dir / "breaker", phases)
    unguarded = None
    if opts.without_breaker:
        env_off = server_env(opts, PAYMENT_BREAKER_FAILURES="1000000")
        unguarded, _ = run_server(
            opts,
            env_off,
            log_dir / "no-breaker",
            [("warmup", opts.warmup), ("outage", opts.outage)],
        )
    audited = audit(env)

    base = summary(results["baseline"])
    outage = summary(results["outage"])
    print()
    print("Browsing requests (catalog, product, cart, validate-stock, checkout state):")
    print_phase("baseline (no outage)", base, None)
    print_phase("gateway outage, breaker on", outage, base)
    if unguarded:
        print_phase("gateway outage, breaker off", summary(unguarded["outage"]), base)
    ratio = outage["p99_ms"] / base["p99_ms"]
    goal = ratio <= 2.0
    print(f"  p99 ratio outage/baseline: {ratio:.2f} (goal <= 2: {'met' if goal else 'NOT met'})")
    print()
    confirms = results["outage"].confirms
    print(
        "Payers' confirms during the outage (status, code): "
        + ", ".join(
            f"{status} {code}: {n}" for (status, code), n in sorted(confirms.items(), key=str)
        )
    )
    seconds = results["outage"].confirm_seconds
    refused = [s for s in seconds if s < 1]
    print(
        f"  confirm p50 {percentile(seconds, 0.5) * 1000:.1f} ms; refused ones p99 "
        f"{percentile(refused, 0.99) * 1000:.1f} ms"
    )
    if unguarded:
        print(
            "  breaker off: "
            + ", ".join(f"{s} {c}: {n}" for (s, c), n in unguarded["outage"].confirms.items())
        )
    print(
        "Breaker (from /metrics): "
        + ", ".join(f"{k} {v:g}" for k, v in counted.items() if k.startswith("payment_breaker"))
    )
    print(f"Audit: test_timeout payments by status {audited['payments']}")

    safety = {
        "every browsing request answered 200": not results["baseline"].browse_failures
        and not results["outage"].browse_failures,
        "payers got only 503/504/409/410 envelopes": set(confirms) <= PAYER_CODES,
        "every 503 carried Retry-After": results["outage"].missing_retry_after == 0,
        "the breaker opened (503 PAYMENT_UNAVAILABLE seen)": confirms[(503, "PAYMENT_UNAVAILABLE")]
        > 0,
        "nothing charged for test_timeout": audited["charged"] == 0,
        "check_inventory exit 0": audited["check_inventory"] == 0,
    }
    print()
    for name, ok in safety.items():
        print(f"  [{'ok' if ok else 'FAILED'}] {name}")
    failures = {**results["baseline"].browse_failures, **results["outage"].browse_failures}
    if failures:
        print(f"  browsing failures: {dict(failures)}")
    safe = all(safety.values())
    if safe:
        shutil.rmtree(log_dir, ignore_errors=True)
    else:
        print(f"  server logs kept in {log_dir}")
    if not safe:
        return 1
    return 1 if opts.require_goal and not goal else 0


if __name__ == "__main__":
    sys.exit(main())
