"""Gauges read from the database when Prometheus scrapes ``/metrics``.

Counters say what happened; these say where things stand now: how much stock pending
reservations hold, how many of them lapsed without being swept, how many are orphaned,
how many carts are in each status and how many captured payments still wait for their
order. They are computed by the process that answers the scrape (never written to the
multiprocess files), so they are exact whatever the number of workers, and they are not
registered in the process-wide registry: only the ``/metrics`` view adds them.

"Orphaned" is exactly what the orphan sweeper releases
(``inventory.cleanup.orphaned_reservations``), so the gauge and the job agree.

Cost: four aggregate queries per scrape, served by the partial index on pending
reservations, the cart status index and the partial index on captured payments without
an order.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from django.db import DatabaseError
from django.db.models import Count, Q, Sum
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from core.metrics import SCRAPE_TIME_GAUGES

logger = logging.getLogger("core.metrics")


def _gauge(name: str, labels: list[str] | None = None) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, SCRAPE_TIME_GAUGES[name], labels=labels)


class CheckoutStateCollector(Collector):
    """The scrape-time gauge family (names and help in ``core.metrics``)."""

    def describe(self) -> Iterator[GaugeMetricFamily]:
        # Declared so a registry can check names without touching the database.
        for name in SCRAPE_TIME_GAUGES:
            yield _gauge(name, ["status"] if name == "carts_by_status" else None)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            reservations, carts, captured = self._read()
        except DatabaseError as exc:
            logger.warning("metrics: database gauges unavailable: %s", exc)
            up = _gauge("checkout_state_collector_up")
            up.add_metric([], 0)
            yield up
            return

        for name, key in (
            ("stock_reservations_pending", "pending"),
            ("stock_reservations_pending_quantity", "quantity"),
            ("stock_reservations_lapsed", "lapsed"),
            ("stock_reservations_orphaned", "orphaned"),
        ):
            family = _gauge(name)
            family.add_metric([], reservations[key] or 0)
            yield family

        by_status = _gauge("carts_by_status", ["status"])
        for status, count in carts.items():
            by_status.add_metric([status], count)
        yield by_status

        backlog = _gauge("payments_captured_without_order")
        backlog.add_metric([], captured)
        yield backlog

        up = _gauge("checkout_state_collector_up")
        up.add_metric([], 1)
        yield up

    @staticmethod
    def _read() -> tuple[dict[str, int | None], dict[str, int], int]:
        from carts.models import Cart, CartStatus
        from checkout.orphans import orphaned_reservations
        from inventory.models import Reservation, ReservationStatus
        from payments.models import Payment

        now = timezone.now()
        reservations = (
            Reservation.objects.filter(status=ReservationStatus.PENDING)
            .order_by()
            .aggregate(
                pending=Count("id"),
                quantity=Sum("quantity"),
                lapsed=Count("id", filter=Q(expires_at__lte=now)),
            )
        )
        reservations["orphaned"] = orphaned_reservations().count()
        carts = dict.fromkeys(CartStatus.values, 0)
        for row in Cart.objects.order_by().values("status").annotate(n=Count("id")):
            carts[row["status"]] = row["n"]
        captured = Payment.objects.captured_without_order().count()
        return reservations, carts, captured
