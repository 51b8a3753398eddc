"""A page that fails, to see the storefront's 500 page (the shop's own URLs otherwise)."""

from django.http import HttpRequest, HttpResponse
from django.urls import include, path


def boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("secret internals")


urlpatterns = [
    path("boom/", boom),
    path("", include("config.urls")),
]
