"""Reservation sweepers on Celery beat (SPEC §9). Thin: the work is in
``inventory.cleanup``; the schedule is in ``config.schedule``.

Both tasks are idempotent (acks_late + reject on worker lost, the project defaults, are
safe here): a redelivered task finds the rows it already changed no longer due.
"""

from __future__ import annotations

from celery import shared_task

from config.jobs import run_task
from inventory import cleanup


@shared_task(name="inventory.expire_reservations", bind=True, acks_late=True)
def expire_reservations(self) -> dict[str, object]:
    return run_task(self, cleanup.EXPIRE_RESERVATIONS, actor="task:expire_reservations")


@shared_task(name="inventory.release_orphaned_reservations", bind=True, acks_late=True)
def release_orphaned_reservations(self) -> dict[str, object]:
    return run_task(
        self, cleanup.RELEASE_ORPHANED_RESERVATIONS, actor="task:release_orphaned_reservations"
    )
