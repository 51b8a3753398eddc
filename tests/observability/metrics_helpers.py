"""Reading metric values: from this process's registry (counters move in the test
process) or from a scraped ``/metrics`` page; and the processes the multiprocess tests
start (gunicorn, a Celery worker with its metrics endpoint) with their environment."""

from __future__ import annotations

import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.db import connection
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient

from tests.support import ADDRESS, API
from tests.support.processes import ROOT, free_port


def get(url: str, timeout: float = 5) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - local
        return response.status, response.read().decode()


def wait_for(url: str, seconds: float = 40) -> str:
    """The body of ``url`` once it answers 200, polling until ``seconds`` have passed."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            status, text = get(url)
            if status == 200:
                return text
        except OSError:
            pass
        assert time.monotonic() < deadline, f"{url} did not answer"
        time.sleep(0.2)


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a child process using the test database (``extra`` added)."""
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    db = connection.settings_dict
    env.update(
        DJANGO_SETTINGS_MODULE="config.test_settings",
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        PYTHONPATH=str(ROOT),
        LOG_LEVEL="WARNING",
        **extra,
    )
    return env


@contextmanager
def gunicorn(prom_dir: Path, *options: str, **env: str) -> Iterator[int]:
    """The project's gunicorn with two workers in multiprocess mode (``prom_dir``), given
    extra command-line ``options`` and ``env``; yields its port (it may not answer yet)."""
    port = free_port()
    prom_dir.mkdir(exist_ok=True)
    web = subprocess.Popen(  # noqa: S603
        [
            str(ROOT / ".venv/bin/gunicorn"),
            "config.wsgi",
            "-c",
            str(ROOT / "config/gunicorn.conf.py"),
            *options,
        ],
        cwd=ROOT,
        env=child_env(
            PROMETHEUS_MULTIPROC_DIR=str(prom_dir),
            HOST="127.0.0.1",
            PORT=str(port),
            WEB_CONCURRENCY="2",
            **env,
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield port
    finally:
        web.terminate()
        web.wait(20)


@contextmanager
def metrics_worker(prom_dir: Path, queue: str, broker_url: str) -> Iterator[int]:
    """A Celery worker of ``tests.observability.celery_metrics_app`` (prefork pool of two)
    consuming ``queue`` from ``broker_url``, in multiprocess mode (``prom_dir``); yields
    the port of its metrics endpoint (it may not answer yet)."""
    port = free_port()
    prom_dir.mkdir(exist_ok=True)
    worker = subprocess.Popen(  # noqa: S603
        [
            str(ROOT / ".venv/bin/celery"),
            "-A",
            "tests.observability.celery_metrics_app",
            "worker",
            "--pool=prefork",
            "--concurrency=2",
            "-Q",
            queue,
            "-n",
            f"{queue}@%h",
            "--without-mingle",
            "--without-gossip",
            "--loglevel=WARNING",
        ],
        cwd=ROOT,
        env=child_env(
            PROMETHEUS_MULTIPROC_DIR=str(prom_dir),
            TEST_WORKER_METRICS_PORT=str(port),
            CELERY_BROKER_URL=broker_url,
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield port
    finally:
        worker.terminate()
        worker.wait(30)


def value(name: str, **labels: str) -> float:
    """A sample of the process-wide registry (0 when it was never incremented)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


class Moves:
    """Snapshot of several samples, to assert how much each moved."""

    def __init__(self, *samples: tuple[str, dict[str, str]]):
        self.samples = samples
        self.before = [value(name, **labels) for name, labels in samples]

    def deltas(self) -> dict[str, float]:
        out = {}
        for (name, labels), before in zip(self.samples, self.before, strict=True):
            key = name + (
                "{" + ",".join(f"{k}={v}" for k, v in sorted(labels.items())) + "}"
                if labels
                else ""
            )
            out[key] = value(name, **labels) - before
        return out


def scrape(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Parses Prometheus text into ``{(sample name, sorted labels): value}``."""
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def sample(page: dict, name: str, **labels: str) -> float | None:
    return page.get((name, tuple(sorted(labels.items()))))


class Shopper:
    """A shopper using the API with JSON, as the storefront does."""

    def __init__(self, request_id: str | None = None):
        self.client = APIClient()
        self.headers: dict[str, str] = {}
        if request_id:
            self.headers["HTTP_X_REQUEST_ID"] = request_id
        created = self.client.post(f"{API}/carts/", {}, format="json", **self.headers)
        assert created.status_code == 201, created.content
        self.cart_id = created.json()["id"]
        self.headers["HTTP_X_CART_TOKEN"] = created.json()["token"]

    def call(self, method: str, path: str, body: object = None, **extra: str):
        kwargs = {**self.headers, **extra}
        if body is not None:
            kwargs.update(data=body, format="json")
        return getattr(self.client, method)(f"{API}/carts/{self.cart_id}/{path}", **kwargs)

    def add(self, sku: str, quantity: int = 1):
        response = self.call("post", "items/", {"sku": sku, "quantity": quantity})
        assert response.status_code == 201, response.content
        return response

    def start(self):
        return self.call("post", "checkout/", {})

    def update(self, **changes: object):
        return self.call("patch", "checkout/", changes)

    def cancel(self):
        return self.call("delete", "checkout/")

    def confirm(self):
        return self.call("post", "checkout/confirm/", {})

    def ready_to_pay(self, method: str = "card"):
        response = self.update(shipping_address=ADDRESS, payment_method=method)
        assert response.status_code == 200, response.content
        return response
