"""What every ops command of SPEC §9 shares: exit codes, ``--help`` epilog, option
parsing, the progress bar and the one-line summary. The commands themselves (in
``inventory/management/commands`` and ``checkout/management/commands``) only name the
job they run; ``docs/commands.md`` documents them all.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Callable, Iterator

from django.core.management.base import BaseCommand, CommandError, DjangoHelpFormatter
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from core.jobs import Batch, Job, JobRun

logger = logging.getLogger("jobs.commands")

EXIT_OK = 0
EXIT_ERRORS = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_REFUSED = 4

EXIT_CODES_HELP = """exit codes:
  0  done (also: nothing to do, or a dry run)
  1  errors: some items could not be changed (see the log), or the command failed
  2  usage: an unknown option or an invalid value
  3  not found: the reservation or order named does not exist
  4  refused: the reservation cannot be released (confirmed: cancel the order instead)"""


class _HelpFormatter(DjangoHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Django's option order, with the description and epilog printed as written."""


def positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


class OpsCommand(BaseCommand):
    """A command whose ``--help`` ends with the exit codes."""

    def create_parser(self, prog_name: str, subcommand: str, **kwargs):
        parser = super().create_parser(prog_name, subcommand, epilog=EXIT_CODES_HELP, **kwargs)
        parser.formatter_class = _HelpFormatter
        return parser

    def add_progress_argument(self, parser) -> None:
        parser.add_argument(
            "--no-progress",
            action="store_true",
            help="Never show the progress bar (it is shown only when stderr is a terminal).",
        )

    def progress_enabled(self, options: dict) -> bool:
        stream = getattr(self.stderr, "_out", sys.stderr)
        return not options.get("no_progress") and bool(getattr(stream, "isatty", bool)())

    def progress_bar(self, *, total: int | None, desc: str, unit: str, enabled: bool) -> tqdm:
        return tqdm(
            total=total,
            desc=desc,
            unit=f" {unit}",
            file=getattr(self.stderr, "_out", sys.stderr),
            disable=not enabled,
            dynamic_ncols=True,
            leave=True,
        )


@contextlib.contextmanager
def logs_above_the_bar(bar: tqdm) -> Iterator[None]:
    """While ``bar`` is shown, the root logger's console handlers write through
    ``tqdm.write`` (``logging_redirect_tqdm``): the bar is cleared, the log line printed
    on a line of its own and the bar drawn again below it, instead of the line being
    appended to the bar's. A hidden bar changes nothing."""
    if bar.disable:
        yield
        return
    with logging_redirect_tqdm(tqdm_class=tqdm):
        yield


def add_job_arguments(parser) -> None:
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="Count what would be done; change nothing.",
    )
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        default=None,
        metavar="N",
        help="Items per batch (default: the CLEANUP_BATCH_SIZE setting).",
    )
    parser.add_argument(
        "--max-batches",
        type=positive_int,
        default=None,
        metavar="N",
        help="Stop after N batches (default: run until nothing is left).",
    )


def summary_line(job: Job, run: JobRun) -> str:
    line = (
        f"{job.name}: {job.done_verb} {run.done} {job.noun} in {run.batches} "
        f"batch{'es' if run.batches != 1 else ''}, {run.skipped} skipped (busy), "
        f"{run.errors} error{'s' if run.errors != 1 else ''} ({run.seconds:.2f} s)"
    )
    if run.more:
        line += "; more remain (stopped at --max-batches)"
    return line


def dry_run_line(job: Job, count: int) -> str:
    return f"{job.name}: {job.dry_verb} {count} {job.noun} (dry run, nothing changed)"


def execute_job(command: OpsCommand, job: Job, options: dict, *, actor: str) -> tuple[str, bool]:
    """Runs (or, with ``--dry-run``, counts) one job for a command; returns its summary
    line and whether it went without errors. A job that fails outright is logged and
    reported as an error; the caller decides the exit code."""
    from django.conf import settings

    if options["dry_run"]:
        return dry_run_line(job, job.count()), True
    enabled = command.progress_enabled(options)
    total = job.count() if enabled else None
    bar = command.progress_bar(total=total, desc=job.name, unit=job.noun, enabled=enabled)
    on_batch: Callable[[JobRun, Batch], None] = lambda run, batch: bar.update(batch.done)  # noqa: E731
    try:
        with logs_above_the_bar(bar):
            run = job.run(
                batch_size=options["batch_size"] or settings.CLEANUP_BATCH_SIZE,
                max_batches=options["max_batches"],
                actor=actor,
                on_batch=on_batch,
            )
    except Exception as exc:
        logger.exception("job.failed", extra={"event": "job.failed", "job": job.name})
        return f"{job.name}: failed: {exc.__class__.__name__}: {exc}", False
    finally:
        bar.close()
    line = summary_line(job, run)
    if run.failed_ids:
        line += f"; failed: {', '.join(run.failed_ids)}"
    return line, run.errors == 0


class JobCommand(OpsCommand):
    """``manage.py <job>``: one cleanup job, run until nothing is left."""

    job: Job

    def add_arguments(self, parser) -> None:
        add_job_arguments(parser)
        self.add_progress_argument(parser)

    def handle(self, *args, **options) -> None:
        line, ok = execute_job(self, self.job, options, actor=f"command:{self.job.name}")
        self.stdout.write(line)
        if not ok:
            raise CommandError(f"{self.job.name} had errors; see the log", returncode=EXIT_ERRORS)
