"""A task published through the real Redis broker runs in a real worker and sees the
request id of the code that enqueued it."""

import time

import pytest
from celery.contrib.testing.worker import start_worker
from django.core.cache import cache
from django.db import transaction

from config.celery import app
from core.logging import request_id_var


@app.task(name="tests.record_request_id")
def record_request_id(key: str) -> None:
    cache.set(key, request_id_var.get(), timeout=60)


def wait_for(key: str, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cache.get(key)
        if value is not None:
            return value
        time.sleep(0.05)
    return None


@pytest.mark.django_db(transaction=True)
def test_task_runs_in_real_worker_with_request_id():
    cache.delete("celery-wiring")
    app.control.purge()  # leftovers of earlier tests must not run here
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        token = request_id_var.set("req-from-http")
        try:
            with transaction.atomic():
                record_request_id.delay_on_commit("celery-wiring")
                # Not published before commit: a worker never sees rolled-back work.
                time.sleep(0.2)
                assert cache.get("celery-wiring") is None
        finally:
            request_id_var.reset(token)
        assert wait_for("celery-wiring") == "req-from-http"
