"""Core behaviour of the reservation service (more in the other test modules)."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from inventory import services
from inventory.errors import InsufficientStock, ReservationNotActive
from inventory.models import ReservationEvent, ReservationStatus, StockLevel
from inventory.services import ReservationLine
from tests.support.factories import OrderFactory, StockLevelFactory

pytestmark = pytest.mark.django_db


def line(stock: StockLevel, quantity: int) -> ReservationLine:
    return ReservationLine(stock.product_id, stock.warehouse_id, quantity)


def test_reserve_confirm_moves_stock_out_of_both_counters():
    stock = StockLevelFactory(on_hand=10)
    [r] = services.reserve(lines=[line(stock, 3)], ttl_seconds=300)
    stock.refresh_from_db()
    assert (stock.on_hand, stock.reserved) == (10, 3)
    order_id = OrderFactory().id
    services.confirm(reservation_ids=[r.id], order_id=order_id)
    stock.refresh_from_db()
    assert (stock.on_hand, stock.reserved) == (7, 0)
    # Same order again: no-op.
    services.confirm(reservation_ids=[r.id], order_id=order_id)
    stock.refresh_from_db()
    assert (stock.on_hand, stock.reserved) == (7, 0)
    with pytest.raises(ReservationNotActive):
        services.confirm(reservation_ids=[r.id], order_id=OrderFactory().id)


def test_same_product_lines_are_summed_before_checking():
    stock = StockLevelFactory(on_hand=5)
    with pytest.raises(InsufficientStock) as err:
        services.reserve(lines=[line(stock, 3), line(stock, 3)], ttl_seconds=300)
    assert err.value.items == [
        {
            "product_id": str(stock.product_id),
            "sku": stock.product.sku,
            "warehouse": "default",
            "available": 5,
            "requested": 6,
        }
    ]
    stock.refresh_from_db()
    assert stock.reserved == 0


def test_lapsed_reservation_is_reclaimed_when_stock_is_short():
    stock = StockLevelFactory(on_hand=2)
    [old] = services.reserve(lines=[line(stock, 2)], ttl_seconds=60)
    with time_machine.travel(timezone.now() + timedelta(seconds=61)):
        [new] = services.reserve(lines=[line(stock, 2)], ttl_seconds=60)
    old.refresh_from_db()
    stock.refresh_from_db()
    assert old.status == ReservationStatus.EXPIRED
    assert new.status == ReservationStatus.PENDING
    assert stock.reserved == 2


def test_expire_due_sweeps_lapsed_and_returns_stock():
    stocks = [StockLevelFactory(on_hand=10) for _ in range(3)]
    for s in stocks:
        services.reserve(lines=[line(s, 4)], ttl_seconds=60)
    services.reserve(lines=[line(stocks[0], 1)], ttl_seconds=600)
    with time_machine.travel(timezone.now() + timedelta(seconds=120)):
        assert services.expire_due(batch_size=2) == 2
        assert services.expire_due(batch_size=2) == 1
        assert services.expire_due(batch_size=2) == 0
    reserved = sorted(
        StockLevel.objects.filter(id__in=[s.id for s in stocks]).values_list("reserved", flat=True)
    )
    assert reserved == [0, 0, 1]
    assert ReservationEvent.objects.filter(kind="expired").count() == 3


def test_release_is_idempotent():
    stock = StockLevelFactory(on_hand=3)
    [r] = services.reserve(lines=[line(stock, 3)], ttl_seconds=300)
    services.release(reservation_ids=[r.id], reason="api")
    services.release(reservation_ids=[r.id], reason="api")
    stock.refresh_from_db()
    assert stock.reserved == 0
    assert ReservationEvent.objects.filter(reservation=r, kind="released").count() == 1
