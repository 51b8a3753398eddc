"""Random sequences of waitlist and reservation operations (SPEC §15), with the waitlist
invariants checked after every step.

Hypothesis drives shoppers holding stock (cart-less holds that lapse or are released),
carts joining and leaving the waitlists of two hot products, offers lapsing (their expiry
moved to the past, then the sweeper, an explicit expiry or the on-demand reclaim ends
them), carts claiming their offers by starting checkout and abandoning it, lines removed,
stock set, time passing and, with two warehouses, a warehouse going inactive and back
(the periodic waitlist pass then makes the offers its activation allows). Every entry
wants units from any active warehouse (unpinned); the world has one warehouse or two.

After every step:
- every stock row's ``reserved`` is the sum of its pending reservations (offers
  included), within ``on_hand``, and its ``waitlisted`` is the units its product's
  waiting entries want;
- offers go strictly in join order: an entry offered in the step has a lower id than
  every entry of its product still waiting, and no entry is offered twice;
- an offered entry's pending reservations hold exactly its quantity, for its cart;
- an entry changes state only along waiting → offered → claimed / expired / cancelled
  (or waiting → cancelled), and is cancelled only by leaving, by its cart giving the
  offer up at checkout, or when its turn comes while its cart cannot take offers;
- the public ``available`` is ``max(0, free - waiting)``;
- ``check_inventory``'s checks find nothing (a missed offer is allowed only between a
  warehouse turning active and the next waitlist pass).

Refusals are predicted when no lapsed hold of the product is about to be reclaimed: a
hold is refused exactly when the public ``available`` is short; a join is refused
(``STOCK_AVAILABLE``) exactly when the quantity is free beyond what the other waiting
entries want. Each example runs inside a savepoint rolled back at its end.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

import pytest
import time_machine
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from carts.errors import CartEmpty
from carts.locks import lock_cart
from carts.models import Cart, CartItem, CartStatus
from carts.services import remove_item
from checkout.holds import LAPSING_MARGIN
from checkout.services import abandon_checkout, start_checkout
from inventory import catalog, selectors, services, waitlist
from inventory.errors import InsufficientStock, StockAvailable, StockBelowReserved
from inventory.models import (
    OPEN_WAITLIST_STATUSES,
    Product,
    Reservation,
    ReservationStatus,
    StockLevel,
    WaitlistEntry,
    WaitlistStatus,
    Warehouse,
)
from inventory.repair import Finding, stock_check_batch, waitlist_findings
from tests.support.factories import CartFactory, ProductFactory, WarehouseFactory, default_warehouse

ON_HAND = 2  # per product and warehouse
CARTS = 4
OPEN_FOR_OFFERS = (CartStatus.ACTIVE, CartStatus.ABANDONED)
NEXT = {
    WaitlistStatus.WAITING: {"waiting", "offered", "cancelled"},
    WaitlistStatus.OFFERED: {"offered", "claimed", "expired", "cancelled"},
    WaitlistStatus.CLAIMED: {"claimed"},
    WaitlistStatus.EXPIRED: {"expired"},
    WaitlistStatus.CANCELLED: {"cancelled"},
}


@dataclass(frozen=True)
class World:
    products: list[Product]
    warehouses: list[Warehouse]
    carts: list[UUID]
    start: datetime


@dataclass(frozen=True)
class Seen:
    """An entry as the previous step left it."""

    product_id: UUID
    status: str
    offered_at: datetime | None


class WaitlistMachine(RuleBasedStateMachine):
    world: World  # set by the test before running
    seen: Counter[str]  # outcomes reached, over all the examples of a run

    def __init__(self) -> None:
        super().__init__()
        self.atomic = transaction.atomic()
        self.atomic.__enter__()
        self.traveller = time_machine.travel(self.world.start, tick=False)
        self.clock = self.traveller.start()
        self.now = timezone.now()
        self.entries: dict[int, Seen] = {}
        self.may_cancel: set[int] = set()  # entries this step cancels on purpose
        self.carts_before: dict[UUID, str] = {}  # cart statuses before this step
        self.pass_due = False  # a warehouse turned active since the last waitlist pass

    def teardown(self) -> None:
        self.traveller.stop()
        transaction.set_rollback(True)
        self.atomic.__exit__(None, None, None)

    # --- reading the database -------------------------------------------------------

    def rows(self, product: Product) -> list[StockLevel]:
        return list(StockLevel.objects.filter(product=product).select_related("warehouse"))

    def free(self, product: Product) -> int:
        return sum(r.on_hand - r.reserved for r in self.rows(product) if r.warehouse.is_active)

    def waiting(self, product: Product, *, but: int | None = None) -> int:
        return (
            WaitlistEntry.objects.filter(product=product, status=WaitlistStatus.WAITING)
            .exclude(id=but)
            .aggregate(units=Sum("quantity"))["units"]
            or 0
        )

    def lapsed(self, product: Product) -> bool:
        """Whether a pending hold of the product has lapsed (a reserve or a join reclaims
        it, and may offer its units, before deciding)."""
        return Reservation.objects.filter(
            product=product, status=ReservationStatus.PENDING, expires_at__lte=self.now
        ).exists()

    def cart_status(self, cart_id: UUID) -> str:
        return Cart.objects.values_list("status", flat=True).get(id=cart_id)

    def open_entry(self, cart_id: UUID, product: Product) -> WaitlistEntry | None:
        return WaitlistEntry.objects.filter(
            cart_id=cart_id, product=product, status__in=OPEN_WAITLIST_STATUSES
        ).first()

    def in_order(self, cart_ids) -> list[UUID]:
        """Carts in the world's order (not by their random ids: the same walk each run)."""
        wanted = set(cart_ids)
        return [c for c in self.world.carts if c in wanted]

    def offered(self) -> list[WaitlistEntry]:
        return list(WaitlistEntry.objects.filter(status=WaitlistStatus.OFFERED).order_by("id"))

    # --- rules ----------------------------------------------------------------------

    @initialize()
    def sold_out_with_queues(self) -> None:
        """Every walk starts sold out: each product's stock held by other shoppers (a
        unit per warehouse lapsing within a minute, the rest for ten), and two carts
        waiting for each product."""
        for product in self.world.products:
            for _ in self.world.warehouses:
                for ttl in (60, 600):
                    services.reserve(
                        lines=[services.ReservationLine(product.id, None, ON_HAND // 2)],
                        ttl_seconds=ttl,
                    )
            for cart_id, quantity in zip(self.world.carts[:2], (1, 2), strict=True):
                with transaction.atomic():
                    lock_cart(cart_id)
                    waitlist.join(
                        cart_id=cart_id,
                        product=product,
                        warehouse=None,
                        quantity=quantity,
                        actor="t",
                    )

    @rule(data=st.data(), product=st.integers(0, 1), ttl=st.sampled_from([60, 600]))
    def hold(self, data: st.DataObject, product: int, ttl: int) -> None:
        """Another shopper (a cart-less hold) takes units of the product: up to one more
        than the public may take (or one or two while lapsed holds may free some)."""
        item = self.world.products[product]
        expected = None
        if self.lapsed(item):
            quantity = data.draw(st.integers(1, 2))
        else:
            available = max(0, self.free(item) - self.waiting(item))
            quantity = data.draw(st.integers(1, available + 1))
            expected = available >= quantity
        try:
            made = services.reserve(
                lines=[services.ReservationLine(item.id, None, quantity)], ttl_seconds=ttl
            )
        except InsufficientStock:
            assert expected in (None, False)
            self.seen["hold refused"] += 1
            return
        assert expected in (None, True)
        assert sum(r.quantity for r in made) == quantity
        self.seen["hold"] += 1

    @precondition(
        lambda self: Reservation.objects.filter(
            cart__isnull=True, status=ReservationStatus.PENDING
        ).exists()
    )
    @rule(data=st.data())
    def release_hold(self, data: st.DataObject) -> None:
        held = sorted(
            Reservation.objects.filter(
                cart__isnull=True, status=ReservationStatus.PENDING
            ).values_list("id", flat=True)
        )
        services.release(reservation_ids=[data.draw(st.sampled_from(held))])
        self.seen["hold released"] += 1

    @rule(cart=st.integers(0, CARTS - 1), product=st.integers(0, 1), quantity=st.integers(1, 3))
    def join(self, cart: int, product: int, quantity: int) -> None:
        cart_id, item = self.world.carts[cart], self.world.products[product]
        if self.cart_status(cart_id) not in OPEN_FOR_OFFERS:
            return
        existing = self.open_entry(cart_id, item)
        expected = None
        if existing is not None and existing.status == WaitlistStatus.OFFERED:
            expected = False  # an offered entry is returned as it is
        elif not self.lapsed(item):
            others = self.waiting(item, but=existing.id if existing else None)
            expected = self.free(item) - others >= quantity
        newest = WaitlistEntry.objects.order_by("-id").values_list("id", flat=True).first() or 0
        try:
            with transaction.atomic():
                lock_cart(cart_id)
                result = waitlist.join(
                    cart_id=cart_id, product=item, warehouse=None, quantity=quantity, actor="t"
                )
        except StockAvailable:
            assert expected in (None, True)
            self.seen["join refused: stock available"] += 1
            return
        assert expected in (None, False)
        if existing is None:
            assert result.created and result.entry.id > newest  # last in the queue
            assert result.entry.status == WaitlistStatus.WAITING
            self.seen["join"] += 1
        else:
            assert not result.created and result.entry.id == existing.id
            if existing.status == WaitlistStatus.WAITING and result.entry.quantity != quantity:
                # Only if the lapsed holds the join reclaimed first were offered to it.
                assert expected is None and result.entry.status == WaitlistStatus.OFFERED
                assert result.entry.quantity == existing.quantity
                self.seen["join found its entry offered"] += 1
            elif existing.status == WaitlistStatus.WAITING:
                self.seen["join changed quantity"] += 1
                self.seen["join changed quantity, offered"] += result.entry.status == "offered"
            else:
                assert result.entry.quantity == existing.quantity

    @precondition(
        lambda self: WaitlistEntry.objects.filter(status__in=OPEN_WAITLIST_STATUSES).exists()
    )
    @rule(data=st.data())
    def leave(self, data: st.DataObject) -> None:
        """A cart leaves a queue, or declines its offer (which passes on)."""
        entry = data.draw(
            st.sampled_from(
                list(WaitlistEntry.objects.filter(status__in=OPEN_WAITLIST_STATUSES).order_by("id"))
            )
        )
        cart_id = entry.cart_id
        with transaction.atomic():
            lock_cart(cart_id)
            left = waitlist.leave(cart_id=cart_id, entry_id=entry.id, actor="t")
        assert left.status == WaitlistStatus.CANCELLED
        assert not Reservation.objects.filter(
            waitlist_entry=entry, status=ReservationStatus.PENDING
        ).exists()
        self.may_cancel.add(entry.id)
        self.seen[f"leave {entry.status}"] += 1

    @precondition(lambda self: WaitlistEntry.objects.filter(status="offered").exists())
    @rule(data=st.data(), how=st.sampled_from(["sweeper", "expire", "reclaim"]))
    def offer_lapses(self, data: st.DataObject, how: str) -> None:
        """An offer's expiry passes unclaimed; the sweeper, an explicit expiry or the
        on-demand reclaim (under the product's row locks) ends it."""
        entry = data.draw(st.sampled_from(self.offered()))
        holds = Reservation.objects.filter(waitlist_entry=entry, status=ReservationStatus.PENDING)
        ids = list(holds.values_list("id", flat=True))
        past = self.now - timedelta(seconds=1)
        holds.update(expires_at=past)
        WaitlistEntry.objects.filter(id=entry.id).update(offer_expires_at=past)
        if how == "sweeper":
            while services.expire_due(batch_size=data.draw(st.integers(1, 3))):
                pass
        elif how == "expire":
            services.expire(reservation_ids=ids)
        else:
            waitlist.serve_product(product_id=entry.product_id, actor="t")
        entry.refresh_from_db()
        assert entry.status == WaitlistStatus.EXPIRED
        self.seen[f"offer lapsed ({how})"] += 1

    @precondition(lambda self: WaitlistEntry.objects.filter(status="offered").exists())
    @rule(data=st.data())
    def claim(self, data: st.DataObject) -> None:
        """A cart holding an offer starts checkout: an offer that holds its line exactly
        (and is not about to lapse) is claimed; one that does not is given up, or
        expires if it has lapsed (its units pass on)."""
        cart_id = data.draw(st.sampled_from(self.in_order({e.cart_id for e in self.offered()})))
        lines = dict(CartItem.objects.filter(cart_id=cart_id).values_list("product_id", "quantity"))
        offers = list(WaitlistEntry.objects.filter(cart_id=cart_id, status="offered"))
        expected = {}
        for entry in offers:
            holds = list(
                Reservation.objects.filter(waitlist_entry=entry, status=ReservationStatus.PENDING)
            )
            if any(r.expires_at <= self.now for r in holds):
                expected[entry.id] = WaitlistStatus.EXPIRED
            elif sum(r.quantity for r in holds) == lines.get(entry.product_id) and all(
                r.expires_at > self.now + LAPSING_MARGIN for r in holds
            ):
                expected[entry.id] = WaitlistStatus.CLAIMED
            else:
                expected[entry.id] = WaitlistStatus.CANCELLED
        before = self.cart_status(cart_id)
        try:
            start_checkout(cart_id=cart_id, actor="t")
        except (InsufficientStock, CartEmpty) as error:
            assert self.cart_status(cart_id) == before
            assert all(
                WaitlistEntry.objects.get(id=e.id).status == WaitlistStatus.OFFERED for e in offers
            )
            self.seen[f"claim refused ({type(error).__name__})"] += 1
            return
        assert self.cart_status(cart_id) == CartStatus.CHECKOUT
        for entry in offers:
            entry.refresh_from_db()
            assert entry.status == expected[entry.id], (entry.id, entry.status)
            self.seen[f"claim: offer {entry.status}"] += 1
            if entry.status == WaitlistStatus.CANCELLED:
                self.may_cancel.add(entry.id)

    @precondition(lambda self: Cart.objects.filter(status=CartStatus.CHECKOUT).exists())
    @rule(data=st.data(), empty=st.booleans())
    def abandon(self, data: st.DataObject, empty: bool) -> None:
        """A checkout is abandoned (its holds go back, and to the queue); the shopper
        may empty the cart."""
        in_checkout = self.in_order(
            Cart.objects.filter(status=CartStatus.CHECKOUT).values_list("id", flat=True)
        )
        cart_id = data.draw(st.sampled_from(in_checkout))
        assert abandon_checkout(cart_id=cart_id, reason="stale", actor="t")
        assert not Reservation.objects.filter(
            cart_id=cart_id, status=ReservationStatus.PENDING
        ).exists()
        if empty:
            for item_id in CartItem.objects.filter(cart_id=cart_id).values_list("id", flat=True):
                remove_item(cart_id=cart_id, item_id=item_id, actor="t")
        self.seen["abandon"] += 1

    @precondition(lambda self: CartItem.objects.filter(cart__status__in=OPEN_FOR_OFFERS).exists())
    @rule(data=st.data())
    def remove_line(self, data: st.DataObject) -> None:
        """A shopper removes a line: an offer for it is given up (and passes on)."""
        lines = list(
            CartItem.objects.filter(cart__status__in=OPEN_FOR_OFFERS)
            .order_by("id")
            .values_list("cart_id", "id", "product_id")
        )
        cart_id, item_id, product_id = data.draw(st.sampled_from(lines))
        offer = WaitlistEntry.objects.filter(
            cart_id=cart_id, product_id=product_id, status=WaitlistStatus.OFFERED
        ).first()
        remove_item(cart_id=cart_id, item_id=item_id, actor="t")
        if offer is not None:
            offer.refresh_from_db()
            assert offer.status == WaitlistStatus.CANCELLED
            self.may_cancel.add(offer.id)
        self.seen["line removed" if offer is None else "offered line removed"] += 1

    @rule(batch_size=st.integers(1, 3))
    def sweep(self, batch_size: int) -> None:
        expired = 0
        while done := services.expire_due(batch_size=batch_size):
            expired += done
        self.seen["sweep"] += bool(expired)

    @rule(seconds=st.sampled_from([30, 61, 301, 601]))
    def time_passes(self, seconds: int) -> None:
        self.clock.shift(timedelta(seconds=seconds))
        self.now += timedelta(seconds=seconds)

    @rule(row=st.integers(0, 3), on_hand=st.integers(0, 4))
    def set_stock(self, row: int, on_hand: int) -> None:
        item = self.world.products[row % 2]
        warehouse = self.world.warehouses[row // 2 % len(self.world.warehouses)]
        try:
            services.set_stock(product=item, warehouse=warehouse, on_hand=on_hand)
        except StockBelowReserved:
            self.seen["set_stock refused"] += 1
            return
        self.seen["set_stock"] += 1

    @precondition(lambda self: len(self.world.warehouses) > 1)
    @rule(active=st.booleans())
    def second_warehouse(self, active: bool) -> None:
        """The second warehouse goes inactive or comes back; what its return frees is
        offered by the next waitlist pass (the ``serve_waitlists`` job)."""
        catalog.warehouse_update(code=self.world.warehouses[1].code, is_active=active)
        self.pass_due = self.pass_due or active
        self.seen["warehouse deactivated" if not active else "warehouse activated"] += 1

    @rule()
    def waitlist_pass(self) -> None:
        """The periodic pass over every product with a queue."""
        made = sum(
            waitlist.serve_product(product_id=p.id, actor="t") for p in waitlist.products_waiting()
        )
        self.pass_due = False
        self.seen["waitlist pass offered"] += bool(made)

    # --- what must hold after every step --------------------------------------------

    @invariant()
    def waitlist_invariants(self) -> None:
        # reserved == pending holds (offers included) within on_hand, so no unit is held
        # twice; waitlisted == units the product's waiting entries want.
        checks = stock_check_batch(after_id=0, limit=100)
        assert [(c.stock_id, c.problems) for c in checks if c.problems] == []

        # The public availability: free units in active warehouses less what the queue
        # wants, never below 0.
        active = set(Warehouse.objects.filter(is_active=True).values_list("code", flat=True))
        free: Counter[UUID] = Counter()
        waiting: dict[UUID, int] = {}
        for c in checks:
            free[c.product_id] += (c.on_hand - c.reserved) if c.warehouse in active else 0
            waiting[c.product_id] = c.waiting
        for product in selectors.with_availability(self.world.products):
            assert product.available == max(0, free[product.id] - waiting[product.id])

        carts = dict(Cart.objects.filter(id__in=self.world.carts).values_list("id", "status"))
        entries = list(WaitlistEntry.objects.filter(product__in=self.world.products).order_by("id"))
        holds: dict[int, list[Reservation]] = {}
        for r in Reservation.objects.filter(
            waitlist_entry__isnull=False, status=ReservationStatus.PENDING
        ):
            holds.setdefault(r.waitlist_entry_id, []).append(r)
        first_waiting: dict[UUID, int] = {}
        for entry in entries:
            if entry.status == WaitlistStatus.WAITING:
                first_waiting.setdefault(entry.product_id, entry.id)
        for entry in entries:
            before = self.entries.get(entry.id)
            if before is not None:
                assert entry.status in NEXT[before.status], (entry.id, before, entry.status)
                if before.offered_at is not None:
                    assert entry.offered_at == before.offered_at  # never offered twice
            if entry.offered_at is not None and (before is None or before.offered_at is None):
                # Offered in this step: nobody who joined before it is still waiting.
                assert entry.id < first_waiting.get(entry.product_id, entry.id + 1), entry.id
                self.seen["offered"] += 1
            if entry.status == WaitlistStatus.CANCELLED and (
                before is None or before.status != WaitlistStatus.CANCELLED
            ):
                # Cancelled by leaving or giving the offer up, or passed over when its
                # turn came while its cart could not take an offer (in checkout, or
                # abandoning it: the holds go back before the cart changes state).
                assert (
                    entry.id in self.may_cancel
                    or carts[entry.cart_id] not in OPEN_FOR_OFFERS
                    or self.carts_before.get(entry.cart_id) not in OPEN_FOR_OFFERS
                ), entry.id
                self.seen["cancelled, cart closed"] += entry.id not in self.may_cancel
            if entry.status == WaitlistStatus.OFFERED:
                # The offer holds the entry's whole quantity, for its cart.
                mine = holds.get(entry.id, [])
                assert sum(r.quantity for r in mine) == entry.quantity, entry.id
                assert {(r.cart_id, r.product_id) for r in mine} == {
                    (entry.cart_id, entry.product_id)
                }
        self.entries = {e.id: Seen(e.product_id, e.status, e.offered_at) for e in entries}
        self.may_cancel = set()
        self.carts_before = carts

        # check_inventory's waitlist checks find nothing.
        findings = waitlist_findings()
        if self.pass_due:
            findings = [f for f in findings if f.kind != Finding.MISSED_OFFER]
        assert findings == []


@pytest.mark.django_db
@pytest.mark.parametrize("warehouses", [1, 2])
def test_random_waitlist_walks_keep_the_invariants(warehouses):
    stores = [default_warehouse()] + [
        WarehouseFactory(code=f"wl{n}", priority=n) for n in range(1, warehouses)
    ]
    products = [ProductFactory(sku=f"HOT-{n}") for n in range(2)]
    for warehouse in stores:
        for product in products:
            StockLevel.objects.create(product=product, warehouse=warehouse, on_hand=ON_HAND)
    WaitlistMachine.world = World(
        products=products,
        warehouses=stores,
        carts=[CartFactory().id for _ in range(CARTS)],
        start=timezone.now().replace(microsecond=0),
    )
    WaitlistMachine.seen = Counter()

    run_state_machine_as_test(
        WaitlistMachine,
        settings=settings(
            max_examples=30,
            stateful_step_count=30,
            deadline=None,
            # The same walks on every run (see test_stateful.py).
            derandomize=True,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )

    reached = {outcome for outcome, count in WaitlistMachine.seen.items() if count}
    assert reached >= {
        "hold",
        "hold refused",
        "join",
        "join refused: stock available",
        "join changed quantity",
        "leave waiting",
        "leave offered",
        "offered",
        "offer lapsed (sweeper)",
        "offer lapsed (expire)",
        "offer lapsed (reclaim)",
        "claim: offer claimed",
        "abandon",
    }, WaitlistMachine.seen
