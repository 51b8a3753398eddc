from django.urls import path

from checkout import api, confirm_api

urlpatterns = [
    path("carts/<uuid:cart_id>/checkout/", api.CheckoutApi.as_view(), name="checkout"),
    path(
        "carts/<uuid:cart_id>/checkout/confirm/",
        confirm_api.CheckoutConfirmApi.as_view(),
        name="checkout-confirm",
    ),
]
