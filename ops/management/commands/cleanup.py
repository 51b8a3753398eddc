import time

from django.core.management.base import CommandError

from core.jobcommands import EXIT_ERRORS, OpsCommand, add_job_arguments, execute_job
from ops.jobs import ALL_JOBS


class Command(OpsCommand):
    help = (
        "Run every cleanup job once, until nothing is left, in this order: "
        + ", ".join(job.name for job in ALL_JOBS)
        + ". One summary line per job, then a total. A job that fails does not stop the "
        "others."
    )

    def add_arguments(self, parser) -> None:
        add_job_arguments(parser)
        self.add_progress_argument(parser)

    def handle(self, *args, **options) -> None:
        started = time.monotonic()
        failed = []
        for job in ALL_JOBS:
            line, ok = execute_job(self, job, options, actor="command:cleanup")
            self.stdout.write(line)
            if not ok:
                failed.append(job.name)
        mode = " (dry run, nothing changed)" if options["dry_run"] else ""
        self.stdout.write(
            f"cleanup: {len(ALL_JOBS)} jobs, {len(failed)} with errors"
            f"{mode} ({time.monotonic() - started:.2f} s)"
        )
        if failed:
            raise CommandError(f"errors in: {', '.join(failed)}", returncode=EXIT_ERRORS)
