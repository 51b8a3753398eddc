"""Storefront pages, mounted at the site root by ``config.urls``."""

from django.urls import path

from carts import storefront

app_name = "storefront"

urlpatterns = [
    path("", storefront.product_list, name="products"),
    path("cart/", storefront.cart_page, name="cart"),
    path("checkout/", storefront.checkout_page, name="checkout"),
    path("orders/<uuid:order_id>/", storefront.order_page, name="order"),
]
