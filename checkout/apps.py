from django.apps import AppConfig
from django.db.models.signals import post_migrate


class CheckoutConfig(AppConfig):
    name = "checkout"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from config.schedule import on_post_migrate

        # Creates the missing beat schedule rows after every migrate (config.schedule).
        post_migrate.connect(on_post_migrate, sender=self, dispatch_uid="checkout.schedule")
