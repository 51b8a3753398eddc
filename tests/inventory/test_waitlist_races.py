"""The waitlists under real concurrency (SPEC §15): threads, each with its own PostgreSQL
connection, lined up on a barrier, on one hot sku stocked in one warehouse or two. Other
shoppers release their holds, lapsed holds are expired by two sweepers side by side and
reclaimed on demand, carts join and leave the queue, and the periodic waitlist pass runs,
all at once; then the carts holding offers claim them by starting checkout while more
units are freed; then those checkouts are abandoned and their units pass on.

The test settings give every connection a ``lock_timeout``, so a lock-order bug fails here
(an OperationalError, or PostgreSQL's deadlock error) instead of hanging. After each round:
every counter is exact (``reserved`` == pending holds, ``waitlisted`` == waiting units),
no unit is offered twice (an offer holds exactly its entry's quantity, pending holds fit
in the stock), offers went strictly in join order, and no entry waits while its units are
free, so every freed unit went to the queue (with one warehouse at once, in the
transaction that freed it; with two, a transaction that found another one holding the
second warehouse's row leaves the rest to the periodic pass, which is run first); and
``check_inventory`` finds nothing."""

from __future__ import annotations

import threading
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import transaction
from django.db.models import Min, Sum

from carts.locks import lock_cart
from carts.models import Cart, CartStatus
from checkout.services import abandon_checkout, start_checkout
from inventory import services, waitlist
from inventory.errors import StockAvailable
from inventory.models import (
    Product,
    Reservation,
    ReservationStatus,
    StockLevel,
    WaitlistEntry,
    WaitlistStatus,
)
from inventory.repair import missed_offers, stock_check_batch, waitlist_findings
from tests.support import assert_counters_exact, run_concurrently, run_in_threads
from tests.support.factories import CartFactory, ProductFactory, WarehouseFactory, default_warehouse
from tests.support.jobs import lapse

pytestmark = pytest.mark.django_db(transaction=True)

PER_WAREHOUSE = 6
STUCK_AFTER = 180  # seconds a thread may run


def hot_sku(warehouses: int) -> Product:
    """A product with ``PER_WAREHOUSE`` units in each warehouse, all held by another
    shopper (a cart-less hold, lasting)."""
    stores = [default_warehouse()] + [
        WarehouseFactory(code=f"hot{n}", priority=n) for n in range(1, warehouses)
    ]
    product = ProductFactory(sku="HOT-RACE")
    for store in stores:
        StockLevel.objects.create(product=product, warehouse=store, on_hand=PER_WAREHOUSE)
    holds = services.reserve(
        lines=[services.ReservationLine(product.id, None, PER_WAREHOUSE * warehouses)],
        ttl_seconds=600,
    )
    assert sum(h.quantity for h in holds) == PER_WAREHOUSE * warehouses
    return product


def single_holds(product: Product, count: int, ttl: int = 600) -> list[int]:
    return [
        r.id
        for _ in range(count)
        for r in services.reserve(
            lines=[services.ReservationLine(product.id, None, 1)], ttl_seconds=ttl
        )
    ]


def join(cart_id, product: Product, quantity: int) -> WaitlistEntry:
    with transaction.atomic():
        lock_cart(cart_id)
        return waitlist.join(
            cart_id=cart_id, product=product, warehouse=None, quantity=quantity, actor="race"
        ).entry


def leave(entry: WaitlistEntry) -> WaitlistEntry:
    with transaction.atomic():
        lock_cart(entry.cart_id)
        return waitlist.leave(cart_id=entry.cart_id, entry_id=entry.id, actor="race")


def sweep() -> int:
    """A sweeper worker: expires lapsed holds in small batches until it finds none it
    can take (rows another worker holds are skipped)."""
    expired = 0
    while done := services.expire_due(batch_size=2, actor="sweeper"):
        expired += done
    return expired


