"""Several sweepers at once (real threads on PostgreSQL): each reservation is ended once,
each cart abandoned once, nobody waits for a cart a shopper holds, and a worker killed in
the middle of a batch loses only its uncommitted work."""

import threading
import time

import pytest
from django.db import InternalError, OperationalError, connection, transaction

from carts.models import Cart, CartStatus
from checkout import cleanup as checkout_cleanup
from checkout import orphans as orphan_sweeper
from inventory import cleanup, services
from inventory.models import Reservation, ReservationEvent, ReservationStatus, StockLevel
from tests.support import (
    assert_stock_invariants,
    cart_with_reservations,
    checkout_cart,
    ended_once,
    lapse,
    lapsed_reservations,
    metric,
    row_locked,
    run_in_threads,
    stocks,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("default_warehouse")]


def lapsed_across(rows, per_stock: int) -> list[int]:
    ids = []
    for _ in range(per_stock):
        made = services.reserve(
            lines=[services.ReservationLine(s.product_id, s.warehouse_id, 1) for s in rows],
            ttl_seconds=60,
        )
        ids += [r.id for r in made]
    lapse(reservation_ids=ids)
    return ids


def test_two_expiry_sweepers_expire_each_reservation_exactly_once():
    lapsed = lapsed_across(stocks(40), per_stock=5)
    before = metric("reservations_expired_total")

    runs = run_in_threads(
        lambda: cleanup.expire_reservations(batch_size=7, actor="sweeper-1"),
        lambda: cleanup.expire_reservations(batch_size=7, actor="sweeper-2"),
    )

    assert sum(run.done for run in runs) == 200
    assert all(run.done > 0 for run in runs), [run.done for run in runs]  # side by side
    assert sum(run.errors for run in runs) == 0
    assert ended_once(lapsed, "expired")
    assert metric("reservations_expired_total") - before == 200
    assert set(StockLevel.objects.values_list("reserved", flat=True)) == {0}
    assert_stock_invariants()


def test_two_orphan_sweepers_release_each_reservation_exactly_once():
    carts = [cart_with_reservations(stocks(2), status=CartStatus.ACTIVE) for _ in range(30)]
    orphans = list(Reservation.objects.filter(cart__in=carts).values_list("id", flat=True))
    before = metric("reservations_orphaned_total")

    runs = run_in_threads(
        lambda: orphan_sweeper.release_orphaned_reservations(batch_size=4, actor="sweeper-1"),
        lambda: orphan_sweeper.release_orphaned_reservations(batch_size=4, actor="sweeper-2"),
    )

    assert sum(run.done for run in runs) == 60
    assert all(run.done > 0 for run in runs), [run.done for run in runs]  # side by side
    assert sum(run.errors for run in runs) == 0
    assert ended_once(orphans, "released")
    assert metric("reservations_orphaned_total") - before == 60
    assert_stock_invariants()


def test_abandon_and_expiry_sweepers_on_the_same_carts_end_everything_once():
    carts = [checkout_cart(stocks(3)) for _ in range(25)]
    lapse(carts=carts)
    held = list(Reservation.objects.filter(cart__in=carts).values_list("id", flat=True))
    before = metric("carts_abandoned_total", reason="expired")

    runs = run_in_threads(
        lambda: checkout_cleanup.abandon_expired_checkouts(batch_size=4, actor="abandon-1"),
        lambda: checkout_cleanup.abandon_expired_checkouts(batch_size=4, actor="abandon-2"),
        lambda: cleanup.expire_reservations(batch_size=5, actor="expiry"),
    )

    assert runs[0].done + runs[1].done == 25
    assert runs[0].done > 0 and runs[1].done > 0, [run.done for run in runs]
    assert sum(run.errors for run in runs) == 0
    assert metric("carts_abandoned_total", reason="expired") - before == 25
    assert set(
        Cart.objects.filter(id__in=[c.id for c in carts]).values_list("status", flat=True)
    ) == {CartStatus.ABANDONED}
    assert ended_once(held, "expired")
    assert_stock_invariants()


