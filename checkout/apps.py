from django.apps import AppConfig


class CheckoutConfig(AppConfig):
    name = "checkout"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Orders sit below checkout: an order line whose hold was lost is held again
        # through the checkout's one rule for live holds (``checkout.holds``).
        from checkout.holds import hold_order_lines
        from orders.services import register_line_holder

        register_line_holder(hold_order_lines)
