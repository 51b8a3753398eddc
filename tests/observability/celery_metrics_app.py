"""The project's Celery app with the worker metrics endpoint switched on the way
``docs/operations.md`` describes (``worker_init``: the main process, before the pool
forks), plus one task that moves a counter. Started by the multiprocess tests as
``celery -A tests.observability.celery_metrics_app worker``."""

from __future__ import annotations

import os
import time

from celery import signals

from config.celery import app
from core import metrics

__all__ = ("app",)


@signals.worker_init.connect
def _serve_metrics(**_: object) -> None:
    from ops.metrics_view import serve_worker_metrics

    serve_worker_metrics(port=int(os.environ["TEST_WORKER_METRICS_PORT"]), addr="127.0.0.1")


@app.task(name="tests.observability.count_checkout")
def count_checkout() -> int:
    time.sleep(0.05)  # long enough for both pool children to get work
    metrics.carts_checkout_total.inc()
    return os.getpid()
