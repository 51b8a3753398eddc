"""Random sequences of reservation operations, checked against a model after every step.

Hypothesis drives reserve / extend / confirm / release / expire / expire_due / restock /
set_stock, warehouse deactivation and reactivation, priority changes and jumps of a frozen
clock, in any order, over 3 products in 3 warehouses (one pair starts without a stock
row). A reserve mixes lines pinned to a warehouse and lines that any active warehouse may
serve, allocated by a strategy drawn for it (``priority``, ``most_available``,
``fewest_splits``); the model allocates them by the rules of SPEC §14 on its own. After
every step the database must match the model:
each reservation's status, expiry, extensions and order; each stock row's ``on_hand``
(initial + restocked - confirmed + set_stock changes) and ``reserved`` (== the pending
quantities); ``0 <= reserved <= on_hand``; and the event log (one row per change).

Each example runs inside a savepoint that is rolled back at its end, so examples start
from the same catalog without re-creating it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

import pytest
import time_machine
from django.db import transaction
from django.db.models import Count, Q, Sum
from django.db.models.functions import Coalesce
from django.test import override_settings
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

from inventory import catalog, services
from inventory.errors import (
    ExtensionLimitReached,
    InsufficientStock,
    InvalidExpiry,
    ReservationNotActive,
    ReservationNotFound,
    StockBelowReserved,
)
from inventory.models import Product, Reservation, ReservationEvent, StockLevel, Warehouse
from inventory.services import ReservationLine
from tests.support.factories import OrderFactory, ProductFactory, WarehouseFactory

MAX_TTL = 1800
INITIAL_ON_HAND = 4
MISSING_ID = 10**12
# Seconds that pass before a shopper's reserve or a set_stock (clock jumps also have a rule
# of their own; this makes reclaiming lapsed stock on demand a frequent case).
LATER = st.sampled_from([0, 0, 30, 61, 301])

Key = tuple[UUID, int]
Demand = tuple[UUID, int | None]  # a pinned pair, or (product, None): any active warehouse
STRATEGIES = ("priority", "most_available", "fewest_splits")


@dataclass
class Expected:
    key: Key
    quantity: int
    status: str
    expires_at: datetime
    extension_count: int = 0
    order_id: UUID | None = None
    events: int = 1


@dataclass(frozen=True)
class World:
    keys: list[Key]
    initial: dict[Key, int]  # 0 for the pair without a row
    missing: Key
    orders: list[UUID]
    products: dict[UUID, Product]
    warehouses: dict[int, Warehouse]
    start: datetime

    @property
    def demands(self) -> list[Demand]:
        """What a line may ask for: every pinned pair, then every product unpinned."""
        return [*self.keys, *[(p, None) for p in self.products]]


class ReservationMachine(RuleBasedStateMachine):
    world: World  # set by the test before running
    seen: Counter[str]  # outcomes reached, over all the examples of a run

    def __init__(self) -> None:
        super().__init__()
        self.atomic = transaction.atomic()
        self.atomic.__enter__()
        self.traveller = time_machine.travel(self.world.start, tick=False)
        self.clock = self.traveller.start()
        self.now = timezone.now()
        self.has_row = {key: key != self.world.missing for key in self.world.keys}
        self.on_hand = dict(self.world.initial)
        self.restocked: Counter[Key] = Counter()
        self.confirmed: Counter[Key] = Counter()
        self.set_delta: Counter[Key] = Counter()
        self.reservations: dict[int, Expected] = {}
        self.active = {w: True for w in self.world.warehouses}
        self.priority = {w: wh.priority for w, wh in self.world.warehouses.items()}

    def teardown(self) -> None:
        self.traveller.stop()
        transaction.set_rollback(True)
        self.atomic.__exit__(None, None, None)

    # --- model helpers ------------------------------------------------------------------

    def reserved(self, key: Key) -> int:
        return sum(
            r.quantity for r in self.reservations.values() if r.key == key and r.status == "pending"
        )

    def lapsed(self, keys: set[Key]) -> list[int]:
        return [
            rid
            for rid, r in self.reservations.items()
            if r.key in keys and r.status == "pending" and r.expires_at <= self.now
        ]

    def expire_model(self, ids: list[int]) -> None:
        for rid in ids:
            self.reservations[rid].status = "expired"
            self.reservations[rid].events += 1

    def draw_ids(self, data: st.DataObject, *, mostly: tuple[str, ...]) -> list[int]:
        """Up to 3 reservation ids, three times in four among those in a status of
        ``mostly`` (so the operation usually does something), else among all; one time in
        ten an unknown id is added."""
        preferred = sorted(
            rid
            for rid, r in self.reservations.items()
            if r.status in mostly and ("lapsed" not in mostly or r.expires_at <= self.now)
        )
        pool = (
            preferred if preferred and data.draw(st.integers(0, 3)) else sorted(self.reservations)
        )
        ids = data.draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3, unique=True))
        if data.draw(st.integers(0, 9)) == 0:
            ids.append(MISSING_ID)
        return ids

    def refuses_unknown(self, ids: list[int], call) -> bool:
        """Runs ``call``; if an id is unknown it must raise ReservationNotFound."""
        if MISSING_ID not in ids:
            return False
        with pytest.raises(ReservationNotFound) as error:
            call()
        assert error.value.details == {"reservation_ids": [MISSING_ID]}
        self.seen["unknown id refused"] += 1
        return True

    # --- rules -----------------------------------------------------------------------------

    @initialize()
    def some_stock_is_held(self) -> None:
        # Every walk starts with stock held: some lapses within a minute, some lasts.
        self._reserve([(0, 2), (3, 1)], 60)
        self._reserve([(0, 1), (1, 3)], MAX_TTL)

    @rule(
        picks=st.lists(st.tuples(st.integers(0, 11), st.integers(1, 5)), min_size=1, max_size=3),
        ttl=st.sampled_from([60, 300, MAX_TTL]),
        later=LATER,
        strategy=st.sampled_from(STRATEGIES),
    )
    def reserve(self, picks: list[tuple[int, int]], ttl: int, later: int, strategy: str) -> None:
        self.advance(later)
        self._reserve(picks, ttl, strategy)

    def _order(self, key: Key) -> tuple[int, bool, str]:
        warehouse = self.world.warehouses[key[1]]
        return (self.priority[key[1]], not warehouse.is_default, warehouse.code)

    def _allocate(
        self, wanted: dict[Demand, int], strategy: str, reclaimed: set[int]
    ) -> tuple[list[tuple[Key, int]], dict[Demand, int]]:
        """The model of SPEC §14: pinned lines first, each from its own row of an active
        warehouse; then unpinned ones over the active rows of their product in the order
        of ``strategy``. Returns the quantities per row (merged, in the order of the lines
        and then of allocation) and each short demand's total available."""
        free = {
            key: self.on_hand[key]
            - self.reserved(key)
            + sum(
                self.reservations[rid].quantity
                for rid in reclaimed
                if self.reservations[rid].key == key
            )
            for key in self.world.keys
            if self.has_row[key]
        }
        plan: dict[Demand, list[tuple[Key, int]]] = {}
        short: dict[Demand, int] = {}
        for demand, quantity in wanted.items():
            if demand[1] is None:
                continue
            can = free[demand] if demand in free and self.active[demand[1]] else 0
            if can < quantity:
                short[demand] = max(can, 0)
                continue
            free[demand] -= quantity
            plan[demand] = [(demand, quantity)]
        for demand, quantity in wanted.items():
            if demand[1] is not None:
                continue
            rows = [k for k in free if k[0] == demand[0] and self.active[k[1]]]
            total = sum(max(free[k], 0) for k in rows)
            if total < quantity:
                short[demand] = total
                continue
            by_priority = sorted(rows, key=self._order)
            if strategy == "most_available":
                order = sorted(rows, key=lambda k: (-free[k], *self._order(k)))
            elif strategy == "fewest_splits":
                whole = [k for k in by_priority if free[k] >= quantity]
                order = whole[:1] or by_priority
            else:
                order = by_priority
            need = quantity
            plan[demand] = []
            for k in order:
                take = min(free[k], need)
                if take <= 0:
                    continue
                free[k] -= take
                need -= take
                plan[demand].append((k, take))
                if need == 0:
                    break
        # One reservation per row, in the order of the lines (a line's own in the order
        # its rows were chosen).
        taken: dict[Key, int] = {}
        for demand in wanted:
            for k, quantity in plan.get(demand, []):
                taken[k] = taken.get(k, 0) + quantity
        return list(taken.items()), short

    def _reserve(self, picks: list[tuple[int, int]], ttl: int, strategy: str = "priority") -> None:
        wanted: dict[Demand, int] = defaultdict(int)
        for index, quantity in picks:
            wanted[self.world.demands[index]] += quantity
        loose = {d[0] for d in wanted if d[1] is None}
        locked = {d for d in wanted if d[1] is not None and self.has_row[d]} | {
            k for k in self.world.keys if k[0] in loose and self.has_row[k] and self.active[k[1]]
        }

        reclaim: set[int] = set()
        allocated, short = self._allocate(wanted, strategy, reclaim)
        if short:
            reclaim = set(self.lapsed(locked))
            allocated, short = self._allocate(wanted, strategy, reclaim)
        lines = [ReservationLine(d[0], d[1], q) for d, q in wanted.items()]

        if short:
            with pytest.raises(InsufficientStock) as error:
                services.reserve(lines=lines, ttl_seconds=ttl, strategy=strategy)
            assert error.value.items == [
                {
                    "product_id": str(demand[0]),
                    "sku": self.world.products[demand[0]].sku,
                    "warehouse": (
                        self.world.warehouses[demand[1]].code if demand[1] is not None else None
                    ),
                    "available": short[demand],
                    "requested": wanted[demand],
                }
                for demand in wanted
                if demand in short
            ]
            self.seen["reserve refused"] += 1
            self.seen["reserve unpinned refused"] += any(d[1] is None for d in short)
            return

        made = services.reserve(lines=lines, ttl_seconds=ttl, strategy=strategy)
        self.expire_model(sorted(reclaim))
        self.seen["reserve"] += 1
        self.seen["reserve reclaimed"] += bool(reclaim)
        self.seen["reserve split"] += any(
            sum(1 for r in made if r.product_id == d[0]) > 1 for d in wanted if d[1] is None
        )
        assert [(r.product_id, r.warehouse_id, r.quantity) for r in made] == [
            (k[0], k[1], q) for k, q in allocated
        ]
        for r in made:
            assert r.id not in self.reservations
            self.reservations[r.id] = Expected(
                key=(r.product_id, r.warehouse_id),
                quantity=r.quantity,
                status="pending",
                expires_at=self.now + timedelta(seconds=ttl),
            )

    @precondition(lambda self: self.reservations)
    @rule(
        data=st.data(),
        offset=st.sampled_from([-10, 0, 1, 120, 600, MAX_TTL, MAX_TTL + 1]),
        max_extensions=st.sampled_from([None, 1, 2]),
    )
    def extend(self, data: st.DataObject, offset: int, max_extensions: int | None) -> None:
        ids = self.draw_ids(data, mostly=("pending",))
        expires_at = self.now + timedelta(seconds=offset)

        def call():
            return services.extend(
                reservation_ids=ids, expires_at=expires_at, max_extensions=max_extensions
            )

        if not 0 < offset <= MAX_TTL:
            with pytest.raises(InvalidExpiry):
                call()
            self.seen["extend invalid expiry"] += 1
            return
        if self.refuses_unknown(ids, call):
            return
        inactive = sorted(
            i
            for i in ids
            if self.reservations[i].status != "pending"
            or self.reservations[i].expires_at <= self.now
        )
        if inactive:
            with pytest.raises(ReservationNotActive) as error:
                call()
            assert error.value.details == {"reservation_ids": inactive}
            self.seen["extend not active"] += 1
            return
        if max_extensions is not None and any(
            self.reservations[i].extension_count >= max_extensions for i in ids
        ):
            with pytest.raises(ExtensionLimitReached):
                call()
            self.seen["extend limit reached"] += 1
            return
        call()
        self.seen["extend"] += 1
        for i in ids:
            self.reservations[i].expires_at = expires_at
            self.reservations[i].extension_count += 1
            self.reservations[i].events += 1

    @precondition(lambda self: self.reservations)
    @rule(data=st.data(), order=st.integers(0, 1))
    def confirm(self, data: st.DataObject, order: int) -> None:
        ids = self.draw_ids(data, mostly=("pending",))
        order_id = self.world.orders[order]

        def call():
            return services.confirm(reservation_ids=ids, order_id=order_id)

        if self.refuses_unknown(ids, call):
            return
        refused = sorted(
            i
            for i in ids
            if not (
                self.reservations[i].status == "pending"
                or (
                    self.reservations[i].status == "confirmed"
                    and self.reservations[i].order_id == order_id
                )
            )
        )
        if refused:
            with pytest.raises(ReservationNotActive) as error:
                call()
            assert error.value.details == {"reservation_ids": refused}
            self.seen["confirm refused"] += 1
            return
        call()
        self.seen["confirm"] += 1
        for i in ids:
            r = self.reservations[i]
            if r.status == "pending":
                r.status, r.order_id = "confirmed", order_id
                r.events += 1
                self.on_hand[r.key] -= r.quantity
                self.confirmed[r.key] += r.quantity

    @precondition(lambda self: self.reservations)
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        ids = self.draw_ids(data, mostly=("pending",))

        def call():
            return services.release(reservation_ids=ids, reason="checkout_cancelled")

        if self.refuses_unknown(ids, call):
            return
        confirmed = sorted(i for i in ids if self.reservations[i].status == "confirmed")
        if confirmed:
            with pytest.raises(ReservationNotActive) as error:
                call()
            assert error.value.details == {"reservation_ids": confirmed}
            self.seen["release refused"] += 1
            return
        call()
        self.seen["release"] += 1
        for i in ids:
            r = self.reservations[i]
            if r.status == "pending":
                r.status = "released"
                r.events += 1

    @precondition(lambda self: self.reservations)
    @rule(data=st.data())
    def expire(self, data: st.DataObject) -> None:
        ids = self.draw_ids(data, mostly=("pending", "lapsed"))

        def call():
            return services.expire(reservation_ids=ids)

        if self.refuses_unknown(ids, call):
            return
        call()
        lapsed = [
            i
            for i in ids
            if self.reservations[i].status == "pending"
            and self.reservations[i].expires_at <= self.now
        ]
        self.expire_model(lapsed)
        self.seen["expire"] += bool(lapsed)

    @rule(batch_size=st.integers(1, 4))
    def expire_due(self, batch_size: int) -> None:
        due = self.lapsed(set(self.world.keys))
        done = services.expire_due(batch_size=batch_size)
        assert done <= batch_size
        assert (done > 0) == bool(due)
        now_expired = set(
            Reservation.objects.filter(id__in=due, status="expired").values_list("id", flat=True)
        )
        assert len(now_expired) == done
        self.expire_model(sorted(now_expired))
        self.seen["expire_due"] += bool(done)

    @precondition(lambda self: self.reservations)
    @rule(data=st.data())
    def restock(self, data: st.DataObject) -> None:
        ids = self.draw_ids(data, mostly=("confirmed",))

        def call():
            return services.restock(reservation_ids=ids, reason="order_cancelled")

        if self.refuses_unknown(ids, call):
            return
        call()
        for i in ids:
            r = self.reservations[i]
            if r.status == "confirmed":
                self.on_hand[r.key] += r.quantity
                self.restocked[r.key] += r.quantity
                self.seen["restock"] += 1
            if r.status in ("confirmed", "pending"):
                r.status = "released"
                r.events += 1

    @rule(index=st.integers(0, 8), on_hand=st.integers(0, 8), later=LATER)
    def set_stock(self, index: int, on_hand: int, later: int) -> None:
        self.advance(later)
        key = self.world.keys[index]
        reclaim = self.lapsed({key}) if on_hand < self.reserved(key) else []
        freed = sum(self.reservations[i].quantity for i in reclaim)

        def call():
            return services.set_stock(
                product=self.world.products[key[0]],
                warehouse=self.world.warehouses[key[1]],
                on_hand=on_hand,
            )

        if on_hand < self.reserved(key) - freed:
            with pytest.raises(StockBelowReserved) as error:
                call()
            assert error.value.details["reserved"] == self.reserved(key) - freed
            self.seen["set_stock refused"] += 1
            return
        row = call()
        self.expire_model(reclaim)
        self.seen["set_stock"] += 1
        self.seen["set_stock reclaimed"] += bool(reclaim)
        self.set_delta[key] += on_hand - self.on_hand[key]
        self.on_hand[key] = on_hand
        self.has_row[key] = True
        assert (row.on_hand, row.reserved) == (on_hand, self.reserved(key))

    @rule(index=st.integers(0, 2), active=st.booleans())
    def set_active(self, index: int, active: bool) -> None:
        warehouse_id = sorted(self.world.warehouses)[index]
        catalog.warehouse_update(code=self.world.warehouses[warehouse_id].code, is_active=active)
        self.seen["deactivate"] += self.active[warehouse_id] and not active
        self.active[warehouse_id] = active

    @rule(index=st.integers(0, 2), priority=st.integers(0, 2))
    def set_priority(self, index: int, priority: int) -> None:
        warehouse_id = sorted(self.world.warehouses)[index]
        catalog.warehouse_update(code=self.world.warehouses[warehouse_id].code, priority=priority)
        self.priority[warehouse_id] = priority

    @rule(seconds=st.sampled_from([1, 30, 59, 60, 61, 240, 300, 900, MAX_TTL + 1]))
    def time_passes(self, seconds: int) -> None:
        self.advance(seconds)

    def advance(self, seconds: int) -> None:
        self.clock.shift(timedelta(seconds=seconds))
        self.now += timedelta(seconds=seconds)
        assert timezone.now() == self.now

    # --- what must hold after every step -----------------------------------------------

    @invariant()
    def stock_rows_match_their_reservations_and_the_model(self) -> None:
        rows = {
            (product_id, warehouse_id): (on_hand, reserved, pending)
            for product_id, warehouse_id, on_hand, reserved, pending in StockLevel.objects.filter(
                product_id__in={k[0] for k in self.world.keys}
            )
            .annotate(
                pending=Coalesce(
                    Sum("reservations__quantity", filter=Q(reservations__status="pending")), 0
                )
            )
            .values_list("product_id", "warehouse_id", "on_hand", "reserved", "pending")
        }
        assert set(rows) == {key for key in self.world.keys if self.has_row[key]}
        for key, (on_hand, reserved, pending) in rows.items():
            assert reserved == pending, key
            assert 0 <= reserved <= on_hand, key
            assert on_hand == (
                self.world.initial[key]
                + self.restocked[key]
                - self.confirmed[key]
                + self.set_delta[key]
            )
            assert (on_hand, reserved) == (self.on_hand[key], self.reserved(key)), key

    @invariant()
    def reservations_match_the_model(self) -> None:
        stored = {
            r["id"]: r
            for r in Reservation.objects.filter(product_id__in={k[0] for k in self.world.keys})
            .annotate(event_count=Count("events"))
            .values(
                "id",
                "product_id",
                "warehouse_id",
                "quantity",
                "status",
                "expires_at",
                "extension_count",
                "order_id",
                "event_count",
            )
        }
        assert set(stored) == set(self.reservations)
        for rid, expected in self.reservations.items():
            row = stored[rid]
            assert (
                (row["product_id"], row["warehouse_id"]),
                row["quantity"],
                row["status"],
                row["expires_at"],
                row["extension_count"],
                row["order_id"],
                row["event_count"],
            ) == (
                expected.key,
                expected.quantity,
                expected.status,
                expected.expires_at,
                expected.extension_count,
                expected.order_id,
                expected.events,
            ), rid


