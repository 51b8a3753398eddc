"""Admin building blocks shared by every app: read-only model admins and inlines (rows
written only by services), links between change pages, the actor of an admin action."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import get_permission_codename
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html


def staff_actor(request: HttpRequest) -> str:
    """The actor recorded in the reservation event log for an admin action."""
    return f"admin:{request.user.get_username()}"


def admin_link(obj: object, label: object | None = None) -> str:
    """A link to ``obj``'s change page (empty for ``None``)."""
    if obj is None:
        return "-"
    meta = obj._meta
    url = reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, label if label is not None else obj)


def cart_admin_link(cart_id: object | None) -> str:
    """A link to a cart's change page by id (no query), labelled with its id's start."""
    if cart_id is None:
        return "-"
    url = reverse("admin:carts_cart_change", args=[cart_id])
    return format_html('<a href="{}">{}</a>', url, str(cart_id)[:8])


class ReadOnlyInline(admin.TabularInline):
    """An inline that shows rows and never adds, changes or deletes them."""

    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: object | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object | None = None) -> bool:
        return False


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written only by services: viewable, never added, edited or deleted here.

    Actions that call a service are marked ``permissions=["act"]``: they need the model's
    ``change`` permission (the row itself is still never edited through a form)."""

    def has_act_permission(self, request: HttpRequest) -> bool:
        opts = self.opts
        codename = get_permission_codename("change", opts)
        return request.user.has_perm(f"{opts.app_label}.{codename}")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object | None = None) -> bool:
        return False


class LapsedFilter(admin.SimpleListFilter):
    """Expiry: ``yes`` = expiry in the past, ``no`` = still running (rows without one are
    in neither)."""

    title = "expired (past expiry)"
    parameter_name = "expired"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin):
        return (("yes", "Yes"), ("no", "No"))

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "yes":
            return queryset.filter(expires_at__lte=timezone.now())
        if self.value() == "no":
            return queryset.filter(expires_at__gt=timezone.now())
        return queryset
