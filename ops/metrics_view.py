"""``GET /metrics`` and the Celery worker's metrics endpoint.

One process answers a scrape for all of them: with ``PROMETHEUS_MULTIPROC_DIR`` set (by
the launcher, before gunicorn or Celery fork), every worker process writes its counters
and histograms to files in that directory and the answer aggregates them with a
``MultiProcessCollector``; without it (``runserver``, tests) the process's own registry
is the truth. The scrape-time database gauges (``ops.collectors``) are added by the
web view only, so two scrape targets never report the same gauge twice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from threading import Thread
from wsgiref.simple_server import WSGIServer

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
    start_http_server,
)
from prometheus_client.metrics_core import Metric

from ops.collectors import CheckoutStateCollector

logger = logging.getLogger("core.metrics")


class _ThisProcess:
    """The process-wide registry seen as one collector (single-process mode)."""

    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


def build_registry(*, database_gauges: bool = True) -> CollectorRegistry:
    """The registry a scrape reads: all processes' files in multiprocess mode, else this
    process; plus the scrape-time database gauges unless ``database_gauges`` is false."""
    registry = CollectorRegistry()
    if settings.PROMETHEUS_MULTIPROC_DIR:
        multiprocess.MultiProcessCollector(registry, path=settings.PROMETHEUS_MULTIPROC_DIR)
    else:
        registry.register(_ThisProcess())
    if database_gauges:
        registry.register(CheckoutStateCollector())
    return registry


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse(generate_latest(build_registry()), content_type=CONTENT_TYPE_LATEST)


def serve_worker_metrics(
    *,
    port: int,
    addr: str = "0.0.0.0",  # noqa: S104
) -> tuple[WSGIServer, Thread] | None:
    """Serves the Celery worker's metrics over HTTP from the worker's **main** process.

    Call it from the ``worker_init`` signal (main process, before the pool forks), never
    from ``worker_process_init``: only one pool child could bind the port and it would
    report only its own counters. With a prefork pool the children's counters reach the
    main process through the ``PROMETHEUS_MULTIPROC_DIR`` files, so that variable must be
    set; without it only a solo/threads pool is reported correctly. ``port=0`` is off.
    """
    if port <= 0:
        return None
    if not settings.PROMETHEUS_MULTIPROC_DIR:
        logger.warning(
            "worker metrics: PROMETHEUS_MULTIPROC_DIR is not set; "
            "counters of prefork pool children will be missing"
        )
    server, thread = start_http_server(
        port, addr=addr, registry=build_registry(database_gauges=False)
    )
    logger.info("worker metrics served on %s:%s", addr, server.server_port)
    return server, thread
