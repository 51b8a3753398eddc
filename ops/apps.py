from django.apps import AppConfig, apps
from django.db.models.signals import post_migrate


class OpsConfig(AppConfig):
    """Cross-app operations: the cleanup job registry and its beat schedule, the
    scrape-time gauges of ``/metrics``, the ``cleanup`` / ``sync_schedule`` /
    ``list_reservations`` commands. The top layer: it may import every domain app."""

    name = "ops"

    def ready(self) -> None:
        from core.jobs import register_jobs
        from ops.jobs import ALL_JOBS
        from ops.schedule import on_post_migrate

        register_jobs(ALL_JOBS)
        # Creates the missing beat schedule rows after every migrate (ops.schedule). Sent
        # once per migrate for the app that owns the schedule tables (``ops`` has no
        # models, so Django sends it no post_migrate of its own).
        post_migrate.connect(
            on_post_migrate,
            sender=apps.get_app_config("django_celery_beat"),
            dispatch_uid="ops.schedule",
        )
