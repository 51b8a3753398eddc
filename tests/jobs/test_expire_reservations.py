"""The expire-reservations job: lapsed pending reservations become expired and give their
stock back, in bounded runs that re-enqueue themselves while a backlog remains."""

import pytest
from django.test import override_settings

from carts.models import CartStatus
from inventory import cleanup
from inventory.models import Reservation, ReservationEvent, ReservationStatus, StockLevel
from inventory.tasks import expire_reservations as expire_task
from tests.support import (
    assert_stock_invariants,
    checkout_cart,
    ended_once,
    lapse,
    lapsed_reservations,
    metric,
    queued_tasks,
    stocks,
)

pytestmark = pytest.mark.django_db


def test_lapsed_reservations_expire_and_their_stock_is_returned(
    django_capture_on_commit_callbacks,
):
    rows = stocks(3, on_hand=10)
    lapsed = lapsed_reservations(rows, per_stock=2)
    cart = checkout_cart(rows[:1], quantity=4)  # live: 300 s left
    before = metric("reservations_expired_total")

    with django_capture_on_commit_callbacks(execute=True):
        run = cleanup.expire_reservations(batch_size=100, actor="test-sweeper")

    assert (run.done, run.errors, run.more) == (6, 0, False)
    assert set(Reservation.objects.filter(id__in=lapsed).values_list("status", flat=True)) == {
        ReservationStatus.EXPIRED
    }
    assert set(Reservation.objects.filter(cart=cart).values_list("status", flat=True)) == {
        ReservationStatus.PENDING
    }
    reserved = dict(StockLevel.objects.values_list("id", "reserved"))
    assert [reserved[s.id] for s in rows] == [4, 0, 0]
    events = ReservationEvent.objects.filter(reservation_id__in=lapsed, kind="expired")
    assert set(events.values_list("actor", flat=True)) == {"test-sweeper"}
    assert ended_once(lapsed, "expired")
    assert metric("reservations_expired_total") - before == 6
    assert_stock_invariants()


def test_cart_whose_reservations_expired_stays_in_checkout_for_the_abandon_job():
    rows = stocks(2)
    cart = checkout_cart(rows)
    lapse(carts=[cart])

    assert cleanup.expire_reservations(batch_size=10).done == 2

    cart.refresh_from_db()
    assert cart.status == CartStatus.CHECKOUT
    assert_stock_invariants()


def test_a_run_is_bounded_and_says_when_work_is_left():
    lapsed = lapsed_reservations(stocks(5))

    first = cleanup.expire_reservations(batch_size=2, max_batches=2)
    assert (first.done, first.batches, first.more) == (4, 2, True)
    second = cleanup.expire_reservations(batch_size=2, max_batches=2)
    assert (second.done, second.batches, second.more) == (1, 1, False)
    third = cleanup.expire_reservations(batch_size=2, max_batches=2)
    assert (third.done, third.batches, third.more) == (0, 0, False)
    assert ended_once(lapsed, "expired")
    assert_stock_invariants()


def test_batch_costs_a_constant_number_of_queries(django_assert_num_queries):
    lapsed_reservations(stocks(30))
    # savepoint, lock stock rows, expire + return stock + events, release savepoint
    with django_assert_num_queries(4):
        assert cleanup.expire_reservations(batch_size=100, max_batches=1).done == 30


@override_settings(CLEANUP_BATCH_SIZE=2, CLEANUP_MAX_BATCHES_PER_RUN=1)
def test_task_enqueues_itself_again_while_a_backlog_remains(broker):
    lapse_ids = lapsed_reservations(stocks(3))

    result = expire_task.apply().get()

    assert (result["done"], result["more"]) == (2, True)
    assert queued_tasks(broker) == ["inventory.expire_reservations"]
    broker.delete("celery")

    result = expire_task.apply().get()  # what the re-enqueued task does
    assert (result["done"], result["more"]) == (1, False)
    assert queued_tasks(broker) == []
    assert ended_once(lapse_ids, "expired")


def test_task_run_twice_does_the_work_once(broker, django_capture_on_commit_callbacks):
    """A redelivered task (acks_late after a lost worker) finds nothing left to do."""
    lapsed = lapsed_reservations(stocks(4), per_stock=2)
    before = metric("reservations_expired_total")

    with django_capture_on_commit_callbacks(execute=True):
        assert expire_task.apply().get()["done"] == 8
        assert expire_task.apply().get()["done"] == 0

    assert ended_once(lapsed, "expired")
    assert metric("reservations_expired_total") - before == 8
    assert_stock_invariants()


def test_a_batch_killed_before_commit_is_redone_once_on_redelivery(broker):
    """The first delivery commits one batch, then dies inside the next one: its work is
    rolled back with the transaction. The redelivered task (run twice, as a second
    redelivery could) expires everything left exactly once."""
    lapsed = lapsed_reservations(stocks(6))

    class WorkerKilled(Exception):
        pass

    assert cleanup.expire_reservations(batch_size=2, max_batches=1).done == 2
    from django.db import transaction

    from inventory import services

    with pytest.raises(WorkerKilled), transaction.atomic():
        assert services.expire_due(batch_size=2, actor="killed") == 2
        raise WorkerKilled
    assert Reservation.objects.filter(status=ReservationStatus.PENDING).count() == 4
    assert not ReservationEvent.objects.filter(actor="killed").exists()

    assert expire_task.apply().get()["done"] == 4
    assert expire_task.apply().get()["done"] == 0
    assert ended_once(lapsed, "expired")
    assert_stock_invariants()


def test_a_run_cut_short_by_the_soft_time_limit_is_continued_by_a_new_task(broker):
    """Celery raises SoftTimeLimitExceeded inside the run; the batch in flight rolls back,
    and the task hands the rest to a fresh copy of itself instead of failing."""
    from celery.exceptions import SoftTimeLimitExceeded

    from core.jobs import Job, run_task

    def run_until_time_limit(**_):
        raise SoftTimeLimitExceeded()

    slow = Job(
        "expire_reservations", "reservations", "expired", "would expire", int, run_until_time_limit
    )

    assert run_task(expire_task, slow, actor="test") == {
        "job": "expire_reservations",
        "more": True,
        "time_limit": True,
    }
    assert queued_tasks(broker) == ["inventory.expire_reservations"]
