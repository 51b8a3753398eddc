"""The project's Prometheus metrics (SPEC §10). Module-level objects, low-cardinality
labels; rates and conversion are PromQL over these (see config/prometheus/alerts.yml).

In multi-process deployments (gunicorn workers, Celery prefork children) the launcher sets
``PROMETHEUS_MULTIPROC_DIR``; prometheus_client then writes these to per-process files
that ``/metrics`` aggregates.
"""

from collections.abc import Iterable

from prometheus_client import Counter, Histogram

stock_reservations_total = Counter(
    "stock_reservations_total",
    "Reservation attempts of whole carts or API requests, by outcome.",
    ["outcome"],  # success | insufficient_stock | error
)
stock_reservations_extended_total = Counter(
    "stock_reservations_extended_total",
    "Reservations whose expiry was extended.",
    ["outcome"],  # success | limit_reached | not_active
)
stock_reservations_ttl_seconds = Histogram(
    "stock_reservations_ttl_seconds",
    "TTL given to a reservation when it was created or extended.",
    buckets=(30, 60, 120, 180, 300, 450, 600, 900, 1200, 1800),
)
reservations_expired_total = Counter(
    "reservations_expired_total", "Pending reservations that lapsed and were expired."
)
reservations_released_total = Counter(
    "reservations_released_total", "Reservations released, by reason.", ["reason"]
)
reservations_confirmed_total = Counter(
    "reservations_confirmed_total", "Reservations confirmed into orders (stock deducted)."
)
reservations_orphaned_total = Counter(
    "reservations_orphaned_total", "Pending reservations found with no checkout and no order."
)
stock_validations_total = Counter(
    "stock_validations_total", "Stock validations of carts, by outcome.", ["outcome"]
)  # ok | insufficient
stock_out_of_stock_total = Counter(
    "stock_out_of_stock_total", "Lines refused because the product was short."
)
carts_checkout_total = Counter("carts_checkout_total", "Checkouts started.")
carts_abandoned_total = Counter("carts_abandoned_total", "Checkouts abandoned.", ["reason"])
carts_completed_total = Counter("carts_completed_total", "Checkouts completed into orders.")
payments_total = Counter(
    "payments_total", "Payment attempts at confirm, by outcome.", ["outcome"]
)  # captured | declined | capture_failed | timeout | error | unavailable (breaker open)
checkout_confirm_stock_failures_total = Counter(
    "checkout_confirm_stock_failures_total",
    "Confirms refused at the final stock re-validation (payment with stock issues).",
)
payments_refunds_total = Counter(
    "payments_refunds_total", "Refund attempts of cancelled orders, by outcome.", ["outcome"]
)  # refunded | failed | flagged
# The label values of payments_refunds_total (exported at 0 before the first refund).
PAYMENTS_REFUNDS_OUTCOMES = ("refunded", "failed", "flagged")
payments_stale_resolved_total = Counter(
    "payments_stale_resolved_total",
    "Interrupted in-flight payments resolved from the gateway's answer, by outcome.",
    ["outcome"],
)  # captured | voided | not_found | unknown
PAYMENTS_STALE_RESOLVED_OUTCOMES = ("captured", "voided", "not_found", "unknown")
payment_breaker_transitions_total = Counter(
    "payment_breaker_transitions_total",
    "Transitions of the payment gateway's circuit breaker, by the state entered.",
    ["to"],
)
# The label values of payment_breaker_transitions_total.
PAYMENT_BREAKER_TRANSITIONS = ("open", "half_open", "closed")
orders_stock_issues_total = Counter(
    "orders_stock_issues_total",
    "Orders written after a captured payment whose reservations could not all be confirmed.",
)

# Gauges computed from the database at scrape time by ``ops.collectors`` (one process
# answers them, so they need no multiprocess files). Name -> help text.
SCRAPE_TIME_GAUGES: dict[str, str] = {
    "stock_reservations_pending": "Pending reservations holding stock now.",
    "stock_reservations_pending_quantity": "Units held by pending reservations now.",
    "stock_reservations_lapsed": (
        "Pending reservations past their expiry that no sweeper or shopper has expired yet."
    ),
    "stock_reservations_orphaned": (
        "Pending reservations with no cart in checkout and no order (release them)."
    ),
    "carts_by_status": "Carts by status now.",
    "payments_refund_pending_oldest_seconds": (
        "Age of the oldest refund owed and not yet made (0: none pending)."
    ),
    "payments_needing_attention": "Payments flagged for staff (needs_attention).",
    "payments_captured_without_order": (
        "Captured payments that have no order yet (reconciliation backlog)."
    ),
    "waitlist_entries": (
        "Open waitlist entries now, by status (waiting: in the queue; offered: holding an offer)."
    ),
    "waitlist_units_waiting": (
        "Units wanted by waiting waitlist entries now (withheld from everyone else)."
    ),
    "checkout_state_collector_up": "1 if the scrape-time database gauges could be read.",
}