def waitlist_pass() -> int:
    """The periodic pass (job ``serve_waitlists``): every product with a queue."""
    return sum(
        waitlist.serve_product(product_id=p.id, actor="job") for p in waitlist.products_waiting()
    )


def assert_waitlist_invariants(product: Product) -> None:
    assert_counters_exact()
    assert [c.problems for c in stock_check_batch(after_id=0, limit=100) if c.problems] == []
    entries = list(
        WaitlistEntry.objects.filter(product=product)
        .annotate(first_offer=Min("offer_reservations__id"))
        .order_by("id")
    )
    offered = [e for e in entries if e.first_offer is not None]
    # Offers were made in join order (an offer's reservation ids grow with time) ...
    by_offer = [e.id for e in sorted(offered, key=lambda e: e.first_offer)]
    assert by_offer == sorted(by_offer)
    # ... and nobody who joined before an offered entry is still waiting.
    waiting = [e.id for e in entries if e.status == WaitlistStatus.WAITING]
    if waiting and offered:
        assert min(waiting) > max(e.id for e in offered)
    # An open offer holds exactly its entry's quantity, for its cart; no unit twice.
    for entry in entries:
        if entry.status == WaitlistStatus.OFFERED:
            held = Reservation.objects.filter(
                waitlist_entry=entry, status=ReservationStatus.PENDING
            )
            assert held.aggregate(n=Sum("quantity"))["n"] == entry.quantity
            assert set(held.values_list("cart_id", flat=True)) == {entry.cart_id}
    # Every freed unit went to the queue: its head waits only for more than is free.
    assert missed_offers() == []
    assert waitlist_findings() == []
    call_command("check_inventory", stdout=StringIO())  # raises on drift


def unexpected(outcomes: list) -> list:
    return [o for o in outcomes if isinstance(o, Exception) and not isinstance(o, StockAvailable)]


