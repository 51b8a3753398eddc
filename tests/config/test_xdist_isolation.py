"""Under pytest-xdist (``make test`` runs two workers) no two worker processes share a
Redis database or a test database: ``config.test_settings`` gives worker ``gwN`` the
broker and cache databases of the run lowered by ``2 * N``; pytest-django names each
worker's test database after it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from config.test_settings import worker_redis_url
from tests.support.processes import ROOT

BROKER = "TEST_CELERY_BROKER_URL"
CACHE = "TEST_REDIS_CACHE_URL"


@pytest.fixture
def run_databases(monkeypatch):
    monkeypatch.setenv(BROKER, "redis://127.0.0.1:6379/10")
    monkeypatch.setenv(CACHE, "redis://127.0.0.1:6379/11")


@pytest.mark.usefixtures("run_databases")
def test_one_process_and_the_first_worker_use_the_run_databases_as_given():
    for worker in ("", "gw0"):
        assert worker_redis_url(BROKER, "unused", worker) == "redis://127.0.0.1:6379/10"
        assert worker_redis_url(CACHE, "unused", worker) == "redis://127.0.0.1:6379/11"


@pytest.mark.usefixtures("run_databases")
def test_each_further_worker_has_two_databases_of_its_own():
    used = [
        worker_redis_url(name, "unused", worker)
        for worker in ("gw0", "gw1", "gw2")
        for name in (BROKER, CACHE)
    ]
    assert used == [f"redis://127.0.0.1:6379/{db}" for db in (10, 11, 8, 9, 6, 7)]


def test_the_defaults_are_14_and_15_lowered_per_worker(monkeypatch):
    monkeypatch.delenv(BROKER, raising=False)
    default = "redis://127.0.0.1:6379/14"
    assert worker_redis_url(BROKER, default, "") == default
    assert worker_redis_url(BROKER, default, "gw1") == "redis://127.0.0.1:6379/12"


def test_a_password_and_host_are_kept(monkeypatch):
    monkeypatch.setenv(BROKER, "redis://:secret@redis.internal:6380/9")
    assert worker_redis_url(BROKER, "unused", "gw1") == "redis://:secret@redis.internal:6380/7"


@pytest.mark.usefixtures("run_databases")
def test_a_worker_below_database_0_stops_start_up():
    with pytest.raises(ImproperlyConfigured, match="worker gw6 would use Redis database -2"):
        worker_redis_url(BROKER, "unused", "gw6")


def test_a_worker_never_lands_on_the_databases_of_the_running_instance(monkeypatch):
    # config.settings' defaults: the broker in 0, the cache in 1 (`make run`).
    monkeypatch.setenv(BROKER, "redis://127.0.0.1:6379/4")
    monkeypatch.setenv(CACHE, "redis://127.0.0.1:6379/5")
    assert worker_redis_url(BROKER, "unused", "gw1") == "redis://127.0.0.1:6379/2"
    with pytest.raises(ImproperlyConfigured, match="worker gw2 would use Redis database 1"):
        worker_redis_url(CACHE, "unused", "gw2")
    with pytest.raises(ImproperlyConfigured, match="worker gw2 would use Redis database 0"):
        worker_redis_url(BROKER, "unused", "gw2")


def test_a_url_without_a_database_number_stops_start_up(monkeypatch):
    monkeypatch.setenv(BROKER, "redis://127.0.0.1:6379")
    with pytest.raises(ImproperlyConfigured, match="must end in a Redis database number"):
        worker_redis_url(BROKER, "unused", "gw1")
    assert worker_redis_url(BROKER, "unused", "") == "redis://127.0.0.1:6379"


def test_this_process_uses_the_databases_of_its_worker():
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    index = int(worker.removeprefix("gw") or 0)
    broker = int(os.environ.get(BROKER, "redis://127.0.0.1:6379/14").rsplit("/", 1)[1])
    cache = int(os.environ.get(CACHE, "redis://127.0.0.1:6379/15").rsplit("/", 1)[1])
    assert settings.CELERY_BROKER_URL.endswith(f"/{broker - 2 * index}")
    assert settings.CACHES["default"]["LOCATION"].endswith(f"/{cache - 2 * index}")
    assert settings.PAYMENT_BREAKER_NAMESPACE.endswith(f"-{worker or 'main'}")


@pytest.mark.django_db
def test_the_test_database_is_the_workers_own():
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    name = connection.settings_dict["NAME"]
    assert name.startswith("test_")
    if worker:
        assert name.endswith(f"_{worker}")


def test_a_process_started_by_a_test_uses_the_databases_of_the_same_worker():
    code = (
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.CELERY_BROKER_URL, settings.CACHES['default']['LOCATION'])"
    )
    done = subprocess.run(  # noqa: S603 - fixed argument list
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.test_settings"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [
        settings.CELERY_BROKER_URL,
        settings.CACHES["default"]["LOCATION"],
    ]
