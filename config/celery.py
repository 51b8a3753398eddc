"""The Celery app. Tasks are thin wrappers around services; enqueue them after commit
(``task.delay_on_commit(...)``) so a worker never sees a row that was rolled back.

The request id of the HTTP request that enqueued a task travels in the task headers and
is restored around the task, so a shopper's request and its background work share one id
in the logs.
"""

from __future__ import annotations

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("checkout")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

_TOKENS: dict[str, object] = {}


@signals.before_task_publish.connect
def _propagate_request_id(headers: dict | None = None, **_: object) -> None:
    from core.logging import get_request_id

    if headers is not None and "request_id" not in headers:
        headers["request_id"] = get_request_id()


@signals.task_prerun.connect
def _restore_request_id(task_id: str | None = None, task=None, **_: object) -> None:
    from core.logging import new_request_id, request_id_var

    incoming = getattr(task.request, "request_id", None) if task is not None else None
    _TOKENS[task_id or ""] = request_id_var.set(incoming or new_request_id())


@signals.task_postrun.connect
def _clear_request_id(task_id: str | None = None, **_: object) -> None:
    from core.logging import request_id_var

    token = _TOKENS.pop(task_id or "", None)
    if token is not None:
        request_id_var.reset(token)


@signals.worker_init.connect
def _serve_worker_metrics(**_: object) -> None:
    """Worker metrics from the main process (before the pool forks), when
    ``CELERY_WORKER_METRICS_PORT`` is set; see ``ops.metrics_view``."""
    from django.conf import settings

    from ops.metrics_view import serve_worker_metrics

    serve_worker_metrics(
        port=settings.CELERY_WORKER_METRICS_PORT, addr=settings.CELERY_WORKER_METRICS_ADDRESS
    )
