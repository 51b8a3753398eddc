from django.urls import path

from carts import api, waitlist_api

urlpatterns = [
    path("carts/", api.CartCreateApi.as_view(), name="cart-create"),
    path("carts/<uuid:cart_id>/", api.CartDetailApi.as_view(), name="cart-detail"),
    path("carts/<uuid:cart_id>/items/", api.CartItemAddApi.as_view(), name="cart-item-add"),
    path(
        "carts/<uuid:cart_id>/items/<int:item_id>/",
        api.CartItemApi.as_view(),
        name="cart-item",
    ),
    path(
        "carts/<uuid:cart_id>/validate-stock/",
        api.CartValidateStockApi.as_view(),
        name="cart-validate-stock",
    ),
    path(
        "carts/<uuid:cart_id>/waitlist/",
        waitlist_api.CartWaitlistApi.as_view(),
        name="cart-waitlist",
    ),
    path(
        "carts/<uuid:cart_id>/waitlist/<int:entry_id>/",
        waitlist_api.CartWaitlistEntryApi.as_view(),
        name="cart-waitlist-entry",
    ),
]