def test_the_expiry_sweeper_passes_over_a_stock_row_a_shopper_holds_without_waiting():
    """``SKIP LOCKED`` (``inventory.locks.lock_stock_levels_with_lapsed``): a stock row
    another transaction holds is left for a later run, the others are swept. The holder
    keeps its lock until after the sweeper has returned, so the sweeper cannot have
    waited for it; a sweeper that waited would stop at the test settings' lock_timeout
    (5 s) with an error."""
    held, *free = stocks(4)
    lapsed_on_held = lapsed_reservations([held], per_stock=2)
    lapsed_on_free = lapsed_reservations(free, per_stock=2)
    locked, finish = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def shopper():
        try:
            with transaction.atomic():
                StockLevel.objects.select_for_update().get(id=held.id)
                locked.set()
                if not finish.wait(timeout=20):
                    raise AssertionError("the sweeper never returned")
        except BaseException as exc:
            errors.append(exc)
        finally:
            locked.set()
            connection.close()

    thread = threading.Thread(target=shopper)
    thread.start()
    try:
        assert locked.wait(timeout=10)
        if errors:
            raise errors[0]
        started = time.monotonic()
        run = cleanup.expire_reservations(batch_size=10)
        seconds = time.monotonic() - started
        # The row is still held now that the sweeper is done.
        with pytest.raises(OperationalError), transaction.atomic():
            StockLevel.objects.select_for_update(nowait=True).get(id=held.id)
    finally:
        finish.set()
        thread.join(timeout=20)
    assert not thread.is_alive()
    if errors:
        raise errors[0]

    assert (run.done, run.errors) == (6, 0)
    assert seconds < 2.5, seconds  # half the lock_timeout; it takes milliseconds
    assert ended_once(lapsed_on_free, "expired")
    assert set(
        Reservation.objects.filter(id__in=lapsed_on_held).values_list("status", flat=True)
    ) == {ReservationStatus.PENDING}
    held.refresh_from_db()
    assert held.reserved == 2
    assert cleanup.expire_reservations(batch_size=10).done == 2  # the next run takes them
    assert ended_once(lapsed_on_held, "expired")
    assert_stock_invariants()


def test_a_cart_a_shopper_holds_is_skipped_without_waiting_and_taken_next_run():
    busy, free = (checkout_cart(stocks(1)) for _ in range(2))
    lapse(carts=[busy, free])
    with row_locked(Cart, busy.id):  # a shopper's request holds the cart
        run = checkout_cleanup.abandon_expired_checkouts(batch_size=10)
        assert (run.done, run.skipped, run.errors) == (1, 1, 0)
    assert Cart.objects.get(id=busy.id).status == CartStatus.CHECKOUT

    assert checkout_cleanup.abandon_expired_checkouts(batch_size=10).done == 1
    assert Cart.objects.get(id=busy.id).status == CartStatus.ABANDONED


def test_worker_killed_mid_batch_loses_only_that_batch_and_redelivery_finishes_once():
    """The worker's connection dies inside a batch (pg_terminate_backend, as when the
    process is killed): PostgreSQL rolls the batch back. The redelivered task, run
    twice, expires every remaining reservation exactly once."""
    lapsed = lapsed_across(stocks(10), per_stock=2)
    assert cleanup.expire_reservations(batch_size=5, max_batches=1).done == 5
    in_batch, killed = threading.Event(), threading.Event()
    pid: list[int] = []
    errors: list[BaseException] = []  # the worker's, re-raised or checked below

    def doomed_worker():
        try:
            with transaction.atomic():
                with connection.cursor() as cursor:  # this transaction's server session,
                    cursor.execute("SELECT pg_backend_pid()")  # behind a pooler too
                    pid.append(cursor.fetchone()[0])
                expired = services.expire_due(batch_size=5, actor="killed-worker")
                if expired != 5:
                    raise AssertionError(f"the batch expired {expired}, not 5")
                in_batch.set()
                killed.wait(timeout=20)
        except BaseException as exc:
            errors.append(exc)
        finally:
            in_batch.set()  # a worker that failed early must not leave the test waiting
            connection.close()

    thread = threading.Thread(target=doomed_worker)
    thread.start()
    try:
        assert in_batch.wait(timeout=10)
        if errors:
            raise errors[0]  # failed before the kill
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid[0]])
    finally:
        killed.set()
        thread.join(timeout=20)
    assert not thread.is_alive()
    # Its only error: the commit of the batch, on the connection that was terminated
    # (InternalError behind PgBouncer: see core.errors.database_unavailable).
    assert [type(exc) for exc in errors] in ([OperationalError], [InternalError]), errors

    assert Reservation.objects.filter(status=ReservationStatus.PENDING).count() == 15
    assert not ReservationEvent.objects.filter(actor="killed-worker").exists()
    assert cleanup.expire_reservations(batch_size=5).done == 15
    assert cleanup.expire_reservations(batch_size=5).done == 0
    assert ended_once(lapsed, "expired")
    assert_stock_invariants()
