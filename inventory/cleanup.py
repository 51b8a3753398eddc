"""The reservation sweeper (SPEC §9): expire lapsed reservations.

Batched, idempotent and safe on many workers at once (see ``core.jobs``); the Celery task
in ``inventory.tasks`` and the ``manage.py`` command call these functions and nothing
else. Stock numbers change only through ``inventory.services``. The sweeper takes stock
rows ``SKIP LOCKED`` (``services.expire_due``), one short transaction per batch, so it
never waits for a shopper or another worker.

Orphaned reservations (held for a cart that is no longer in checkout) are a checkout
concept and are swept by ``checkout.orphans``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db.models import QuerySet
from django.utils import timezone

from core.jobs import Batch, Job, JobRun, run_batches
from inventory import services
from inventory.models import Reservation, ReservationStatus

logger = logging.getLogger("inventory.cleanup")

OnBatch = Callable[[JobRun, Batch], None] | None


def lapsed_reservations() -> QuerySet[Reservation]:
    """Pending reservations past their expiry: what the expiry sweeper ends next."""
    return Reservation.objects.filter(
        status=ReservationStatus.PENDING, expires_at__lte=timezone.now()
    )


def expire_reservations(
    *,
    batch_size: int,
    max_batches: int | None = None,
    actor: str = "sweeper",
    on_batch: OnBatch = None,
) -> JobRun:
    """Expires lapsed pending reservations and gives their stock back, ``batch_size`` at a
    time (``services.expire_due``: stock rows ``FOR UPDATE SKIP LOCKED``, two statements
    per batch). The carts they belonged to are left in ``checkout``; abandoning them is
    the job of ``abandon_expired_checkouts``."""

    def step() -> Batch:
        expired = services.expire_due(batch_size=batch_size, actor=actor)
        # expire_due locks up to batch_size stock rows and ends up to batch_size of their
        # reservations: fewer than that means it took every row that was due and free.
        return Batch(seen=expired, done=expired, exhausted=expired < batch_size)

    return run_batches("expire_reservations", step, max_batches=max_batches, on_batch=on_batch)


EXPIRE_RESERVATIONS = Job(
    name="expire_reservations",
    noun="reservations",
    done_verb="expired",
    dry_verb="would expire",
    count=lambda: lapsed_reservations().count(),
    run=expire_reservations,
)
