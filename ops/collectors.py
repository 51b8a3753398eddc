"""Gauges read from the database when Prometheus scrapes ``/metrics``.

Counters say what happened; these say where things stand now: how much stock pending
reservations hold, how many of them lapsed without being swept, how many are orphaned,
how many carts are in each status, how many captured payments still wait for their
order, and how long the waitlists are (entries waiting and holding offers, units
wanted). They are computed by the process that answers the scrape (never written to the
multiprocess files), so they are exact whatever the number of workers, and they are not
registered in the process-wide registry: only the ``/metrics`` view adds them.

"Orphaned" is exactly what the orphan sweeper releases
(``inventory.cleanup.orphaned_reservations``), so the gauge and the job agree.

Cost: five aggregate queries per scrape, served by the partial index on pending
reservations, the cart status index and the waitlist (status, created_at) index (the
payments aggregate scans the payments table once: captured without an order, flagged for
staff, oldest refund owed).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from django.db import DatabaseError
from django.db.models import Count, Min, Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from core.metrics import PAYMENT_BREAKER_GAUGES, SCRAPE_TIME_GAUGES

logger = logging.getLogger("core.metrics")


# The labelled scrape-time gauges and their label.
_LABELS = {"carts_by_status": ["status"], "waitlist_entries": ["status"]}


def _gauge(name: str) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, SCRAPE_TIME_GAUGES[name], labels=_LABELS.get(name))


class CheckoutStateCollector(Collector):
    """The scrape-time gauge family (names and help in ``core.metrics``)."""

    def describe(self) -> Iterator[GaugeMetricFamily]:
        # Declared so a registry can check names without touching the database.
        for name in SCRAPE_TIME_GAUGES:
            yield _gauge(name)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            reservations, carts, payments, waitlists = self._read()
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

        by_status = _gauge("carts_by_status")
        for status, count in carts.items():
            by_status.add_metric([status], count)
        yield by_status

        for name, key in (
            ("payments_refund_pending_oldest_seconds", "refund_oldest"),
            ("payments_needing_attention", "attention"),
            ("payments_captured_without_order", "captured"),
        ):
            family = _gauge(name)
            family.add_metric([], payments[key])
            yield family

        entries = _gauge("waitlist_entries")
        for status in ("waiting", "offered"):
            entries.add_metric([status], waitlists[status])
        yield entries
        units = _gauge("waitlist_units_waiting")
        units.add_metric([], waitlists["units"])
        yield units

        up = _gauge("checkout_state_collector_up")
        up.add_metric([], 1)
        yield up

    @staticmethod
    def _read() -> tuple[dict[str, int | None], dict[str, int], dict[str, float], dict[str, int]]:
        from carts.models import Cart, CartStatus
        from checkout.orphans import orphaned_reservations
        from inventory.models import (
            OPEN_WAITLIST_STATUSES,
            Reservation,
            ReservationStatus,
            WaitlistEntry,
            WaitlistStatus,
        )
        from payments.models import Payment, PaymentStatus, captured_without_order_q

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
        # One aggregate: the captured-without-order backlog, payments flagged for staff and
        # the oldest refund owed.
        row = Payment.objects.order_by().aggregate(
            captured=Count("id", filter=captured_without_order_q()),
            attention=Count("id", filter=Q(needs_attention=True)),
            refund_since=Min("refund_requested_at", filter=Q(status=PaymentStatus.REFUND_PENDING)),
        )
        oldest = row["refund_since"]
        payments = {
            "captured": row["captured"],
            "refund_oldest": (now - oldest).total_seconds() if oldest else 0.0,
            "attention": row["attention"],
        }
        # The open entries only (ended ones are history, counted by waitlist_offers_total).
        waitlists = (
            WaitlistEntry.objects.filter(status__in=OPEN_WAITLIST_STATUSES)
            .order_by()
            .aggregate(
                waiting=Count("id", filter=Q(status=WaitlistStatus.WAITING)),
                offered=Count("id", filter=Q(status=WaitlistStatus.OFFERED)),
                units=Coalesce(Sum("quantity", filter=Q(status=WaitlistStatus.WAITING)), 0),
            )
        )
        return reservations, carts, payments, waitlists


class PaymentBreakerCollector(Collector):
    """The payment gateway's circuit breaker as every worker shares it (its Redis state,
    read at scrape time; names and help in ``core.metrics.PAYMENT_BREAKER_GAUGES``).
    Redis unreachable: ``payment_breaker_storage_up`` 0 and the state the breaker acts on
    (closed: it fails open)."""

    def describe(self) -> Iterator[GaugeMetricFamily]:
        for name in PAYMENT_BREAKER_GAUGES:
            yield self._gauge(name)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from payments import breaker

        snap = breaker.snapshot()
        state = self._gauge("payment_breaker_state")
        for name in breaker.STATES:
            state.add_metric([name.replace("-", "_")], 1 if snap.state == name else 0)
        yield state
        for name, value in (
            ("payment_breaker_consecutive_failures", snap.failures),
            ("payment_breaker_retry_after_seconds", snap.retry_after_seconds),
            ("payment_breaker_storage_up", 1 if snap.storage_available else 0),
        ):
            family = self._gauge(name)
            family.add_metric([], value)
            yield family

    @staticmethod
    def _gauge(name: str) -> GaugeMetricFamily:
        labels = ["state"] if name == "payment_breaker_state" else None
        return GaugeMetricFamily(name, PAYMENT_BREAKER_GAUGES[name], labels=labels)