@pytest.mark.django_db
def test_random_operation_sequences_keep_the_stock_invariants():
    warehouses = [WarehouseFactory(priority=n) for n in range(3)]
    products = [ProductFactory() for _ in range(3)]
    keys = [(p.id, w.id) for p in products for w in warehouses]
    missing = keys[-1]
    for key in keys[:-1]:
        StockLevel.objects.create(
            product_id=key[0], warehouse_id=key[1], on_hand=INITIAL_ON_HAND, reserved=0
        )
    ReservationMachine.world = World(
        keys=keys,
        initial={key: 0 if key == missing else INITIAL_ON_HAND for key in keys},
        missing=missing,
        orders=[OrderFactory().id, OrderFactory().id],
        products={p.id: p for p in products},
        warehouses={w.id: w for w in warehouses},
        start=timezone.now().replace(microsecond=0),
    )
    assert not ReservationEvent.objects.exists()
    ReservationMachine.seen = Counter()

    with override_settings(RESERVATION_MAX_TTL_SECONDS=MAX_TTL):
        run_state_machine_as_test(
            ReservationMachine,
            settings=settings(
                max_examples=50,
                stateful_step_count=40,
                deadline=None,
                # The same walk on every run, so CI is repeatable and the coverage check
                # below cannot flake; drop it locally to explore new walks.
                derandomize=True,
                database=None,
                suppress_health_check=[HealthCheck.too_slow],
            ),
        )

    # The walk must not have degenerated (Hypothesis enables a random subset of rules in
    # each example): these outcomes come up in every run. Rarer ones (extension limit,
    # reclaim on demand, ...) usually do too, and have their own tests in test_services.
    assert {outcome for outcome, count in ReservationMachine.seen.items() if count} >= {
        "reserve",
        "reserve refused",
        "reserve split",
        "reserve unpinned refused",
        "deactivate",
        "confirm",
        "confirm refused",
        "release",
        "release refused",
        "extend not active",
        "extend invalid expiry",
        "set_stock",
        "unknown id refused",
    }, ReservationMachine.seen
