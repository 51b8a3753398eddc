from django.apps import AppConfig


class StorefrontConfig(AppConfig):
    """The shopper pages (templates/storefront); they talk to the same REST API."""

    name = "storefront"
