"""The project's Prometheus metrics (SPEC §10). Module-level objects, low-cardinality
labels; rates and conversion are PromQL over these (see config/prometheus/alerts.yml).

In multi-process deployments (gunicorn workers, Celery prefork children) the launcher sets
``PROMETHEUS_MULTIPROC_DIR``; prometheus_client then writes these to per-process files
that ``/metrics`` aggregates.
"""

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
)  # captured | declined | capture_failed | timeout | error
checkout_confirm_stock_failures_total = Counter(
    "checkout_confirm_stock_failures_total",
    "Confirms refused at the final stock re-validation (payment with stock issues).",
)
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
    "payments_captured_without_order": (
        "Captured payments that have no order yet (reconciliation backlog)."
    ),
    "checkout_state_collector_up": "1 if the scrape-time database gauges could be read.",
}
