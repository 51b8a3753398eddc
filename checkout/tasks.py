"""Checkout sweepers on Celery beat (SPEC §9). Thin: the work is in ``checkout.cleanup``;
the schedule is in ``ops.schedule``. Idempotent, so acks_late redelivery is safe."""

from __future__ import annotations

from celery import shared_task

from checkout import cleanup, orphans
from core.jobs import run_task


@shared_task(name="checkout.abandon_expired_checkouts", bind=True, acks_late=True)
def abandon_expired_checkouts(self) -> dict[str, object]:
    return run_task(self, cleanup.ABANDON_EXPIRED_CHECKOUTS, actor="task:abandon_expired_checkouts")


@shared_task(name="checkout.abandon_stale_checkouts", bind=True, acks_late=True)
def abandon_stale_checkouts(self) -> dict[str, object]:
    return run_task(self, cleanup.ABANDON_STALE_CHECKOUTS, actor="task:abandon_stale_checkouts")


@shared_task(name="checkout.reconcile_payments", bind=True, acks_late=True)
def reconcile_payments(self) -> dict[str, object]:
    return run_task(self, cleanup.RECONCILE_PAYMENTS, actor="task:reconcile_payments")


# The task keeps the name it was first scheduled under: beat rows in existing databases
# (django-celery-beat) refer to it by this name.
@shared_task(name="inventory.release_orphaned_reservations", bind=True, acks_late=True)
def release_orphaned_reservations(self) -> dict[str, object]:
    return run_task(
        self, orphans.RELEASE_ORPHANED_RESERVATIONS, actor="task:release_orphaned_reservations"
    )
