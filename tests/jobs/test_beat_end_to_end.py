"""End to end: the database schedule, a real beat (django-celery-beat's DatabaseScheduler
ticking in a thread), the local Redis broker and a real Celery worker expire a lapsed
reservation on schedule."""

import threading
import time

import pytest
from celery.contrib.testing.worker import start_worker
from django.db import connection
from django_celery_beat.models import IntervalSchedule, PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler

from config.celery import app
from inventory import services
from inventory.models import ReservationEvent, ReservationStatus, StockLevel
from tests.support import stocks


def run_beat(stop: threading.Event) -> None:
    try:
        scheduler = DatabaseScheduler(app=app)
        while not stop.is_set():
            scheduler.tick()
            stop.wait(0.2)
        scheduler.sync()
    finally:
        connection.close()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("default_warehouse", "broker")
def test_worker_and_beat_expire_a_lapsed_reservation_on_schedule():
    # Only the expiry job, every second (as staff could set it in the admin).
    PeriodicTask.objects.exclude(name="expire-reservations").update(enabled=False)
    task = PeriodicTask.objects.get(name="expire-reservations")
    task.interval, _ = IntervalSchedule.objects.get_or_create(
        every=1, period=IntervalSchedule.SECONDS
    )
    task.save()
    [stock] = stocks(1, on_hand=5)
    [reservation] = services.reserve(
        lines=[services.ReservationLine(stock.product_id, stock.warehouse_id, 2)],
        ttl_seconds=1,
    )
    stop = threading.Event()
    beat = threading.Thread(target=run_beat, args=(stop,))

    app.control.purge()  # leftovers of earlier tests must not run here
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        beat.start()
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                reservation.refresh_from_db()
                if reservation.status != ReservationStatus.PENDING:
                    break
                time.sleep(0.2)
        finally:
            stop.set()
            beat.join(timeout=15)

    assert reservation.status == ReservationStatus.EXPIRED
    event = ReservationEvent.objects.get(reservation=reservation, kind="expired")
    assert event.actor == "task:expire_reservations"
    assert StockLevel.objects.get(id=stock.id).reserved == 0
    task.refresh_from_db()
    assert task.total_run_count >= 1  # beat recorded its runs in the row
