from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from core.views import healthz
from ops.metrics_view import metrics_view

api_v1 = [
    path("", include("inventory.urls")),
    path("", include("carts.urls")),
    path("", include("checkout.urls")),
    path("", include("orders.urls")),
]

urlpatterns = [
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("metrics", metrics_view, name="prometheus-django-metrics"),
    path("", include("storefront.urls")),
]
