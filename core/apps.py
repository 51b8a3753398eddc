from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Shared plumbing (error envelope, pagination, permissions, job runner, logging,
    metrics, admin bases). It imports no domain app."""

    name = "core"
