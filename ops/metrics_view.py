"""``GET /metrics`` and the Celery worker's metrics endpoint.

One process answers a scrape for all of them: with ``PROMETHEUS_MULTIPROC_DIR`` set (by
the launcher, before gunicorn or Celery fork), every worker process writes its counters
and histograms to files in that directory and the answer aggregates them with a
``MultiProcessCollector``; without it (``runserver``, tests) the process's own registry
is the truth. The scrape-time database gauges (``ops.collectors``) are added by the
web view only, so two scrape targets never report the same gauge twice.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from collections.abc import Iterable
from functools import lru_cache
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

from ops.collectors import CheckoutStateCollector, PaymentBreakerCollector

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
        registry.register(PaymentBreakerCollector())
    return registry


Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@lru_cache(maxsize=8)
def _parsed(networks: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(n) for n in networks)


def _address(text: str) -> Address | None:
    try:
        address = ipaddress.ip_address(text.strip().split("%")[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def _within(address: Address | None, networks: tuple[str, ...]) -> bool:
    return address is not None and any(address in n for n in _parsed(networks))


def client_address(request: HttpRequest) -> Address | None:
    """The scraping client: the connection's address, unless that is one of
    ``METRICS_TRUSTED_PROXIES``; then the right-most ``X-Forwarded-For`` entry that is
    not itself a trusted proxy (entries further left are set by the client and prove
    nothing). Without trusted proxies the header is ignored."""
    address = _address(request.META.get("REMOTE_ADDR", ""))
    trusted = settings.METRICS_TRUSTED_PROXIES
    if not trusted or not _within(address, trusted):
        return address
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    for entry in reversed([e for e in forwarded.split(",") if e.strip()]):
        hop = _address(entry)
        if hop is None:
            return None
        if not _within(hop, trusted):
            return hop
    return address


def _refused(status: int, reason: str) -> HttpResponse:
    response = HttpResponse(f"{reason}\n", status=status, content_type="text/plain; charset=utf-8")
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
    return response


def scrape_refusal(request: HttpRequest) -> HttpResponse | None:
    """None when the request may scrape; else the 403/401 answer (docs/deployment.md)."""
    address = client_address(request)
    if not _within(address, settings.METRICS_ALLOWED_NETWORKS):
        logger.warning(
            "metrics.scrape_refused",
            extra={"event": "metrics.scrape_refused", "client": str(address), "why": "network"},
        )
        return _refused(403, "Forbidden: this address may not scrape /metrics.")
    token = settings.METRICS_BEARER_TOKEN
    if token:
        scheme, _, given = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), token.encode()
        ):
            logger.warning(
                "metrics.scrape_refused",
                extra={"event": "metrics.scrape_refused", "client": str(address), "why": "token"},
            )
            return _refused(401, "Unauthorized: /metrics needs its bearer token.")
    return None


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    refusal = scrape_refusal(request)
    if refusal is not None:
        return refusal
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
