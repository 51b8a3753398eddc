"""Storefront pages, mounted at the site root by ``config.urls``."""

from django.urls import path

from storefront import views

app_name = "storefront"

urlpatterns = [
    path("", views.product_list, name="products"),
    path("products/<str:sku>/", views.product_detail, name="product"),
    path("cart/", views.cart_page, name="cart"),
    path("cart/add/", views.cart_add, name="cart-add"),
    path("waitlist/join/", views.waitlist_join, name="waitlist-join"),
    path("waitlist/leave/", views.waitlist_leave, name="waitlist-leave"),
    path("checkout/", views.checkout_page, name="checkout"),
    path("orders/lookup/", views.order_lookup_page, name="order-lookup"),
    path("orders/<uuid:order_id>/", views.order_page, name="order"),
]
