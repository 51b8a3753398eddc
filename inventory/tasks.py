"""The reservation sweeper and the waitlist pass on Celery beat (SPEC §9, §15). Thin: the
work is in ``inventory.cleanup`` and ``inventory.waitlist_jobs``; the schedule is in
``ops.schedule``.

The tasks are idempotent (acks_late + reject on worker lost, the project defaults, are
safe here): a redelivered task finds the rows it already changed no longer due.
"""

from __future__ import annotations

from celery import shared_task

from core.jobs import run_task
from inventory import cleanup, waitlist_jobs


@shared_task(name="inventory.expire_reservations", bind=True, acks_late=True)
def expire_reservations(self) -> dict[str, object]:
    return run_task(self, cleanup.EXPIRE_RESERVATIONS, actor="task:expire_reservations")


@shared_task(name="inventory.serve_waitlists", bind=True, acks_late=True)
def serve_waitlists(self) -> dict[str, object]:
    return run_task(self, waitlist_jobs.SERVE_WAITLISTS, actor="task:serve_waitlists")
