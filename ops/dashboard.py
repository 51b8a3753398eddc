"""The admin overview (SPEC §13): what needs attention now, each figure a link to the
filtered admin list that shows its rows.

Every figure is one ``COUNT`` read through the owning app's querysets (the rule lives
once, where the data lives): ``PaymentQuerySet`` for payments,
``checkout.orphans.orphaned_reservations`` for orphans, the stock bands of
``inventory.stock``. Each count is answered from an index (partial indexes on pending
reservations by expiry, captured-without-order and refund-pending payments; carts by
status) or from a table that grows with the catalogue, not with traffic, so the page
costs the same number of queries whatever the size of the database (pinned in
``tests/admin/test_dashboard.py``; ``benchmarks/dashboard.py`` times it at a million
reservations). The waitlist figures are one aggregate query over the waitlist entries
(``waitlists``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from urllib.parse import urlencode

from django.conf import settings
from django.db.models import Count, F, Q, Sum
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone

from carts.models import Cart, CartStatus
from checkout.orphans import orphaned_reservations
from inventory.models import (
    Reservation,
    ReservationStatus,
    StockLevel,
    WaitlistEntry,
    WaitlistStatus,
)
from orders.models import Order
from payments import breaker
from payments.models import Payment, PaymentStatus


@dataclass(frozen=True)
class Figure:
    label: str
    value: int | str
    url: str
    # Shown highlighted when the figure is not what a healthy shop shows (e.g. not 0).
    alert: bool = False
    help: str = ""


@dataclass(frozen=True)
class Section:
    title: str
    figures: list[Figure] = field(default_factory=list)


def _list_url(app_model: str, **params: object) -> str:
    url = reverse(f"admin:{app_model}_changelist")
    return f"{url}?{urlencode(params)}" if params else url


def _today(now: datetime) -> tuple[datetime, datetime]:
    """The current day in the shop's time zone, as [start, end)."""
    local = timezone.localtime(now)
    start = timezone.make_aware(datetime.combine(local.date(), time.min), local.tzinfo)
    return start, start + timedelta(days=1)


def stock_health(now: datetime) -> Section:
    low = settings.LOW_STOCK_THRESHOLD
    levels = StockLevel.objects.alias(free=F("on_hand") - F("reserved"))
    low_count = levels.filter(free__gt=0, free__lt=low).count()
    out_count = levels.filter(free__lte=0).count()
    pending = Reservation.objects.filter(status=ReservationStatus.PENDING)
    lapsed = pending.filter(expires_at__lte=now).count()
    orphaned = orphaned_reservations().count()
    reservations = "inventory_reservation"
    return Section(
        "Stock health",
        [
            Figure(
                "Low stock",
                low_count,
                _list_url("inventory_stocklevel", stock_status="low_stock"),
                alert=low_count > 0,
                help=f"stock levels with 1 to {low - 1} available",
            ),
            Figure(
                "Out of stock",
                out_count,
                _list_url("inventory_stocklevel", stock_status="out_of_stock"),
                alert=out_count > 0,
                help="stock levels with nothing available",
            ),
            Figure(
                "Lapsed reservations",
                lapsed,
                _list_url(reservations, status__exact=ReservationStatus.PENDING, expired="yes"),
                alert=lapsed > 0,
                help="pending past their expiry (the sweeper ends them)",
            ),
            Figure(
                "Orphaned reservations",
                orphaned,
                _list_url(reservations, orphaned="yes"),
                alert=orphaned > 0,
                help="pending, no checkout and no order holds them",
            ),
        ],
    )


def payments_needing_attention(now: datetime) -> Section:
    payments = Payment.objects
    captured = payments.captured_without_order().count()
    refund_pending = payments.filter(status=PaymentStatus.REFUND_PENDING).count()
    stale = payments.stale_in_flight(now=now).count()
    flagged = payments.filter(needs_attention=True).count()
    return Section(
        "Payments needing attention",
        [
            Figure(
                "Captured without order",
                captured,
                _list_url("payments_payment", captured_without_order="yes"),
                alert=captured > 0,
                help="money taken, order not written yet",
            ),
            Figure(
                "Refund pending",
                refund_pending,
                _list_url("payments_payment", status__exact=PaymentStatus.REFUND_PENDING),
                alert=refund_pending > 0,
                help="cancelled orders whose refund is not confirmed",
            ),
            Figure(
                "Stale in flight",
                stale,
                _list_url("payments_payment", in_flight="stale"),
                alert=stale > 0,
                help="pending/authorized past the in-flight timeout",
            ),
            Figure(
                "Flagged for staff",
                flagged,
                _list_url("payments_payment", needs_attention__exact=1),
                alert=flagged > 0,
                help="retries exhausted: a person must decide",
            ),
        ],
    )


