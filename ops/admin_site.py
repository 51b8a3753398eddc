"""The shop's admin site: Django's admin whose index opens on the overview
(``ops.dashboard``) above the list of apps. Installed as ``ops.admin_site.ShopAdminConfig``
in place of ``django.contrib.admin`` (Django's documented way to replace the default
site), so every ``admin.register`` of the apps lands on it."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.http import HttpRequest
from django.template.response import TemplateResponse


class ShopAdminSite(admin.AdminSite):
    site_header = "Shop administration"
    site_title = "Shop admin"
    index_title = "Overview"
    index_template = "admin/shop_index.html"

    def index(self, request: HttpRequest, extra_context: dict | None = None) -> TemplateResponse:
        # Imported here: this module is loaded while the app registry is being built,
        # before models can be imported.
        from ops.dashboard import overview

        context = {"overview": overview(), **(extra_context or {})}
        return super().index(request, context)


class ShopAdminConfig(AdminConfig):
    default_site = "ops.admin_site.ShopAdminSite"
