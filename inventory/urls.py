"""Inventory routes (API.md "Catalog and stock" and "Reservations"), under /api/v1/.

Ids are captured as strings so that a malformed id answers with the resource's own
not-found code (PRODUCT_NOT_FOUND, RESERVATION_NOT_FOUND), as an unknown one does.
"""

from django.urls import path

from inventory import api

urlpatterns = [
    path("products/", api.ProductsApi.as_view(), name="products"),
    path("products/<str:product_id>/", api.ProductDetailApi.as_view(), name="product-detail"),
    path("warehouses/", api.WarehousesApi.as_view(), name="warehouses"),
    path("warehouses/<str:code>/", api.WarehouseDetailApi.as_view(), name="warehouse-detail"),
    path("inventory/stock/", api.StockApi.as_view(), name="inventory-stock"),
    path("inventory/stock/ledger/", api.StockLedgerApi.as_view(), name="inventory-stock-ledger"),
    path("inventory/availability/", api.AvailabilityApi.as_view(), name="inventory-availability"),
    path("inventory/reservations/", api.ReservationsApi.as_view(), name="reservations"),
    path(
        "inventory/reservations/<str:reservation_id>/",
        api.ReservationDetailApi.as_view(),
        name="reservation-detail",
    ),
    path(
        "inventory/reservations/<str:reservation_id>/extend/",
        api.ReservationExtendApi.as_view(),
        name="reservation-extend",
    ),
    path(
        "inventory/reservations/<str:reservation_id>/confirm/",
        api.ReservationConfirmApi.as_view(),
        name="reservation-confirm",
    ),
    path(
        "inventory/reservations/<str:reservation_id>/release/",
        api.ReservationReleaseApi.as_view(),
        name="reservation-release",
    ),
]
