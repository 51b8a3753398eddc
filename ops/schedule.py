"""The beat schedule of the cleanup jobs (SPEC §9), kept in the database
(django-celery-beat's ``DatabaseScheduler``) so staff can change it in the admin.

How code and admin edits coexist:

* ``migrate`` (a ``post_migrate`` hook, see ``ops.apps``) creates the rows that are
  missing, named as in ``SCHEDULE``, with the interval of the matching setting
  (``EXPIRE_RESERVATIONS_INTERVAL_SECONDS``, ...). A row that exists is never changed:
  an interval or ``enabled`` flag set by staff in the admin survives every deploy.
* The jobs are deliberately not in ``CELERY_BEAT_SCHEDULE``: beat's ``setup_schedule``
  writes that dictionary over the rows of the same name on every start.
* A changed default (a new value of an ``*_INTERVAL_SECONDS`` variable) reaches an
  existing deployment only when someone asks for it: ``manage.py sync_schedule --force``
  resets the interval, task and expiry of the rows to the code's values (``enabled`` is
  left as staff set it). ``sync_schedule --dry-run`` shows what would change.
* To stop a job, untick ``enabled`` in the admin; a deleted row comes back at the next
  ``migrate``.

Each row's ``expire_seconds`` equals its interval: a tick that no worker picked up before
the next one is dropped instead of piling up behind a stopped worker.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, transaction

logger = logging.getLogger("ops.schedule")


@dataclass(frozen=True)
class ScheduledJob:
    name: str  # PeriodicTask.name: the key that identifies the row
    task: str
    interval_setting: str
    description: str

    @property
    def every(self) -> int:
        return int(getattr(settings, self.interval_setting))


SCHEDULE: tuple[ScheduledJob, ...] = (
    ScheduledJob(
        "expire-reservations",
        "inventory.expire_reservations",
        "EXPIRE_RESERVATIONS_INTERVAL_SECONDS",
        "Pending reservations past their expiry become expired; their stock is returned.",
    ),
    ScheduledJob(
        "abandon-expired-checkouts",
        "checkout.abandon_expired_checkouts",
        "ABANDON_EXPIRED_CHECKOUTS_INTERVAL_SECONDS",
        "Carts in checkout whose reservations lapsed are released and abandoned.",
    ),
    ScheduledJob(
        "abandon-stale-checkouts",
        "checkout.abandon_stale_checkouts",
        "ABANDON_STALE_CHECKOUTS_INTERVAL_SECONDS",
        "Carts in checkout for longer than CHECKOUT_ABANDON_AFTER_SECONDS are abandoned.",
    ),
    ScheduledJob(
        "release-orphaned-reservations",
        "inventory.release_orphaned_reservations",
        "RELEASE_ORPHANED_RESERVATIONS_INTERVAL_SECONDS",
        "Pending reservations of carts not in checkout and with no order are released.",
    ),
    ScheduledJob(
        "reconcile-payments",
        "checkout.reconcile_payments",
        "RECONCILE_PAYMENTS_INTERVAL_SECONDS",
        "Captured payments without an order get their order (or are flagged for staff).",
    ),
    ScheduledJob(
        "serve-waitlists",
        "inventory.serve_waitlists",
        "WAITLIST_SERVE_INTERVAL_SECONDS",
        "Waiting entries get the units an offering transaction had to leave (a stock row "
        "another transaction held), units of a warehouse turned active, and the turn of "
        "entries whose cart closed.",
    ),
)

CREATED, KEPT, UPDATED, UNCHANGED = "created", "kept", "updated", "unchanged"


def _description(job: ScheduledJob) -> str:
    return (
        f"{job.description} Default interval from {job.interval_setting}. Edits made "
        "here are kept across deploys; `manage.py sync_schedule --force` resets them."
    )


def sync_schedule(
    *,
    force: bool = False,
    dry_run: bool = False,
    only: set[str] | None = None,
    using: str = DEFAULT_DB_ALIAS,
) -> dict[str, str]:
    """Creates the missing rows of ``SCHEDULE``; with ``force`` also resets the interval,
    task and expiry of existing rows to the code's values. Returns, per job name,
    ``created``, ``kept`` (exists, left alone), ``updated`` (reset by ``force``) or
    ``unchanged`` (``force``, already equal). ``dry_run`` reports without writing."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    outcome: dict[str, str] = {}
    with transaction.atomic(using=using):
        for job in SCHEDULE:
            if only is not None and job.name not in only:
                continue
            row = PeriodicTask.objects.using(using).filter(name=job.name).first()
            if row is not None and not force:
                outcome[job.name] = KEPT
                continue
            if row is not None and (
                row.task == job.task
                and row.interval is not None
                and (row.interval.every, row.interval.period) == (job.every, "seconds")
                and row.crontab_id is None
                and row.solar_id is None
                and row.clocked_id is None
                and row.expire_seconds == job.every
            ):
                outcome[job.name] = UNCHANGED
                continue
            outcome[job.name] = CREATED if row is None else UPDATED
            if dry_run:
                continue
            interval = (
                IntervalSchedule.objects.using(using)
                .filter(every=job.every, period=IntervalSchedule.SECONDS)
                .order_by("id")
                .first()
            ) or IntervalSchedule.objects.using(using).create(
                every=job.every, period=IntervalSchedule.SECONDS
            )
            if row is None:
                row = PeriodicTask(name=job.name, enabled=True)
            row.task = job.task
            row.interval = interval
            row.crontab = row.solar = row.clocked = None
            row.expire_seconds = job.every
            row.description = _description(job)
            # save() also bumps PeriodicTasks.last_update, which makes a running beat
            # reload its schedule.
            row.save(using=using)
            logger.info(
                "schedule.synced",
                extra={
                    "event": "schedule.synced",
                    "job": job.name,
                    "outcome": outcome[job.name],
                    "every_seconds": job.every,
                },
            )
    return outcome


def on_post_migrate(*, using: str = DEFAULT_DB_ALIAS, apps=None, verbosity: int = 1, **_) -> None:
    """``post_migrate`` receiver: create the missing schedule rows, never change others.
    Does nothing when django-celery-beat's tables are not (yet) in the migrated state."""
    if apps is not None:
        try:
            apps.get_model("django_celery_beat", "PeriodicTask")
            apps.get_model("django_celery_beat", "IntervalSchedule")
        except LookupError:
            return
    outcome = sync_schedule(using=using)
    created = sorted(name for name, what in outcome.items() if what == CREATED)
    if created and verbosity >= 1:
        print(f"  Created the beat schedule of: {', '.join(created)}")
