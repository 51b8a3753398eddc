"""The reservation service, one behaviour at a time: every function, every error, the
event log each operation writes and the metrics that move only when it commits."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
import time_machine
from django.db import transaction
from django.utils import timezone
from prometheus_client import REGISTRY

from core.logging import request_id_var
from inventory import services
from inventory.errors import (
    ExtensionLimitReached,
    InsufficientStock,
    InvalidExpiry,
    ReservationNotActive,
    ReservationNotFound,
    StockBelowReserved,
)
from inventory.models import (
    Reservation,
    ReservationEvent,
    ReservationStatus,
    StockLevel,
)
from inventory.services import ReservationLine
from tests.support.factories import (
    CartFactory,
    OrderFactory,
    ProductFactory,
    StockLevelFactory,
    WarehouseFactory,
    default_warehouse,
)
from tests.support.threads import row_locked

pytestmark = pytest.mark.django_db

MAX_TTL = 1800


@pytest.fixture(autouse=True)
def _ttl_bounds(settings):
    settings.RESERVATION_MAX_TTL_SECONDS = MAX_TTL
    settings.LOW_STOCK_THRESHOLD = 5


@pytest.fixture
def clock():
    """Frozen time that a test moves forward explicitly (``clock.shift(seconds)``)."""
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        yield traveller


def line(stock: StockLevel, quantity: int) -> ReservationLine:
    return ReservationLine(stock.product_id, stock.warehouse_id, quantity)


def numbers(stock: StockLevel) -> tuple[int, int]:
    stock.refresh_from_db()
    return stock.on_hand, stock.reserved


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def events(reservation: Reservation) -> list[tuple[str, str, str]]:
    return list(
        ReservationEvent.objects.filter(reservation=reservation)
        .order_by("id")
        .values_list("kind", "actor", "reason")
    )


def reserve_one(stock: StockLevel, quantity: int = 1, ttl: int = 300, **kwargs) -> Reservation:
    [reservation] = services.reserve(lines=[line(stock, quantity)], ttl_seconds=ttl, **kwargs)
    return reservation


# --- reserve --------------------------------------------------------------------------


def test_reserve_holds_every_line_for_the_ttl_and_writes_created_events(clock):
    first, second = StockLevelFactory(on_hand=10), StockLevelFactory(on_hand=4)
    cart = CartFactory()

    reservations = services.reserve(
        lines=[line(first, 3), line(second, 4)], ttl_seconds=300, cart_id=cart.id, actor="shopper"
    )

    assert [(r.stock_level_id, r.quantity) for r in reservations] == [(first.id, 3), (second.id, 4)]
    for r in reservations:
        stored = Reservation.objects.get(id=r.id)
        assert stored.status == ReservationStatus.PENDING
        assert stored.expires_at == timezone.now() + timedelta(seconds=300)
        assert stored.cart_id == cart.id
        assert (stored.product_id, stored.warehouse_id) == (r.product_id, r.warehouse_id)
        assert stored.extension_count == 0
        assert events(stored) == [("created", "shopper", "")]
    assert numbers(first) == (10, 3)
    assert numbers(second) == (4, 4)


def test_reserve_returns_saved_reservations_matching_the_database():
    stock = StockLevelFactory(on_hand=5)
    r = reserve_one(stock, 2)
    stored = Reservation.objects.get(id=r.id)
    for field in Reservation._meta.concrete_fields:
        assert getattr(r, field.attname) == getattr(stored, field.attname), field.name
    assert not r._state.adding


def test_reserve_sums_lines_of_the_same_product_and_warehouse():
    stock = StockLevelFactory(on_hand=6)
    [r] = services.reserve(lines=[line(stock, 2), line(stock, 4)], ttl_seconds=300)
    assert r.quantity == 6
    assert numbers(stock) == (6, 6)


def test_reserve_keeps_the_same_product_in_two_warehouses_apart():
    here = StockLevelFactory(on_hand=2)
    there = StockLevelFactory(product=here.product, warehouse=WarehouseFactory(), on_hand=2)
    reservations = services.reserve(lines=[line(here, 2), line(there, 2)], ttl_seconds=300)
    assert sorted(r.stock_level_id for r in reservations) == sorted([here.id, there.id])
    assert numbers(here) == (2, 2) and numbers(there) == (2, 2)


def test_reserve_of_nothing_does_nothing():
    assert services.reserve(lines=[], ttl_seconds=300) == []
    assert not Reservation.objects.exists()


@pytest.mark.parametrize("quantity", [0, -1])
def test_reserve_refuses_a_quantity_that_is_not_positive(quantity):
    stock = StockLevelFactory(on_hand=5)
    with pytest.raises(ValueError):
        services.reserve(lines=[line(stock, 1), line(stock, quantity)], ttl_seconds=300)
    assert numbers(stock) == (5, 0)


def test_insufficient_stock_lists_every_short_line_and_reserves_nothing():
    enough = StockLevelFactory(on_hand=10, product__sku="OK-1")
    short = StockLevelFactory(on_hand=3, product__sku="SHORT-1")
    held = StockLevelFactory(on_hand=4, product__sku="SHORT-2")
    reserve_one(held, 3)
    no_row = ProductFactory(sku="NOROW-1")

    with pytest.raises(InsufficientStock) as error:
        services.reserve(
            lines=[
                line(enough, 5),
                line(short, 4),
                line(held, 2),
                ReservationLine(no_row.id, default_warehouse().id, 1),
            ],
            ttl_seconds=300,
        )

    assert error.value.code == "INSUFFICIENT_STOCK"
    assert error.value.status_code == 400
    assert error.value.items == [
        {
            "product_id": str(short.product_id),
            "sku": "SHORT-1",
            "warehouse": "default",
            "available": 3,
            "requested": 4,
        },
        {
            "product_id": str(held.product_id),
            "sku": "SHORT-2",
            "warehouse": "default",
            "available": 1,
            "requested": 2,
        },
        {
            "product_id": str(no_row.id),
            "sku": "NOROW-1",
            "warehouse": "default",
            "available": 0,
            "requested": 1,
        },
    ]
    assert error.value.details == {"items": error.value.items}
    assert numbers(enough) == (10, 0)
    assert numbers(short) == (3, 0)
    assert numbers(held) == (4, 3)
    assert Reservation.objects.count() == 1


def test_insufficient_stock_reports_an_unknown_product_without_sku():
    stock = StockLevelFactory(on_hand=1)
    missing = uuid.uuid4()
    with pytest.raises(InsufficientStock) as error:
        services.reserve(
            lines=[line(stock, 1), ReservationLine(missing, stock.warehouse_id, 2)],
            ttl_seconds=300,
        )
    assert error.value.items == [
        {"product_id": str(missing), "sku": None, "warehouse": "default", "available": 0}
        | {"requested": 2}
    ]
    assert numbers(stock) == (1, 0)


@pytest.mark.parametrize("ttl", [0, -5, MAX_TTL + 1])
def test_reserve_refuses_a_ttl_outside_the_allowed_range(ttl):
    stock = StockLevelFactory(on_hand=5)
    with pytest.raises(InvalidExpiry) as error:
        reserve_one(stock, ttl=ttl)
    assert error.value.code == "VALIDATION_ERROR"
    assert list(error.value.details["fields"]) == ["expires_at"]
    assert numbers(stock) == (5, 0)


def test_reserve_accepts_the_longest_allowed_ttl(clock):
    r = reserve_one(StockLevelFactory(on_hand=5), ttl=MAX_TTL)
    assert r.expires_at == timezone.now() + timedelta(seconds=MAX_TTL)


def test_reserve_reclaims_lapsed_reservations_before_declaring_a_shortage(clock):
    stock = StockLevelFactory(on_hand=5)
    lapsed = reserve_one(stock, 3, ttl=60)
    live = reserve_one(stock, 1, ttl=600)
    clock.shift(61)

    fresh = reserve_one(stock, 4, actor="shopper-2")

    lapsed.refresh_from_db()
    live.refresh_from_db()
    assert lapsed.status == ReservationStatus.EXPIRED
    assert lapsed.released_at == timezone.now()
    assert live.status == ReservationStatus.PENDING
    assert fresh.status == ReservationStatus.PENDING
    assert numbers(stock) == (5, 5)
    assert events(lapsed) == [
        ("created", "system", ""),
        ("expired", "shopper-2", "reclaimed on demand"),
    ]


def test_reserve_does_not_reclaim_when_stock_suffices(clock):
    stock = StockLevelFactory(on_hand=5)
    lapsed = reserve_one(stock, 2, ttl=60)
    clock.shift(61)
    reserve_one(stock, 3)
    lapsed.refresh_from_db()
    assert lapsed.status == ReservationStatus.PENDING
    assert numbers(stock) == (5, 5)


def test_reserve_reports_availability_after_reclaiming_and_keeps_lapsed_on_failure(clock):
    stock = StockLevelFactory(on_hand=5)
    lapsed = reserve_one(stock, 2, ttl=60)
    reserve_one(stock, 2, ttl=600)
    clock.shift(61)

    with pytest.raises(InsufficientStock) as error:
        reserve_one(stock, 4)

    assert error.value.items[0]["available"] == 3
    # All or nothing: the reclaim belonged to the refused reservation and rolled back with it.
    lapsed.refresh_from_db()
    assert lapsed.status == ReservationStatus.PENDING
    assert numbers(stock) == (5, 4)


def test_reserve_counts_success_and_ttl_only_when_it_commits(django_capture_on_commit_callbacks):
    stock = StockLevelFactory(on_hand=5)
    success = metric("stock_reservations_total", outcome="success")
    ttl_count = metric("stock_reservations_ttl_seconds_count")

    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        services.reserve(lines=[line(stock, 1)], ttl_seconds=300)
        transaction.set_rollback(True)
    assert metric("stock_reservations_total", outcome="success") == success
    assert metric("stock_reservations_ttl_seconds_count") == ttl_count

    with django_capture_on_commit_callbacks(execute=True):
        reserve_one(stock, 1)
    assert metric("stock_reservations_total", outcome="success") == success + 1
    assert metric("stock_reservations_ttl_seconds_count") == ttl_count + 1


def test_a_refused_reserve_counts_once_as_insufficient_and_per_short_line(
    django_capture_on_commit_callbacks,
):
    first, second = StockLevelFactory(on_hand=1), StockLevelFactory(on_hand=1)
    refused = metric("stock_reservations_total", outcome="insufficient_stock")
    short_lines = metric("stock_out_of_stock_total")
    success = metric("stock_reservations_total", outcome="success")

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(InsufficientStock):
        services.reserve(lines=[line(first, 2), line(second, 2)], ttl_seconds=300)

    assert metric("stock_reservations_total", outcome="insufficient_stock") == refused + 1
    assert metric("stock_out_of_stock_total") == short_lines + 2
    assert metric("stock_reservations_total", outcome="success") == success


def test_events_carry_the_request_id_in_flight():
    token = request_id_var.set("req-123")
    try:
        r = reserve_one(StockLevelFactory(on_hand=1))
    finally:
        request_id_var.reset(token)
    assert ReservationEvent.objects.get(reservation=r).request_id == "req-123"


# --- extend -----------------------------------------------------------------------------


def test_extend_moves_the_expiry_counts_the_extension_and_writes_events(clock):
    stock = StockLevelFactory(on_hand=5)
    reservations = services.reserve(lines=[line(stock, 1)], ttl_seconds=300)
    other = reserve_one(StockLevelFactory(on_hand=5))
    target = timezone.now() + timedelta(seconds=900)

    extended = services.extend(
        reservation_ids=[reservations[0].id, other.id], expires_at=target, actor="shopper"
    )

    assert [r.id for r in extended] == sorted([reservations[0].id, other.id])
    for r in extended:
        assert (r.expires_at, r.extension_count) == (target, 1)
        stored = Reservation.objects.get(id=r.id)
        assert (stored.expires_at, stored.extension_count) == (target, 1)
        assert stored.status == ReservationStatus.PENDING
        assert events(stored)[-1] == ("extended", "shopper", "")
        assert (
            ReservationEvent.objects.get(reservation=stored, kind="extended").expires_at == target
        )
    assert numbers(stock) == (5, 1)


def test_extend_accepts_an_expiry_at_the_far_bound(clock):
    r = reserve_one(StockLevelFactory(on_hand=1))
    target = timezone.now() + timedelta(seconds=MAX_TTL)
    [extended] = services.extend(reservation_ids=[r.id], expires_at=target)
    assert extended.expires_at == target


@pytest.mark.parametrize(
    "offset",
    [timedelta(0), timedelta(seconds=-1), timedelta(seconds=MAX_TTL, microseconds=1)],
    ids=["now", "past", "beyond-max-ttl"],
)
def test_extend_refuses_an_expiry_outside_now_and_the_max_ttl(clock, offset):
    r = reserve_one(StockLevelFactory(on_hand=1))
    with pytest.raises(InvalidExpiry):
        services.extend(reservation_ids=[r.id], expires_at=timezone.now() + offset)
    r.refresh_from_db()
    assert (r.expires_at, r.extension_count) == (timezone.now() + timedelta(seconds=300), 0)
    assert [kind for kind, _, _ in events(r)] == ["created"]


def test_extend_refuses_once_the_limit_is_reached(clock):
    r = reserve_one(StockLevelFactory(on_hand=1))
    fresh = reserve_one(StockLevelFactory(on_hand=1))
    for _ in range(2):
        services.extend(
            reservation_ids=[r.id],
            expires_at=timezone.now() + timedelta(seconds=600),
            max_extensions=2,
        )
    with pytest.raises(ExtensionLimitReached) as error:
        services.extend(
            reservation_ids=[fresh.id, r.id],
            expires_at=timezone.now() + timedelta(seconds=600),
            max_extensions=2,
        )
    assert error.value.code == "EXTENSION_LIMIT_REACHED"
    assert error.value.details == {"max_extensions": 2}
    fresh.refresh_from_db()
    assert fresh.extension_count == 0  # all or nothing
    # Without a limit the service itself does not count extensions.
    services.extend(reservation_ids=[r.id], expires_at=timezone.now() + timedelta(seconds=600))
    r.refresh_from_db()
    assert r.extension_count == 3


@pytest.mark.parametrize("state", ["released", "expired", "confirmed", "lapsed"])
def test_extend_refuses_a_reservation_that_is_not_active(clock, state):
    stock = StockLevelFactory(on_hand=5)
    r = reserve_one(stock, 1, ttl=60)
    live = reserve_one(stock, 1)
    if state == "released":
        services.release(reservation_ids=[r.id])
    elif state == "confirmed":
        services.confirm(reservation_ids=[r.id], order_id=OrderFactory().id)
    else:
        clock.shift(60)
        if state == "expired":
            services.expire(reservation_ids=[r.id])
    before = metric("stock_reservations_extended_total", outcome="not_active")

    with pytest.raises(ReservationNotActive) as error:
        services.extend(
            reservation_ids=[live.id, r.id], expires_at=timezone.now() + timedelta(seconds=300)
        )

    assert error.value.code == "RESERVATION_NOT_ACTIVE"
    assert error.value.details == {"reservation_ids": [r.id]}
    live.refresh_from_db()
    assert live.extension_count == 0
    # Counted per reservation, like successes: neither of the two was extended.
    assert metric("stock_reservations_extended_total", outcome="not_active") == before + 2


def test_extension_metrics_move_only_on_commit(clock, django_capture_on_commit_callbacks):
    r = reserve_one(StockLevelFactory(on_hand=1))
    before = metric("stock_reservations_extended_total", outcome="success")
    target = timezone.now() + timedelta(seconds=600)
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        services.extend(reservation_ids=[r.id], expires_at=target)
        transaction.set_rollback(True)
    assert metric("stock_reservations_extended_total", outcome="success") == before
    with django_capture_on_commit_callbacks(execute=True):
        services.extend(reservation_ids=[r.id], expires_at=target)
    assert metric("stock_reservations_extended_total", outcome="success") == before + 1


# --- confirm ------------------------------------------------------------------------------


def test_confirm_moves_stock_out_of_on_hand_and_reserved():
    first, second = StockLevelFactory(on_hand=10), StockLevelFactory(on_hand=3)
    reservations = services.reserve(lines=[line(first, 4), line(second, 3)], ttl_seconds=300)
    order = OrderFactory()

    confirmed = services.confirm(
        reservation_ids=[r.id for r in reservations], order_id=order.id, actor="checkout"
    )

    assert {r.status for r in confirmed} == {ReservationStatus.CONFIRMED}
    for r in reservations:
        stored = Reservation.objects.get(id=r.id)
        assert (stored.status, stored.order_id) == (ReservationStatus.CONFIRMED, order.id)
        assert stored.confirmed_at is not None
        assert events(stored) == [("created", "system", ""), ("confirmed", "checkout", "")]
    assert numbers(first) == (6, 0)
    assert numbers(second) == (0, 0)


def test_confirm_again_for_the_same_order_changes_nothing():
    stock = StockLevelFactory(on_hand=10)
    r = reserve_one(stock, 3)
    order = OrderFactory()
    services.confirm(reservation_ids=[r.id], order_id=order.id)

    [again] = services.confirm(reservation_ids=[r.id], order_id=order.id)

    assert (again.status, again.order_id) == (ReservationStatus.CONFIRMED, order.id)
    assert numbers(stock) == (7, 0)
    assert [kind for kind, _, _ in events(r)] == ["created", "confirmed"]


def test_confirm_of_a_lapsed_but_still_pending_reservation_is_allowed(clock):
    # Its stock is still held (nobody reclaimed it), so confirming cannot oversell.
    stock = StockLevelFactory(on_hand=2)
    r = reserve_one(stock, 2, ttl=60)
    clock.shift(120)
    [confirmed] = services.confirm(reservation_ids=[r.id], order_id=OrderFactory().id)
    assert confirmed.status == ReservationStatus.CONFIRMED
    assert numbers(stock) == (0, 0)


@pytest.mark.parametrize("state", ["released", "expired", "other-order"])
def test_confirm_refuses_a_reservation_that_is_not_pending(clock, state):
    stock = StockLevelFactory(on_hand=5)
    r = reserve_one(stock, 2, ttl=60)
    pending = reserve_one(stock, 1)
    if state == "released":
        services.release(reservation_ids=[r.id])
    elif state == "expired":
        clock.shift(60)
        services.expire(reservation_ids=[r.id])
    else:
        services.confirm(reservation_ids=[r.id], order_id=OrderFactory().id)
    before = numbers(stock)

    with pytest.raises(ReservationNotActive) as error:
        services.confirm(reservation_ids=[pending.id, r.id], order_id=OrderFactory().id)

    assert error.value.details == {"reservation_ids": [r.id]}
    assert numbers(stock) == before
    pending.refresh_from_db()
    assert pending.status == ReservationStatus.PENDING


def test_confirm_counts_only_on_commit(django_capture_on_commit_callbacks):
    r = reserve_one(StockLevelFactory(on_hand=1))
    order = OrderFactory()
    before = metric("reservations_confirmed_total")
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        services.confirm(reservation_ids=[r.id], order_id=order.id)
        transaction.set_rollback(True)
    assert metric("reservations_confirmed_total") == before
    with django_capture_on_commit_callbacks(execute=True):
        services.confirm(reservation_ids=[r.id], order_id=order.id)
        services.confirm(reservation_ids=[r.id], order_id=order.id)
    assert metric("reservations_confirmed_total") == before + 1


# --- release --------------------------------------------------------------------------------


def test_release_gives_reserved_stock_back_with_its_reason():
    stock = StockLevelFactory(on_hand=5)
    r = reserve_one(stock, 3)

    [released] = services.release(reservation_ids=[r.id], reason="payment_failed", actor="pay")

    assert released.status == ReservationStatus.RELEASED
    stored = Reservation.objects.get(id=r.id)
    assert (stored.status, stored.release_reason) == (ReservationStatus.RELEASED, "payment_failed")
    assert stored.released_at is not None
    assert numbers(stock) == (5, 0)
    assert events(r) == [("created", "system", ""), ("released", "pay", "payment_failed")]


def test_release_is_idempotent_and_leaves_expired_reservations_alone(clock):
    stock = StockLevelFactory(on_hand=5)
    released, expired = reserve_one(stock, 2), reserve_one(stock, 1, ttl=60)
    services.release(reservation_ids=[released.id])
    clock.shift(60)
    services.expire(reservation_ids=[expired.id])

    again = services.release(reservation_ids=[released.id, expired.id])

    assert [r.status for r in again] == [ReservationStatus.RELEASED, ReservationStatus.EXPIRED]
    assert numbers(stock) == (5, 0)
    assert [kind for kind, _, _ in events(released)] == ["created", "released"]
    assert [kind for kind, _, _ in events(expired)] == ["created", "expired"]


def test_release_refuses_a_confirmed_reservation():
    stock = StockLevelFactory(on_hand=5)
    confirmed, pending = reserve_one(stock, 2), reserve_one(stock, 1)
    services.confirm(reservation_ids=[confirmed.id], order_id=OrderFactory().id)

    with pytest.raises(ReservationNotActive) as error:
        services.release(reservation_ids=[pending.id, confirmed.id])

    assert error.value.details == {"reservation_ids": [confirmed.id]}
    assert numbers(stock) == (3, 1)


def test_release_counts_by_reason_only_on_commit(django_capture_on_commit_callbacks):
    r = reserve_one(StockLevelFactory(on_hand=1))
    before = metric("reservations_released_total", reason="ops")
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        services.release(reservation_ids=[r.id], reason="ops")
        transaction.set_rollback(True)
    assert metric("reservations_released_total", reason="ops") == before
    with django_capture_on_commit_callbacks(execute=True):
        services.release(reservation_ids=[r.id], reason="ops")
        services.release(reservation_ids=[r.id], reason="ops")
    assert metric("reservations_released_total", reason="ops") == before + 1


# --- expire -----------------------------------------------------------------------------------


def test_expire_ends_only_lapsed_pending_reservations(clock):
    stock = StockLevelFactory(on_hand=10)
    lapsed, live = reserve_one(stock, 2, ttl=60), reserve_one(stock, 3, ttl=600)
    clock.shift(60)  # expires_at == now counts as lapsed

    result = services.expire(reservation_ids=[lapsed.id, live.id], actor="ops")

    assert {r.id: r.status for r in result} == {
        lapsed.id: ReservationStatus.EXPIRED,
        live.id: ReservationStatus.PENDING,
    }
    assert numbers(stock) == (10, 3)
    assert events(lapsed)[-1] == ("expired", "ops", "")
    assert [kind for kind, _, _ in events(live)] == ["created"]
    assert Reservation.objects.get(id=lapsed.id).released_at == timezone.now()


def test_expire_leaves_confirmed_and_released_reservations_alone(clock):
    stock = StockLevelFactory(on_hand=10)
    confirmed, released = reserve_one(stock, 2, ttl=60), reserve_one(stock, 3, ttl=60)
    services.confirm(reservation_ids=[confirmed.id], order_id=OrderFactory().id)
    services.release(reservation_ids=[released.id])
    clock.shift(120)
    services.expire(reservation_ids=[confirmed.id, released.id])
    assert Reservation.objects.get(id=confirmed.id).status == ReservationStatus.CONFIRMED
    assert Reservation.objects.get(id=released.id).status == ReservationStatus.RELEASED
    assert numbers(stock) == (8, 0)


def test_expire_counts_only_on_commit(clock, django_capture_on_commit_callbacks):
    r = reserve_one(StockLevelFactory(on_hand=1), ttl=60)
    clock.shift(60)
    before = metric("reservations_expired_total")
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        services.expire(reservation_ids=[r.id])
        transaction.set_rollback(True)
    assert metric("reservations_expired_total") == before
    with django_capture_on_commit_callbacks(execute=True):
        services.expire(reservation_ids=[r.id])
    assert metric("reservations_expired_total") == before + 1


# --- ReservationNotFound ----------------------------------------------------------------------


@pytest.mark.parametrize("operation", ["extend", "confirm", "release", "expire", "restock"])
def test_every_operation_on_reservations_refuses_unknown_ids(clock, operation):
    stock = StockLevelFactory(on_hand=5)
    r = reserve_one(stock, 2)
    calls = {
        "extend": lambda ids: services.extend(
            reservation_ids=ids, expires_at=timezone.now() + timedelta(seconds=600)
        ),
        "confirm": lambda ids: services.confirm(reservation_ids=ids, order_id=OrderFactory().id),
        "release": lambda ids: services.release(reservation_ids=ids),
        "expire": lambda ids: services.expire(reservation_ids=ids),
        "restock": lambda ids: services.restock(reservation_ids=ids),
    }

    with pytest.raises(ReservationNotFound) as error:
        calls[operation]([r.id, r.id + 1000, r.id + 999])

    assert error.value.code == "RESERVATION_NOT_FOUND"
    assert error.value.status_code == 404
    assert error.value.details == {"reservation_ids": [r.id + 999, r.id + 1000]}
    r.refresh_from_db()
    assert (r.status, r.extension_count) == (ReservationStatus.PENDING, 0)
    assert numbers(stock) == (5, 2)


@pytest.mark.parametrize("operation", ["extend", "confirm", "release", "expire", "restock"])
def test_every_operation_on_no_reservations_is_a_no_op(operation):
    kwargs = {"extend": {"expires_at": timezone.now() + timedelta(seconds=60)}}.get(operation, {})
    if operation == "confirm":
        kwargs = {"order_id": uuid.uuid4()}
    assert getattr(services, operation)(reservation_ids=[], **kwargs) == []


# --- restock ------------------------------------------------------------------------------------


def test_restock_gives_confirmed_stock_back_to_on_hand():
    stock = StockLevelFactory(on_hand=10)
    r = reserve_one(stock, 4)
    services.confirm(reservation_ids=[r.id], order_id=OrderFactory().id)

    [restocked] = services.restock(reservation_ids=[r.id], reason="order_cancelled", actor="staff")

    assert (restocked.status, restocked.release_reason) == (
        ReservationStatus.RELEASED,
        "order_cancelled",
    )
    stored = Reservation.objects.get(id=r.id)
    assert (stored.status, stored.release_reason) == (ReservationStatus.RELEASED, "order_cancelled")
    assert numbers(stock) == (10, 0)
    assert events(r)[-1] == ("restocked", "staff", "order_cancelled")


def test_restock_releases_pending_and_restocks_confirmed_in_one_call():
    stock = StockLevelFactory(on_hand=10)
    confirmed, pending = reserve_one(stock, 4), reserve_one(stock, 3)
    services.confirm(reservation_ids=[confirmed.id], order_id=OrderFactory().id)
    assert numbers(stock) == (6, 3)

    result = services.restock(reservation_ids=[pending.id, confirmed.id], reason="ops")

    assert [(r.id, r.status) for r in result] == sorted(
        [(confirmed.id, ReservationStatus.RELEASED), (pending.id, ReservationStatus.RELEASED)]
    )
    assert numbers(stock) == (10, 0)
    assert events(confirmed)[-1] == ("restocked", "system", "ops")
    assert events(pending)[-1] == ("released", "system", "ops")


def test_restock_is_idempotent(clock):
    stock = StockLevelFactory(on_hand=10)
    r, lapsed = reserve_one(stock, 4), reserve_one(stock, 1, ttl=60)
    services.confirm(reservation_ids=[r.id], order_id=OrderFactory().id)
    clock.shift(60)
    services.expire(reservation_ids=[lapsed.id])
    services.restock(reservation_ids=[r.id])

    services.restock(reservation_ids=[r.id, lapsed.id])

    assert numbers(stock) == (10, 0)
    assert [kind for kind, _, _ in events(r)] == ["created", "confirmed", "restocked"]
    assert Reservation.objects.get(id=lapsed.id).status == ReservationStatus.EXPIRED


def test_restock_counts_released_only_on_commit(django_capture_on_commit_callbacks):
    stock = StockLevelFactory(on_hand=10)
    r = reserve_one(stock, 4)
    services.confirm(reservation_ids=[r.id], order_id=OrderFactory().id)
    before = metric("reservations_released_total", reason="order_cancelled")
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        services.restock(reservation_ids=[r.id])
        transaction.set_rollback(True)
    assert metric("reservations_released_total", reason="order_cancelled") == before
    with django_capture_on_commit_callbacks(execute=True):
        services.restock(reservation_ids=[r.id])
    assert metric("reservations_released_total", reason="order_cancelled") == before + 1


# --- set_stock ------------------------------------------------------------------------------------


def test_set_stock_creates_a_missing_row():
    product, warehouse = ProductFactory(), WarehouseFactory()
    row = services.set_stock(product=product, warehouse=warehouse, on_hand=7)
    assert (row.product_id, row.warehouse_id, row.on_hand, row.reserved) == (
        product.id,
        warehouse.id,
        7,
        0,
    )
    assert StockLevel.objects.get(product=product, warehouse=warehouse).on_hand == 7


def test_set_stock_changes_on_hand_and_keeps_reservations():
    stock = StockLevelFactory(on_hand=10)
    r = reserve_one(stock, 4)
    row = services.set_stock(product=stock.product, warehouse=stock.warehouse, on_hand=4)
    assert (row.on_hand, row.reserved, row.available) == (4, 4, 0)
    assert numbers(stock) == (4, 4)
    assert Reservation.objects.get(id=r.id).status == ReservationStatus.PENDING


def test_set_stock_below_reserved_is_refused():
    stock = StockLevelFactory(on_hand=10, product__sku="BELOW-1")
    reserve_one(stock, 4)
    with pytest.raises(StockBelowReserved) as error:
        services.set_stock(product=stock.product, warehouse=stock.warehouse, on_hand=3)
    assert error.value.code == "STOCK_BELOW_RESERVED"
    assert error.value.status_code == 409
    assert error.value.details == {"on_hand": 3, "reserved": 4, "sku": "BELOW-1"}
    assert numbers(stock) == (10, 4)


def test_set_stock_reclaims_lapsed_reservations_before_refusing(clock):
    stock = StockLevelFactory(on_hand=10)
    lapsed, live = reserve_one(stock, 4, ttl=60), reserve_one(stock, 2, ttl=600)
    clock.shift(61)

    row = services.set_stock(
        product=stock.product, warehouse=stock.warehouse, on_hand=2, actor="staff"
    )

    assert (row.on_hand, row.reserved) == (2, 2)
    assert numbers(stock) == (2, 2)
    assert Reservation.objects.get(id=lapsed.id).status == ReservationStatus.EXPIRED
    assert Reservation.objects.get(id=live.id).status == ReservationStatus.PENDING
    assert events(lapsed)[-1] == ("expired", "staff", "reclaimed on demand")


def test_set_stock_still_refused_after_reclaiming_keeps_the_lapsed_reservations(clock):
    stock = StockLevelFactory(on_hand=10)
    lapsed, _live = reserve_one(stock, 4, ttl=60), reserve_one(stock, 2, ttl=600)
    clock.shift(61)
    with pytest.raises(StockBelowReserved) as error:
        services.set_stock(product=stock.product, warehouse=stock.warehouse, on_hand=1)
    assert error.value.details["reserved"] == 2
    assert Reservation.objects.get(id=lapsed.id).status == ReservationStatus.PENDING
    assert numbers(stock) == (10, 6)


def test_set_stock_refuses_a_negative_quantity():
    stock = StockLevelFactory(on_hand=10)
    with pytest.raises(ValueError):
        services.set_stock(product=stock.product, warehouse=stock.warehouse, on_hand=-1)
    assert numbers(stock) == (10, 0)


# --- expire_due -----------------------------------------------------------------------------------


def test_expire_due_expires_in_batches_and_writes_events(clock):
    stocks = [StockLevelFactory(on_hand=10) for _ in range(3)]
    lapsed = [reserve_one(s, 2, ttl=60) for s in stocks] + [reserve_one(stocks[0], 1, ttl=60)]
    live = reserve_one(stocks[1], 3, ttl=600)
    clock.shift(60)

    done = [services.expire_due(batch_size=2, actor="sweeper-1") for _ in range(4)]

    assert done == [2, 2, 0, 0]
    assert sum(done) == len(lapsed)
    for r in lapsed:
        r.refresh_from_db()
        assert r.status == ReservationStatus.EXPIRED
        assert r.released_at == timezone.now()
        assert events(r)[-1] == ("expired", "sweeper-1", "")
    assert Reservation.objects.get(id=live.id).status == ReservationStatus.PENDING
    assert [numbers(s) for s in stocks] == [(10, 0), (10, 3), (10, 0)]


def test_expire_due_with_nothing_lapsed_does_nothing(clock):
    stock = StockLevelFactory(on_hand=10)
    reserve_one(stock, 2, ttl=60)
    clock.shift(59)
    assert services.expire_due(batch_size=100) == 0
    assert numbers(stock) == (10, 2)


def test_expire_due_counts_only_on_commit(clock, django_capture_on_commit_callbacks):
    reserve_one(StockLevelFactory(on_hand=1), ttl=60)
    clock.shift(60)
    before = metric("reservations_expired_total")
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        assert services.expire_due(batch_size=10) == 1
        transaction.set_rollback(True)
    assert metric("reservations_expired_total") == before
    with django_capture_on_commit_callbacks(execute=True):
        assert services.expire_due(batch_size=10) == 1
    assert metric("reservations_expired_total") == before + 1


# --- what the operations return -------------------------------------------------------------


@pytest.mark.parametrize("operation", ["extend", "confirm", "release", "expire", "restock"])
def test_operations_return_reservations_as_stored_with_product_and_warehouse_loaded(
    clock, django_assert_num_queries, operation
):
    stock = StockLevelFactory(on_hand=5, product__sku="LOADED-1")
    r = reserve_one(stock, 2, ttl=60)
    if operation == "expire":
        clock.shift(60)
    kwargs = {
        "extend": {"expires_at": timezone.now() + timedelta(seconds=600)},
        "confirm": {"order_id": OrderFactory().id},
    }.get(operation, {})

    [result] = getattr(services, operation)(reservation_ids=[r.id], **kwargs)

    stored = Reservation.objects.get(id=r.id)
    for field in Reservation._meta.concrete_fields:
        assert getattr(result, field.attname) == getattr(stored, field.attname), field.name
    assert not result._state.adding
    with django_assert_num_queries(0):
        assert (result.product.sku, result.warehouse.code) == ("LOADED-1", "default")


@pytest.mark.django_db(transaction=True)
def test_a_database_failure_during_reserve_counts_as_an_error():
    """A lock timeout (another transaction holds the stock row) is a failed reservation
    attempt: counted with outcome ``error``, nothing reserved."""
    from django.db import OperationalError, connection

    stock = StockLevelFactory(on_hand=5)
    before = metric("stock_reservations_total", outcome="error")
    try:
        with row_locked(StockLevel, stock.id):
            with connection.cursor() as cursor:
                cursor.execute("SET lock_timeout = 200")
            with pytest.raises(OperationalError):
                reserve_one(stock, 1)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = 5000")
    assert metric("stock_reservations_total", outcome="error") == before + 1
    stock.refresh_from_db()
    assert stock.reserved == 0
