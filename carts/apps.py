from django.apps import AppConfig


class CartsConfig(AppConfig):
    name = "carts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from carts.waitlist_hooks import carts_open_for_offers, put_offered_lines
        from inventory.services import register_waitlist_carts

        register_waitlist_carts(gate=carts_open_for_offers, sink=put_offered_lines)
