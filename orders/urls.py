"""Orders routes (API.md "Orders"), under /api/v1/.

Ids are captured as strings so that a malformed id answers ORDER_NOT_FOUND, as an
unknown one does.
"""

from django.urls import path

from orders import api

urlpatterns = [
    path("orders/", api.OrderListApi.as_view(), name="orders"),
    path("orders/lookup/", api.OrderLookupApi.as_view(), name="order-lookup"),
    path("orders/<str:order_id>/", api.OrderDetailApi.as_view(), name="order-detail"),
    path("orders/<str:order_id>/cancel/", api.OrderCancelApi.as_view(), name="order-cancel"),
    path("orders/<str:order_id>/status/", api.OrderStatusApi.as_view(), name="order-status"),
    path("orders/<str:order_id>/notes/", api.OrderNoteApi.as_view(), name="order-notes"),
]
