"""Plumbing shared by the background cleanup jobs (expiry, abandon, orphans, reconcile).

A job is a loop of short batches. Each batch is one or more short transactions that take
their rows with ``SELECT ... FOR UPDATE SKIP LOCKED``, so any number of Celery workers
(and an operator's ``manage.py`` command) can sweep at the same time without waiting for
shoppers or for each other. A run stops when a batch finds nothing left to do or after
``max_batches`` batches; in the latter case ``JobRun.more`` tells the Celery task to
enqueue itself again, so a backlog drains in bounded slices instead of one long task.

Every job is idempotent: an item is acted on only if it still qualifies under its row
lock, so a task that runs twice (a redelivery after a killed worker, two beat ticks)
does the work once.

The functions here are the only loop; ``inventory.cleanup``, ``checkout.cleanup`` and
``checkout.orphans`` describe the batches, and the Celery tasks and ``manage.py`` commands
are thin wrappers around them. The registry at the end lists every job (``ops`` fills it).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from celery.exceptions import SoftTimeLimitExceeded

logger = logging.getLogger("jobs")

# Raised into a running task by Celery; a job's per-item error handling must let it pass.
NEVER_SWALLOWED: tuple[type[BaseException], ...] = (SoftTimeLimitExceeded,)

_MAX_FAILED_IDS = 50  # enough to point an operator at the rows; the logs have every one


@dataclass
class Batch:
    """What one batch saw and did.

    ``seen`` is the number of candidates the batch took up (0 means nothing is left that
    is not locked by someone else, and ends the run); ``exhausted`` says the batch took
    up everything that was left (it found fewer than a full batch), which also ends the
    run without one more empty query; ``done`` the items changed; ``skipped`` candidates
    that were busy (locked by a shopper or another worker) or no longer qualified under
    the lock; ``errors`` items whose change failed and was rolled back.
    """

    seen: int
    exhausted: bool = False
    done: int = 0
    skipped: int = 0
    errors: int = 0
    failed: list[str] = field(default_factory=list)  # ids of the items in ``errors``


@dataclass
class JobRun:
    """The outcome of one run of a job (one task execution or one command)."""

    job: str
    done: int = 0
    skipped: int = 0
    errors: int = 0
    batches: int = 0
    more: bool = False  # stopped at max_batches while the last batch still found work
    seconds: float = 0.0
    failed_ids: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class Job:
    """A cleanup job as the commands and ``cleanup`` see it: how to count what is due
    (``--dry-run``) and how to run it."""

    name: str
    noun: str  # what ``done`` counts: "reservations", "carts", "payments"
    done_verb: str  # "expired"
    dry_verb: str  # "would expire"
    count: Callable[[], int]
    run: Callable[..., JobRun]  # (*, batch_size, max_batches, actor, on_batch) -> JobRun


def run_batches(
    job: str,
    step: Callable[[], Batch],
    *,
    max_batches: int | None,
    on_batch: Callable[[JobRun, Batch], None] | None = None,
) -> JobRun:
    """Calls ``step`` until it finds nothing left (``seen == 0`` or ``exhausted``) or
    ``max_batches`` batches ran (``None``: no limit); in the latter case ``more`` is set.
    Logs one ``job.finished`` line with the totals."""
    if max_batches is not None and max_batches < 1:
        raise ValueError("max_batches must be at least 1")
    run = JobRun(job=job)
    started = time.monotonic()
    try:
        while max_batches is None or run.batches < max_batches:
            batch = step()
            if batch.seen == 0:
                break
            run.batches += 1
            run.done += batch.done
            run.skipped += batch.skipped
            run.errors += batch.errors
            run.failed_ids.extend(batch.failed[: max(0, _MAX_FAILED_IDS - len(run.failed_ids))])
            if on_batch is not None:
                on_batch(run, batch)
            if batch.exhausted:
                break
        else:
            run.more = True
    finally:
        run.seconds = time.monotonic() - started
        logger.info(
            "job.finished",
            extra={
                "event": "job.finished",
                "job": job,
                "done": run.done,
                "skipped": run.skipped,
                "errors": run.errors,
                "batches": run.batches,
                "more": run.more,
                "seconds": round(run.seconds, 3),
            },
        )
    return run


def run_task(task, job: Job, *, actor: str) -> dict[str, object]:
    """The body of every cleanup task: one bounded run with the batch settings, then, if a
    backlog remains (or the soft time limit cut the run short), the task enqueues itself
    again so the backlog drains in bounded slices. Returns the run's totals."""
    from django.conf import settings

    try:
        run = job.run(
            batch_size=settings.CLEANUP_BATCH_SIZE,
            max_batches=settings.CLEANUP_MAX_BATCHES_PER_RUN,
            actor=actor,
        )
    except SoftTimeLimitExceeded:
        # The batch in flight rolled back; what committed stays done. Carry on in a new
        # task rather than failing this one.
        logger.warning("job.time_limit", extra={"event": "job.time_limit", "job": job.name})
        task.apply_async()
        return {"job": job.name, "more": True, "time_limit": True}
    if run.more:
        task.apply_async()
    return run.as_dict()


# --- The registry --------------------------------------------------------------------
# The apps that own cleanup jobs sit at different layers; ``ops`` (the top layer, which
# may import them all) registers the full list at start-up, in the order ``manage.py
# cleanup`` runs them. Lower layers (an admin action of inventory or payments) find a job
# here by name instead of importing the app above them.
_registered: tuple[Job, ...] = ()


def register_jobs(jobs: tuple[Job, ...]) -> None:
    """Sets the cleanup jobs, in running order (``ops.apps`` calls it once)."""
    global _registered
    names = [job.name for job in jobs]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate job names: {names}")
    _registered = tuple(jobs)


def registered_jobs() -> tuple[Job, ...]:
    """Every cleanup job, in the order ``manage.py cleanup`` runs them."""
    if not _registered:
        raise RuntimeError("no cleanup jobs registered: is the 'ops' app installed?")
    return _registered


def registered_job(name: str) -> Job:
    for job in registered_jobs():
        if job.name == name:
            return job
    raise KeyError(name)


def run_cleanup(*, actor: str) -> list[tuple[str, int, int]]:
    """Runs every cleanup job once, as ``manage.py cleanup`` does, each in bounded
    batches. Returns ``(job, done, errors)`` per job."""
    from django.conf import settings

    results = []
    for job in registered_jobs():
        run = job.run(
            batch_size=settings.CLEANUP_BATCH_SIZE,
            max_batches=settings.CLEANUP_MAX_BATCHES_PER_RUN,
            actor=actor,
        )
        results.append((job.name, run.done, run.errors))
    return results
