from core.jobcommands import OpsCommand
from ops.schedule import CREATED, SCHEDULE, UPDATED, sync_schedule


class Command(OpsCommand):
    help = (
        "Create the missing beat schedule rows of the cleanup jobs (migrate does this too). "
        "Rows that exist are kept as staff edited them, unless --force resets their "
        "interval, task and expiry to the *_INTERVAL_SECONDS settings (the 'enabled' flag "
        "is never changed): this is how a changed default reaches an existing deployment."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--force",
            action="store_true",
            help="Reset existing rows to the settings' intervals (overwrites admin edits).",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Show what would change; change nothing."
        )
        parser.add_argument(
            "--job",
            action="append",
            choices=[job.name for job in SCHEDULE],
            metavar="NAME",
            help="Only this job (repeatable). One of: " + ", ".join(job.name for job in SCHEDULE),
        )

    def handle(self, *args, **options) -> None:
        only = set(options["job"]) if options["job"] else None
        outcome = sync_schedule(force=options["force"], dry_run=options["dry_run"], only=only)
        every = {job.name: job.every for job in SCHEDULE}
        for name, what in outcome.items():
            self.stdout.write(f"  {name}: {what} (code default every {every[name]} s)")
        changed = sum(1 for what in outcome.values() if what in {CREATED, UPDATED})
        verb = "would change" if options["dry_run"] else "changed"
        self.stdout.write(f"sync_schedule: {verb} {changed} of {len(outcome)} jobs")