def sales_today(now: datetime) -> Section:
    start, end = _today(now)
    in_checkout = Cart.objects.filter(status=CartStatus.CHECKOUT).count()
    started = Cart.objects.filter(
        checkout_started_at__gte=start, checkout_started_at__lt=end
    ).count()
    orders = Order.objects.filter(created_at__gte=start, created_at__lt=end).count()
    if started:
        rate = (Decimal(orders) * 100 / started).quantize(Decimal("0.1"), ROUND_HALF_UP)
        conversion = f"{rate}%"
    else:
        conversion = "n/a"
    day = {"__gte": start.isoformat(), "__lt": end.isoformat()}
    return Section(
        "Checkouts and orders",
        [
            Figure(
                "Checkouts in progress",
                in_checkout,
                _list_url("carts_cart", status__exact=CartStatus.CHECKOUT),
                help="carts holding stock in checkout now",
            ),
            Figure(
                "Orders today",
                orders,
                _list_url("orders_order", **{f"created_at{k}": v for k, v in day.items()}),
            ),
            Figure(
                "Conversion today",
                conversion,
                _list_url("carts_cart", **{f"checkout_started_at{k}": v for k, v in day.items()}),
                help=f"{orders} order(s) of {started} checkout(s) started today",
            ),
        ],
    )


def waitlists(now: datetime) -> Section:
    """The waitlists now (entries waiting and the units they want, offers held) and the
    offers of today by outcome (SPEC §15), each linking to the waitlist entries it counts.
    One aggregate, one pass over the entries that are open or were offered or ended today
    (``offered_at`` and ``ended_at`` are not indexed: the table grows with the shoppers who
    waited, far slower than the reservations)."""
    start, end = _today(now)
    offered_today = Q(offered_at__gte=start, offered_at__lt=end)
    ended_today = Q(ended_at__gte=start, ended_at__lt=end)
    row = (
        WaitlistEntry.objects.filter(
            Q(status__in=[WaitlistStatus.WAITING, WaitlistStatus.OFFERED])
            | offered_today
            | ended_today
        )
        .order_by()
        .aggregate(
            waiting=Count("id", filter=Q(status=WaitlistStatus.WAITING)),
            units=Coalesce(Sum("quantity", filter=Q(status=WaitlistStatus.WAITING)), 0),
            open_offers=Count("id", filter=Q(status=WaitlistStatus.OFFERED)),
            offered=Count("id", filter=offered_today),
            claimed=Count("id", filter=Q(status=WaitlistStatus.CLAIMED) & ended_today),
            lapsed=Count("id", filter=Q(status=WaitlistStatus.EXPIRED) & ended_today),
        )
    )
    entries = "inventory_waitlistentry"
    waiting = {"status__exact": WaitlistStatus.WAITING}
    offered_on = {"offered_at__gte": start.isoformat(), "offered_at__lt": end.isoformat()}
    ended_on = {"ended_at__gte": start.isoformat(), "ended_at__lt": end.isoformat()}
    return Section(
        "Waitlists",
        [
            Figure(
                "Waiting",
                row["waiting"],
                _list_url(entries, **waiting),
                help="entries in a queue for a sold-out product",
            ),
            Figure(
                "Units waited for",
                row["units"],
                _list_url(entries, **waiting),
                help="withheld from everyone else while they wait",
            ),
            Figure(
                "Offers open",
                row["open_offers"],
                _list_url(entries, status__exact=WaitlistStatus.OFFERED),
                help="freed units held for the next entry until claimed or lapsed",
            ),
            Figure("Offered today", row["offered"], _list_url(entries, **offered_on)),
            Figure(
                "Claimed today",
                row["claimed"],
                _list_url(entries, status__exact=WaitlistStatus.CLAIMED, **ended_on),
                help="checkout started with the offer",
            ),
            Figure(
                "Lapsed today",
                row["lapsed"],
                _list_url(entries, status__exact=WaitlistStatus.EXPIRED, **ended_on),
                help="offers not claimed in time (passed to the next entry)",
            ),
        ],
    )


def payment_gateway_breaker_line() -> Figure:
    """The payment gateway's circuit breaker (SPEC §13 "A gateway outage degrades checkout
    only"): its state, shared by every worker (one Redis read, no SQL), linking to the
    failed payments."""
    snap = breaker.snapshot()
    return Figure(
        "Payment gateway",
        snap.state if snap.storage_available else "unguarded",
        _list_url("payments_payment", status__exact=PaymentStatus.FAILED),
        alert=snap.is_open or not snap.storage_available,
        help=breaker.describe(snap),
    )


def overview(*, now: datetime | None = None) -> list[Section]:
    """The overview's sections, in the order they are shown."""
    now = now or timezone.now()
    sections = [
        stock_health(now),
        payments_needing_attention(now),
        sales_today(now),
        waitlists(now),
    ]
    sections[1].figures.append(payment_gateway_breaker_line())
    return sections
