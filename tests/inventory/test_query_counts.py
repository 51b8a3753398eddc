"""What each reservation operation costs in SQL statements, pinned: the same for a cart of
1, 3 or 50 lines. The tests run inside a transaction, as a checkout calls these
functions: reserve, set_stock and expire_due take a savepoint there, which adds two
statements (SAVEPOINT and RELEASE SAVEPOINT) to their counts below, three when it rolls
back (ROLLBACK TO SAVEPOINT as well); extend, confirm, release, expire and restock take
none."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.db import transaction
from django.utils import timezone

from inventory import services
from inventory.errors import (
    InsufficientStock,
    ReservationNotActive,
    ReservationNotFound,
    StockBelowReserved,
)
from inventory.models import Reservation, StockLevel
from inventory.services import ReservationLine
from tests.support.factories import OrderFactory, StockLevelFactory, WarehouseFactory

pytestmark = pytest.mark.django_db

SIZES = [1, 3, 50]


@pytest.fixture
def clock():
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        yield traveller


def stocks(count: int, on_hand: int = 10) -> list[StockLevel]:
    return [StockLevelFactory(on_hand=on_hand) for _ in range(count)]


def lines(rows: list[StockLevel], quantity: int = 1) -> list[ReservationLine]:
    return [ReservationLine(s.product_id, s.warehouse_id, quantity) for s in rows]


def reserved(rows: list[StockLevel], ttl: int = 300) -> list[int]:
    return [r.id for r in services.reserve(lines=lines(rows), ttl_seconds=ttl)]


@pytest.mark.parametrize("size", SIZES)
def test_reserve_costs_two_statements_whatever_the_number_of_lines(django_assert_num_queries, size):
    rows = stocks(size)
    with django_assert_num_queries(2 + 2):  # lock stock rows; write stock+reservations+events
        result = services.reserve(lines=lines(rows), ttl_seconds=300)
    assert len(result) == size


@pytest.mark.parametrize("size", SIZES)
def test_reserve_across_warehouses_costs_the_same(django_assert_num_queries, size):
    warehouse = WarehouseFactory()
    rows = stocks(size) + [
        StockLevelFactory(product=s.product, warehouse=warehouse, on_hand=10) for s in stocks(size)
    ]
    with django_assert_num_queries(2 + 2):
        services.reserve(lines=lines(rows), ttl_seconds=300)


@pytest.mark.parametrize("size", SIZES)
def test_reserve_that_reclaims_lapsed_stock_costs_one_more(django_assert_num_queries, clock, size):
    rows = stocks(size, on_hand=1)
    reserved(rows, ttl=60)
    clock.shift(61)
    with django_assert_num_queries(2 + 3):  # lock; reclaim; write
        services.reserve(lines=lines(rows), ttl_seconds=300)


@pytest.mark.parametrize("size", SIZES)
def test_refused_reserve_costs_the_same_whatever_the_number_of_short_lines(
    django_assert_num_queries, size
):
    rows = stocks(size, on_hand=0)
    with django_assert_num_queries(3 + 3), pytest.raises(InsufficientStock) as error:
        # lock (warehouse codes come with the rows); reclaim; skus
        services.reserve(lines=lines(rows), ttl_seconds=300)
    assert len(error.value.items) == size


@pytest.mark.parametrize("size", SIZES)
def test_extend_costs_two_statements(django_assert_num_queries, size):
    ids = reserved(stocks(size))
    with django_assert_num_queries(2):  # lock stock rows, then reservations; write
        services.extend(reservation_ids=ids, expires_at=timezone.now() + timedelta(seconds=600))


@pytest.mark.parametrize("size", SIZES)
def test_confirm_costs_two_statements_and_a_repeat_one(django_assert_num_queries, size):
    ids = reserved(stocks(size))
    order_id = OrderFactory().id
    with django_assert_num_queries(2):
        services.confirm(reservation_ids=ids, order_id=order_id)
    with django_assert_num_queries(1):  # the locks only: nothing left to write
        services.confirm(reservation_ids=ids, order_id=order_id)


@pytest.mark.parametrize("size", SIZES)
def test_release_costs_two_statements_and_a_repeat_one(django_assert_num_queries, size):
    ids = reserved(stocks(size))
    with django_assert_num_queries(2):
        services.release(reservation_ids=ids)
    with django_assert_num_queries(1):
        services.release(reservation_ids=ids)


@pytest.mark.parametrize("size", SIZES)
def test_expire_costs_two_statements(django_assert_num_queries, clock, size):
    ids = reserved(stocks(size), ttl=60)
    clock.shift(60)
    with django_assert_num_queries(2):
        services.expire(reservation_ids=ids)


@pytest.mark.parametrize("size", SIZES)
def test_restock_of_confirmed_and_pending_costs_two_statements(django_assert_num_queries, size):
    confirmed = reserved(stocks(size))
    services.confirm(reservation_ids=confirmed, order_id=OrderFactory().id)
    pending = reserved(stocks(size))
    with django_assert_num_queries(2):
        services.restock(reservation_ids=confirmed + pending)
    assert set(Reservation.objects.filter(id__in=confirmed + pending).values_list("status")) == {
        ("released",)
    }


@pytest.mark.parametrize("size", SIZES)
def test_expire_due_costs_two_statements_per_batch(django_assert_num_queries, clock, size):
    reserved(stocks(size), ttl=60)
    clock.shift(60)
    with django_assert_num_queries(2 + 2):  # lock due stock rows; expire+give back+log
        assert services.expire_due(batch_size=100) == size


def test_set_stock_costs_three_statements(django_assert_num_queries):
    stock = StockLevelFactory(on_hand=10)
    with django_assert_num_queries(2 + 3):  # create if missing; lock; update
        services.set_stock(product=stock.product, warehouse=stock.warehouse, on_hand=5)


def test_set_stock_that_reclaims_costs_one_more(django_assert_num_queries, clock):
    stock = StockLevelFactory(on_hand=10)
    reserved([stock], ttl=60)
    clock.shift(60)
    with django_assert_num_queries(2 + 4):
        services.set_stock(product=stock.product, warehouse=stock.warehouse, on_hand=0)


def test_refused_set_stock_costs_the_same(django_assert_num_queries):
    stock = StockLevelFactory(on_hand=10)
    reserved([stock])
    with django_assert_num_queries(3 + 3), pytest.raises(StockBelowReserved):
        services.set_stock(product=stock.product, warehouse=stock.warehouse, on_hand=0)


def test_a_refusal_leaves_the_callers_transaction_usable():
    """Without a savepoint of their own, extend, confirm and release refuse after their
    block has closed: the caller catches the refusal and goes on, as a checkout does."""
    held = reserved(stocks(1))
    gone = reserved(stocks(1))
    services.release(reservation_ids=gone)
    order_id = OrderFactory().id
    services.confirm(reservation_ids=held, order_id=order_id)

    with transaction.atomic():
        with pytest.raises(ReservationNotActive):
            services.extend(reservation_ids=gone, expires_at=timezone.now() + timedelta(seconds=60))
        with pytest.raises(ReservationNotActive):
            services.confirm(reservation_ids=gone, order_id=order_id)
        with pytest.raises(ReservationNotActive):
            services.release(reservation_ids=held)
        with pytest.raises(ReservationNotFound):
            services.release(reservation_ids=[max(held + gone) + 1])
        # and the transaction goes on (a doomed one would refuse every further query)
        fresh = reserved(stocks(1), ttl=60)
        services.release(reservation_ids=fresh)
    assert Reservation.objects.get(id=fresh[0]).status == "released"
