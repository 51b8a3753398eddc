"""``/metrics``: every family of SPEC §10, the scrape-time gauges read from the database,
and correct totals when several processes (gunicorn workers, Celery pool children)
count at once (prometheus_client multiprocess mode)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, transaction
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.mmap_dict import MmapedDict

from carts.models import Cart
from carts.tokens import hash_token
from checkout.orphans import orphaned_reservations
from core import metrics
from inventory.models import Reservation
from ops.collectors import CheckoutStateCollector
from ops.metrics_view import serve_worker_metrics
from tests.observability.metrics_helpers import (
    child_env,
    get,
    gunicorn,
    metrics_worker,
    sample,
    scrape,
)
from tests.support import build_shop, cart_in_checkout, stocked
from tests.support.factories import CartFactory, CartItemFactory, WarehouseFactory
from tests.support.processes import free_port

PROJECT_FAMILIES = [
    m._name for m in vars(metrics).values() if hasattr(m, "_name") and hasattr(m, "_type")
]


# --- one process ----------------------------------------------------------------------


@pytest.mark.django_db
def test_metrics_page_lists_every_family_of_the_spec(client):
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    assert len(PROJECT_FAMILIES) >= 14
    for name in [*PROJECT_FAMILIES, *metrics.SCRAPE_TIME_GAUGES]:
        assert f"# HELP {name}" in text, name
    assert "django_http_requests_total_by_method_total" in text  # django-prometheus's own


@pytest.mark.django_db
def test_metrics_page_refuses_other_methods(client):
    assert client.post("/metrics").status_code == 405


@pytest.mark.django_db
def test_scrape_time_gauges_say_where_the_shop_stands(client):
    shop = build_shop()
    # An upstream bug leaves a cart active with its reservation pending: an orphan.
    orphan_cart = cart_in_checkout((shop.stock_a, 4))
    Cart.objects.filter(id=orphan_cart.id).update(status="active")

    page = scrape(client.get("/metrics").content.decode())

    pending = Reservation.objects.filter(status="pending")
    assert sample(page, "stock_reservations_pending") == pending.count() == 6
    assert sample(page, "stock_reservations_pending_quantity") == sum(r.quantity for r in pending)
    assert sample(page, "stock_reservations_lapsed") == 1
    assert sample(page, "stock_reservations_orphaned") == orphaned_reservations().count() == 1
    assert {
        status: sample(page, "carts_by_status", status=status)
        for status in ("active", "checkout", "completed", "abandoned")
    } == {"active": 1, "checkout": 2, "completed": 1, "abandoned": 1}
    assert sample(page, "payments_captured_without_order") == 1
    assert sample(page, "checkout_state_collector_up") == 1


@pytest.mark.django_db
def test_scrape_cost_is_five_queries_whatever_the_rows(client, django_assert_num_queries):
    with django_assert_num_queries(5):
        client.get("/metrics")
    build_shop()
    with django_assert_num_queries(5):
        client.get("/metrics")


@pytest.mark.django_db(transaction=True)
def test_database_gauges_report_down_instead_of_failing_the_scrape():
    locked, release = threading.Event(), threading.Event()

    def hold_table_lock() -> None:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("LOCK TABLE inventory_reservation IN ACCESS EXCLUSIVE MODE")
                locked.set()
                release.wait(10)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_table_lock)
    holder.start()
    try:
        assert locked.wait(10)
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '200ms'")
        families = list(CheckoutStateCollector().collect())
    finally:
        release.set()
        holder.join(10)
        connection.close()
    assert [(f.name, f.samples[0].value) for f in families] == [("checkout_state_collector_up", 0)]


def test_collector_declares_its_families_without_the_database():
    declared = list(CheckoutStateCollector().describe())
    assert all(isinstance(f, GaugeMetricFamily) for f in declared)
    assert [f.name for f in declared] == list(metrics.SCRAPE_TIME_GAUGES)


# --- several processes ----------------------------------------------------------------

COUNTING_PROCESS = textwrap.dedent(
    """
    import sys
    import django
    django.setup()
    from core import metrics
    n = int(sys.argv[1])
    metrics.stock_reservations_total.labels(outcome="success").inc(n)
    metrics.carts_checkout_total.inc(n)
    metrics.stock_reservations_ttl_seconds.observe(300)
    """
)


@pytest.mark.django_db
def test_metrics_page_adds_up_the_counters_of_every_process(client, settings, tmp_path):
    for n in (3, 4):  # two workers, as gunicorn forks them
        subprocess.run(  # noqa: S603
            [sys.executable, "-c", COUNTING_PROCESS, str(n)],
            env=child_env(PROMETHEUS_MULTIPROC_DIR=str(tmp_path)),
            check=True,
            timeout=60,
        )
    assert len(list(tmp_path.glob("counter_*.db"))) == 2
    # This process counts too, in its own registry: multiprocess mode must not show it.
    metrics.carts_checkout_total.inc(100)

    settings.PROMETHEUS_MULTIPROC_DIR = str(tmp_path)
    page = scrape(client.get("/metrics").content.decode())

    assert sample(page, "stock_reservations_total", outcome="success") == 7
    assert sample(page, "carts_checkout_total") == 7
    assert sample(page, "stock_reservations_ttl_seconds_count") == 2
    assert sample(page, "stock_reservations_ttl_seconds_bucket", le="300.0") == 2
    assert sample(page, "checkout_state_collector_up") == 1  # gauges still from the database


@pytest.mark.django_db
def test_worker_metrics_endpoint_serves_the_files_without_database_gauges(settings, tmp_path):
    subprocess.run(  # noqa: S603
        [sys.executable, "-c", COUNTING_PROCESS, "5"],
        env=child_env(PROMETHEUS_MULTIPROC_DIR=str(tmp_path)),
        check=True,
        timeout=60,
    )
    settings.PROMETHEUS_MULTIPROC_DIR = str(tmp_path)
    assert serve_worker_metrics(port=0) is None  # off unless a port is given
    server, thread = serve_worker_metrics(port=free_port(), addr="127.0.0.1")
    try:
        status, text = get(f"http://127.0.0.1:{server.server_port}/metrics")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    page = scrape(text)
    assert status == 200
    assert sample(page, "stock_reservations_total", outcome="success") == 5
    assert sample(page, "checkout_state_collector_up") is None


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_gunicorn_workers_report_the_same_totals(tmp_path):
    """Real gunicorn with two workers: checkouts land on both, every scrape (whichever
    worker answers) reports the total."""
    # A warehouse of its own: a transactional test may run after the default one was flushed.
    stock = stocked(on_hand=100, warehouse=WarehouseFactory(code="obs-web"))
    carts = []
    for i in range(12):
        cart = CartFactory(token_hash=hash_token(f"token-{i}"))
        CartItemFactory(cart=cart, product=stock.product, warehouse=stock.warehouse)
        carts.append((cart.id, f"token-{i}"))
    access_log = tmp_path / "access.log"
    with gunicorn(
        tmp_path / "prometheus",
        "--access-logformat",
        "%(p)s %(m)s %(U)s %(s)s",
        GUNICORN_ACCESSLOG=str(access_log),
        # Sync workers: a busy one takes no connection, so both serve some of the 12; a
        # threaded worker may take them all (threads: tests/config/test_gunicorn_workers.py).
        GUNICORN_THREADS="1",
    ) as port:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if get(f"{base}/healthz")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "gunicorn did not start"
            time.sleep(0.2)

        def start(cart: tuple) -> int:
            request = urllib.request.Request(  # noqa: S310 - local
                f"{base}/api/v1/carts/{cart[0]}/checkout/",
                data=b"{}",
                method="POST",
                headers={"Content-Type": "application/json", "X-Cart-Token": cart[1]},
            )
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                return response.status

        with ThreadPoolExecutor(4) as pool:
            assert list(pool.map(start, carts)) == [201] * 12

        scrapes = [scrape(get(f"{base}/metrics")[1]) for _ in range(6)]
    for page in scrapes:
        assert sample(page, "carts_checkout_total") == 12
        assert sample(page, "stock_reservations_total", outcome="success") == 12
        assert sample(page, "stock_reservations_pending") == 12
    pids = {line.split()[0] for line in access_log.read_text().splitlines() if "/checkout/" in line}
    assert len(pids) == 2, "both workers should have served checkouts"


@pytest.mark.slow
def test_celery_pool_children_counters_are_served_by_the_main_process(tmp_path, settings):
    """Real Celery worker, prefork pool of two: tasks count in the children, the main
    process's endpoint reports the total."""
    from config.celery import app

    queue, prom_dir = f"obs-metrics-{os.getpid()}", tmp_path / "prometheus"
    with metrics_worker(prom_dir, queue, settings.CELERY_BROKER_URL) as port:
        for _ in range(40):
            app.send_task("tests.observability.count_checkout", queue=queue)
        deadline, total = time.monotonic() + 60, None
        while total != 40:
            assert time.monotonic() < deadline, f"worker metrics stuck at {total}"
            time.sleep(0.3)
            try:
                total = sample(
                    scrape(get(f"http://127.0.0.1:{port}/metrics")[1]), "carts_checkout_total"
                )
            except OSError:
                continue
    counted_in = {
        path.name
        for path in prom_dir.glob("counter_*.db")
        for key, value, *_ in MmapedDict.read_all_values_from_file(str(path))
        if '"carts_checkout_total"' in key and value > 0
    }
    assert len(counted_in) == 2, counted_in  # both children counted; the main process served
