from django.apps import AppConfig


class InventoryConfig(AppConfig):
    name = "inventory"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from core import metrics
        from inventory.models import RELEASE_REASON_OTHER, ReleaseReason

        metrics.export_at_zero(
            metrics.reservations_released_total,
            reason=(*ReleaseReason.values, RELEASE_REASON_OTHER),
        )