@pytest.mark.parametrize("warehouses", [1, 2])
def test_freeing_joining_leaving_and_sweeping_at_once_offers_every_unit_in_order(warehouses):
    product = hot_sku(warehouses)
    # Extra stock arrives and is taken at once by other shoppers, one unit per hold.
    stock = StockLevel.objects.filter(product=product).order_by("id")
    for row in stock:
        services.set_stock(product=product, warehouse=row.warehouse, on_hand=row.on_hand + 4)
    loose = single_holds(product, 4 * warehouses)
    first = [CartFactory() for _ in range(8)]
    queue = [join(cart.id, product, 1 + n % 2) for n, cart in enumerate(first)]
    assert all(e.status == WaitlistStatus.WAITING for e in queue)
    # Half of those holds lapse (after the joins: a join reclaims lapsed holds first).
    lapsed, live = loose[: len(loose) // 2], loose[len(loose) // 2 :]
    lapse(reservation_ids=lapsed)
    latecomers = [CartFactory() for _ in range(4)]

    tasks = (
        [lambda r=r: services.release(reservation_ids=[r], actor="shopper") for r in live]
        + [lambda e=e: leave(e) for e in queue[1::3]]
        + [lambda c=c: join(c.id, product, 2) for c in latecomers]
        + [sweep, sweep, waitlist_pass]
    )
    outcomes = run_concurrently(len(tasks), lambda i: tasks[i](), join_timeout=STUCK_AFTER)

    assert unexpected(outcomes) == []
    if warehouses == 1:
        # Every transaction that freed units held the product's only row: offered at once.
        sweep()  # a sweeper that met a row held by the other stopped early
        assert missed_offers() == []
    else:
        sweep()
        waitlist_pass()
    assert_waitlist_invariants(product)
    # The freed units (the loose holds) went to the queue; the queue wanted more than
    # that, so what is not offered is only what its head cannot use.
    held_by_offers = (
        WaitlistEntry.objects.filter(status=WaitlistStatus.OFFERED).aggregate(n=Sum("quantity"))[
            "n"
        ]
        or 0
    )
    free = sum(r.on_hand - r.reserved for r in StockLevel.objects.filter(product=product))
    assert held_by_offers > 0
    assert held_by_offers + free == len(loose)

    # Round 2: the carts with offers claim them by starting checkout, while the last
    # holds of other shoppers are released and a sweeper runs.
    offered = list(WaitlistEntry.objects.filter(status=WaitlistStatus.OFFERED))
    remaining = list(
        Reservation.objects.filter(
            product=product, cart__isnull=True, status=ReservationStatus.PENDING
        ).values_list("id", flat=True)
    )
    tasks = (
        [lambda e=e: start_checkout(cart_id=e.cart_id, actor="shopper") for e in offered]
        + [lambda r=r: services.release(reservation_ids=[r], actor="shopper") for r in remaining]
        + [sweep, waitlist_pass]
    )
    outcomes = run_concurrently(len(tasks), lambda i: tasks[i](), join_timeout=STUCK_AFTER)

    assert unexpected(outcomes) == []
    claimed = WaitlistEntry.objects.filter(id__in=[e.id for e in offered])
    assert set(claimed.values_list("status", flat=True)) <= {WaitlistStatus.CLAIMED}
    assert Cart.objects.filter(
        id__in=[e.cart_id for e in offered], status=CartStatus.CHECKOUT
    ).count() == len(offered)
    if warehouses > 1:
        waitlist_pass()
    assert_waitlist_invariants(product)

    # Round 3: every checkout is abandoned at once; the units go to the queue.
    in_checkout = list(Cart.objects.filter(status=CartStatus.CHECKOUT).values_list("id", flat=True))
    tasks = [
        lambda c=c: abandon_checkout(cart_id=c, reason="stale", actor="shopper")
        for c in in_checkout
    ] + [sweep, waitlist_pass]
    outcomes = run_concurrently(len(tasks), lambda i: tasks[i](), join_timeout=STUCK_AFTER)

    assert unexpected(outcomes) == []
    if warehouses > 1:
        waitlist_pass()
    assert_waitlist_invariants(product)
    # No unit lost: what is not sold is free, held by an offer or by a checkout.
    rows = StockLevel.objects.filter(product=product)
    assert sum(r.on_hand for r in rows) == (PER_WAREHOUSE + 4) * warehouses
    pending = Reservation.objects.filter(product=product, status=ReservationStatus.PENDING)
    assert sum(r.reserved for r in rows) == sum(r.quantity for r in pending)


def test_an_offer_to_a_cart_another_transaction_holds_does_not_deadlock():
    """The offer step runs in whichever transaction frees units, holding stock rows, and
    inserts rows that reference the offered cart (its hold, its cart line): their foreign
    key checks take a key-share lock on the Cart row. A shopper's request on that cart
    holds the Cart row (lock order: cart first) and then wants the same stock rows. The
    cart lock must not conflict with the key-share lock, else each waits for the other."""
    product = hot_sku(1)
    [hold] = Reservation.objects.filter(product=product, status=ReservationStatus.PENDING)
    shopper = CartFactory()
    entry = join(shopper.id, product, 1)
    cart_locked, offered = threading.Event(), threading.Event()

    def shoppers_request() -> str:
        with transaction.atomic():
            lock_cart(shopper.id)  # e.g. joining another queue, or starting checkout
            cart_locked.set()
            assert offered.wait(30)
            # Wants the stock row the freeing transaction holds until it commits.
            services.reserve(lines=[services.ReservationLine(product.id, None, 1)], ttl_seconds=60)
        return "reserved"

    def freeing_transaction() -> str:
        assert cart_locked.wait(30)
        with transaction.atomic():
            services.release(reservation_ids=[hold.id], actor="shopper")  # offers to the cart
            offered.set()
        return "released"

    assert run_in_threads(shoppers_request, freeing_transaction) == ["reserved", "released"]
    entry.refresh_from_db()
    assert entry.status == WaitlistStatus.OFFERED
    assert_waitlist_invariants(product)