# Gauges of the payment gateway's circuit breaker, read from its Redis state at scrape
# time by ``ops.collectors.PaymentBreakerCollector``. Name -> help text.
PAYMENT_BREAKER_GAUGES: dict[str, str] = {
    "payment_breaker_state": (
        "The payment gateway's circuit breaker: 1 for its current state (closed, open, "
        "half_open), 0 for the others."
    ),
    "payment_breaker_consecutive_failures": (
        "Consecutive gateway failures counted by the circuit breaker."
    ),
    "payment_breaker_retry_after_seconds": (
        "Seconds until the open circuit breaker lets a gateway call through (0: closed)."
    ),
    "payment_breaker_storage_up": (
        "1 if the circuit breaker's Redis answered; 0: the breaker fails open."
    ),
}


# --- Every known label value exported at 0 from the first scrape ----------------------
# A labelled counter has no series until its first event, so dashboards and alert
# expressions would show "no data" on a fresh or quiet node. Each labelled counter's known
# values are declared here (or, when an upper layer owns the values, by that app's
# ``AppConfig.ready()``) and their children created at 0 in every process that loads the
# apps: gunicorn workers, Celery workers and their pool children, management commands.

# High demand (SPEC §15).
WAITLIST_OFFER_OUTCOMES = ("offered", "claimed", "expired", "cancelled")
waitlist_offers_total = Counter(
    "waitlist_offers_total",
    "Waitlist offers made, and how offers ended (claimed by starting checkout, lapsed "
    "unclaimed, cancelled by the shopper or with the line).",
    ["outcome"],  # offered | claimed | expired | cancelled
)
waitlist_joins_total = Counter(
    "waitlist_joins_total",
    "Waitlist joins, by outcome.",
    ["outcome"],  # joined | stock_available
)
PURCHASE_LIMIT_KINDS = ("per_order", "per_customer")
purchase_limit_refusals_total = Counter(
    "purchase_limit_refusals_total",
    "Lines refused by a product's purchase limit, by kind.",
    ["kind"],  # per_order | per_customer
)

ZERO_LABEL_VALUES: dict[str, dict[str, tuple[str, ...]]] = {}
"""Counter name -> {label name: values exported at 0}: what has been declared so far."""


def export_at_zero(counter: Counter, **values: Iterable[str]) -> None:
    """Creates ``counter``'s child for each given label value so it is exported at 0
    before any event. One keyword per label of the counter (a single-label counter in
    practice); calling again adds values."""
    labels = tuple(counter._labelnames)
    if set(values) != set(labels):
        raise ValueError(f"{counter._name}: declare values for exactly {labels}")
    [(label, given)] = values.items()
    declared = ZERO_LABEL_VALUES.setdefault(counter._name, {}).setdefault(label, ())
    merged = tuple(dict.fromkeys((*declared, *given)))
    ZERO_LABEL_VALUES[counter._name][label] = merged
    for value in merged:
        counter.labels(**{label: value})


export_at_zero(stock_reservations_total, outcome=("success", "insufficient_stock", "error"))
export_at_zero(
    stock_reservations_extended_total, outcome=("success", "limit_reached", "not_active")
)
export_at_zero(stock_validations_total, outcome=("ok", "insufficient"))
export_at_zero(carts_abandoned_total, reason=("expired", "stale", "staff"))
export_at_zero(
    payments_total,
    outcome=("captured", "declined", "capture_failed", "timeout", "error", "unavailable"),
)
export_at_zero(payments_refunds_total, outcome=PAYMENTS_REFUNDS_OUTCOMES)
export_at_zero(payments_stale_resolved_total, outcome=PAYMENTS_STALE_RESOLVED_OUTCOMES)
export_at_zero(payment_breaker_transitions_total, to=PAYMENT_BREAKER_TRANSITIONS)
# reservations_released_total{reason}: the ReleaseReason codes, declared by inventory.apps.
export_at_zero(waitlist_offers_total, outcome=WAITLIST_OFFER_OUTCOMES)
export_at_zero(waitlist_joins_total, outcome=("joined", "stock_available"))
export_at_zero(purchase_limit_refusals_total, kind=PURCHASE_LIMIT_KINDS)
