"""The beat schedule lives in the database: migrate creates the missing rows from the
settings, staff edits survive migrate and beat restarts, ``sync_schedule --force``
brings a changed default to an existing deployment."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.test import override_settings
from django_celery_beat.models import IntervalSchedule, PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler

from config.celery import app
from ops.schedule import SCHEDULE, sync_schedule

pytestmark = pytest.mark.django_db

EXPECTED = {
    "expire-reservations": ("inventory.expire_reservations", 60),
    "abandon-expired-checkouts": ("checkout.abandon_expired_checkouts", 300),
    "abandon-stale-checkouts": ("checkout.abandon_stale_checkouts", 300),
    "release-orphaned-reservations": ("inventory.release_orphaned_reservations", 300),
    "reconcile-payments": ("checkout.reconcile_payments", 300),
    "serve-waitlists": ("inventory.serve_waitlists", 30),
}


def rows() -> dict[str, tuple[str, int, str, bool]]:
    return {
        t.name: (t.task, t.interval.every, t.interval.period, t.enabled)
        for t in PeriodicTask.objects.filter(name__in=EXPECTED).select_related("interval")
    }


def staff_edit(name: str, *, every: int | None = None, enabled: bool | None = None) -> None:
    """What the admin's change form does: save the row (which tells beat to reload)."""
    task = PeriodicTask.objects.get(name=name)
    if every is not None:
        task.interval, _ = IntervalSchedule.objects.get_or_create(
            every=every, period=IntervalSchedule.SECONDS
        )
    if enabled is not None:
        task.enabled = enabled
    task.save()


def migrate() -> None:
    call_command("migrate", verbosity=0, interactive=False)


def test_migrate_created_one_row_per_job_with_the_settings_intervals():
    assert rows() == {
        name: (task, every, "seconds", True) for name, (task, every) in EXPECTED.items()
    }
    assert {job.name for job in SCHEDULE} == set(EXPECTED)
    expire = PeriodicTask.objects.get(name="expire-reservations")
    assert expire.expire_seconds == 60
    assert "EXPIRE_RESERVATIONS_INTERVAL_SECONDS" in expire.description
    # Every scheduled task exists in the Celery app.
    app.loader.import_default_modules()
    assert {task for task, _ in EXPECTED.values()} <= set(app.tasks)


def test_the_jobs_are_not_in_celery_beat_schedule():
    """setup_schedule would write those entries over the admin's rows at every start."""
    assert not app.conf.beat_schedule


# The scheduler commits and closes connections itself: it needs real transactions.
@pytest.mark.django_db(transaction=True)
def test_staff_edits_survive_migrate_and_beat_start():
    staff_edit("expire-reservations", every=15)
    staff_edit("reconcile-payments", enabled=False)

    migrate()
    DatabaseScheduler(app=app)  # what `celery beat` does at start (setup_schedule)

    current = rows()
    assert current["expire-reservations"] == ("inventory.expire_reservations", 15, "seconds", True)
    assert current["reconcile-payments"][3] is False
    assert current["abandon-stale-checkouts"][1] == 300


# The scheduler commits and closes connections itself: it needs real transactions.
@pytest.mark.django_db(transaction=True)
def test_beat_loads_the_edited_interval():
    staff_edit("expire-reservations", every=15)

    scheduler = DatabaseScheduler(app=app)

    assert scheduler.schedule["expire-reservations"].schedule.run_every.total_seconds() == 15
    assert scheduler.schedule["expire-reservations"].task == "inventory.expire_reservations"


def test_a_deleted_row_comes_back_at_the_next_migrate():
    PeriodicTask.objects.filter(name="abandon-stale-checkouts").delete()

    migrate()

    assert rows()["abandon-stale-checkouts"] == (
        "checkout.abandon_stale_checkouts",
        300,
        "seconds",
        True,
    )


@override_settings(EXPIRE_RESERVATIONS_INTERVAL_SECONDS=30)
def test_changed_default_reaches_existing_rows_only_with_force():
    staff_edit("expire-reservations", enabled=False)

    migrate()
    assert rows()["expire-reservations"][1] == 60  # kept: an existing row is not touched

    out = StringIO()
    call_command("sync_schedule", "--force", "--dry-run", stdout=out)
    assert "expire-reservations: updated" in out.getvalue()
    assert "sync_schedule: would change 1 of 6 jobs" in out.getvalue()
    assert rows()["expire-reservations"][1] == 60

    out = StringIO()
    call_command("sync_schedule", "--force", stdout=out)
    assert "sync_schedule: changed 1 of 6 jobs" in out.getvalue()
    task, every, _, enabled = rows()["expire-reservations"]
    assert (task, every, enabled) == ("inventory.expire_reservations", 30, False)
    assert PeriodicTask.objects.get(name="expire-reservations").expire_seconds == 30


def test_force_restores_a_job_staff_pointed_elsewhere_and_only_the_named_job():
    PeriodicTask.objects.filter(name="reconcile-payments").update(task="celery.backend_cleanup")
    staff_edit("expire-reservations", every=15)

    outcome = sync_schedule(force=True, only={"reconcile-payments"})

    assert outcome == {"reconcile-payments": "updated"}
    assert rows()["reconcile-payments"][0] == "checkout.reconcile_payments"
    assert rows()["expire-reservations"][1] == 15
