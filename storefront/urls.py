"""Storefront pages, mounted at the site root by ``config.urls``."""

from django.urls import path

from storefront import views

app_name = "storefront"

urlpatterns = [
    path("", views.product_list, name="products"),
    path("cart/", views.cart_page, name="cart"),
    path("checkout/", views.checkout_page, name="checkout"),
    path("orders/<uuid:order_id>/", views.order_page, name="order"),
]
