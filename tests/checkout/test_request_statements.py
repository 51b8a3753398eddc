"""What each HTTP request of a checkout costs in SQL statements, pinned exactly for a cart
of 1 and of 10 lines, and the table of ``docs/performance.md`` ("What the request path
costs") checked against the same numbers.

The requests are those of a flash-sale shopper (``benchmarks/flash_sale.py``): create
the cart, add each line, start the checkout, PATCH addresses and payment method, confirm
with an ``Idempotency-Key``; plus reading the checkout, a PATCH that extends the
reservations and a confirm without a key. Counted by the test client inside the test's transaction: each transaction
of a request shows as SAVEPOINT / RELEASE SAVEPOINT where production sends BEGIN / COMMIT,
so the figures are the statements the server sends either way.
"""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from django.utils import timezone

from tests.support import ADDRESS, API, Shopper, stocked
from tests.support.statements import REQUEST_STATEMENTS

pytestmark = pytest.mark.django_db

# The figures pinned here are REQUEST_STATEMENTS (tests/support/statements.py, the single
# source, also used by other tests); the documented table must show the same.
# The flash-sale shopper's 3-line checkout: 7 requests.
THREE_LINE_CHECKOUT = [
    "create cart",
    *["add line"] * 3,
    "start checkout",
    "PATCH checkout",
    "confirm",
]

PERFORMANCE_DOC = Path(__file__).resolve().parents[2] / "docs" / "performance.md"
UPDATE = {
    "shipping_address": ADDRESS,
    "billing_address": ADDRESS,
    "payment_method": "card",
    "current_step": 3,
}
# Past this many seconds after the start, a PATCH extends the reservations (the cart's
# checkout TTL minus its extension threshold; the same shift as test_checkout_update).
EXTENDING_SHIFT = timedelta(seconds=200)


def walk_checkout(lines: int, pinned: str, assert_num_queries) -> dict:
    """A shopper's whole checkout of ``lines`` lines through the API, the request(s)
    named ``pinned`` run under ``assert_num_queries`` with its figure. Returns the
    order."""
    skus = [stocked(on_hand=50).product.sku for _ in range(lines)]
    shopper = Shopper()

    def step(name: str, request):
        if name != pinned:
            return request()
        with assert_num_queries(REQUEST_STATEMENTS[name]):
            return request()

    with time_machine.travel(timezone.now(), tick=False) as clock:
        step("create cart", shopper.create_cart)
        for sku in skus:
            assert step("add line", lambda sku=sku: shopper.add(sku, 2)).status_code == 201
        started = step("start checkout", shopper.start)
        assert started.status_code == 201, started.content
        assert len(started.json()["reservation_ids"]) == lines
        state = step("get checkout", shopper.state)
        assert state.status_code == 200, state.content
        if pinned == "PATCH checkout, extending the reservations":
            clock.shift(EXTENDING_SHIFT)
            updated = step(pinned, lambda: shopper.update(UPDATE))
            assert updated.json()["extensions_used"] == 1
        else:
            updated = step("PATCH checkout", lambda: shopper.update(UPDATE))
            assert updated.json()["extensions_used"] == 0
        assert updated.status_code == 200, updated.content
        without_key = pinned == "confirm, without an Idempotency-Key"
        key = {} if without_key else {"HTTP_IDEMPOTENCY_KEY": str(uuid.uuid4())}
        confirmed = step(
            pinned if without_key else "confirm",
            lambda: shopper.client.post(
                f"{API}/carts/{shopper.cart_id}/checkout/confirm/",
                {},
                format="json",
                HTTP_X_CART_TOKEN=shopper.token,
                **key,
            ),
        )
    assert confirmed.status_code == 201, confirmed.content
    order = confirmed.json()
    assert len(order["items"]) == lines
    return order


@pytest.mark.parametrize("lines", [1, 10])
@pytest.mark.parametrize("request_name", list(REQUEST_STATEMENTS))
def test_each_checkout_request_costs_a_fixed_number_of_statements(
    django_assert_num_queries, request_name, lines
):
    walk_checkout(lines, request_name, django_assert_num_queries)


def documented_table() -> dict[str, tuple[str, str]]:
    """The rows of the table under "What the request path costs" in
    ``docs/performance.md``: request -> (before, now), markup removed."""
    text = PERFORMANCE_DOC.read_text()
    start = text.index("What the request path costs")
    rows: dict[str, tuple[str, str]] = {}
    in_table = False
    for line in text[start:].splitlines():
        if line.startswith("|"):
            in_table = True
            cells = [re.sub(r"[*`]", "", c).strip() for c in line.strip("|").split("|")]
            if cells[0] in ("request", "") or set(cells[0]) <= {"-"}:
                continue
            rows[cells[0]] = (cells[1], cells[2])
        elif in_table:
            break
    return rows


TIMES_3 = " (\N{MULTIPLICATION SIGN} 3)"  # the suffix of the row of the three adds


def test_the_documented_statement_table_shows_the_pinned_figures():
    rows = documented_table()
    total = rows.pop("3-line checkout")
    lines_of = {name.removesuffix(TIMES_3): now for name, (_, now) in rows.items()}
    assert lines_of == {name: str(count) for name, count in REQUEST_STATEMENTS.items()}
    assert total[1] == str(sum(REQUEST_STATEMENTS[name] for name in THREE_LINE_CHECKOUT))
    before = {name.removesuffix(TIMES_3): b for name, (b, _) in rows.items()}
    assert total[0] == str(
        sum(int(before[name]) for name in THREE_LINE_CHECKOUT if before[name].isdigit())
    )
