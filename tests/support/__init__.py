"""Helpers shared by the test modules of several packages (fixtures stay in the
``conftest.py`` files, which import those of ``chromium``):

- ``factories``: factory-boy factories for every model;
- ``addresses``: the addresses a shopper fills in;
- ``envelope``: the exact check of the API's error envelope;
- ``stock``: stock rows to sell from and the stock invariant of SPEC §3;
- ``shopper``: a shopper driving the cart and checkout API;
- ``checkout``: carts put in checkout by the service, confirm over HTTP, paid orders;
- ``shop``: a small shop in known states (admin and observability tests);
- ``jobs``: orphans, lapsed reservations and captured payments (cleanup job tests);
- ``threads``: work run at the same moment in several threads (races, sweepers side by side),
  a row held locked by another transaction;
- ``statements``: the SQL statements each checkout request costs;
- ``chromium``: a headless Chromium against the live server (browser tests' fixtures).

Most helpers are re-exported here: ``from tests.support import stocked, cart_in_checkout``.
"""

from tests.support.addresses import ADDRESS, BILLING
from tests.support.checkout import (
    TOKEN,
    accept_new_orders,
    cart_in_checkout,
    confirm,
    paid_order,
    refuse_new_orders,
)
from tests.support.envelope import assert_error
from tests.support.jobs import (
    cart_with_reservations,
    checkout_cart,
    ended_once,
    lapse,
    lapsed_reservations,
    make_stale,
    metric,
    paid_cart_without_order,
    payment,
    queued_tasks,
)
from tests.support.shop import Shop, build_shop, captured_without_order, lapsed_reservation
from tests.support.shopper import (
    API,
    Shopper,
    assert_constant_queries,
    shoppers_with_1_and_10_lines,
)
from tests.support.stock import (
    assert_counters_exact,
    assert_stock_invariants,
    ensure_default_warehouse,
    numbers,
    reserve,
    stocked,
    stocks,
)
from tests.support.threads import row_locked, run_concurrently, run_in_threads

__all__ = [
    "ADDRESS",
    "API",
    "BILLING",
    "TOKEN",
    "Shop",
    "Shopper",
    "accept_new_orders",
    "assert_constant_queries",
    "assert_counters_exact",
    "assert_error",
    "assert_stock_invariants",
    "build_shop",
    "captured_without_order",
    "cart_in_checkout",
    "cart_with_reservations",
    "checkout_cart",
    "confirm",
    "ended_once",
    "ensure_default_warehouse",
    "lapse",
    "lapsed_reservation",
    "lapsed_reservations",
    "make_stale",
    "metric",
    "numbers",
    "paid_cart_without_order",
    "paid_order",
    "payment",
    "queued_tasks",
    "refuse_new_orders",
    "reserve",
    "row_locked",
    "run_concurrently",
    "run_in_threads",
    "shoppers_with_1_and_10_lines",
    "stocked",
    "stocks",
]
