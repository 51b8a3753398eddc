from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Shared plumbing (error envelope, pagination, permissions, job runner, logging,
    metrics, admin bases). It imports no domain app."""

    name = "core"

    def ready(self) -> None:
        # Loads the metrics in every process that sets Django up, so each labelled
        # counter's known values are exported at 0 from the first scrape.
        from core import metrics  # noqa: F401
