"""Admin building blocks shared by every app: read-only model admins and inlines (rows
written only by services), links between change pages, the actor of an admin action."""

from __future__ import annotations

from datetime import datetime

import pycountry
from django.contrib import admin
from django.contrib.admin import helpers
from django.contrib.auth import get_permission_codename
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe


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


# Field of the confirmation page that says the person confirmed (Django's own
# ``delete_selected`` uses ``post``).
CONFIRMED_FIELD = "confirmed"


def action_confirmed(request: HttpRequest) -> bool:
    """True when an admin action is posted from its confirmation page."""
    return request.POST.get(CONFIRMED_FIELD) == "yes"


def confirmation_page(
    model_admin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet,
    *,
    action: str,
    title: str,
    effects: list[str],
    objects: list[str] | None = None,
    note: str | None = None,
    button: str = "Yes, I'm sure",
    destructive: bool = True,
) -> TemplateResponse:
    """Django's intermediate page for an action: what it will do (``effects``) to which
    rows (``objects``, default ``str`` of each selected row), and a button that posts the
    same action and selection again with ``confirmed=yes``. ``note`` (a label) adds a
    free-text field posted as ``note``."""
    opts = model_admin.model._meta
    rows = list(queryset)
    context = {
        **model_admin.admin_site.each_context(request),
        "title": title,
        "subtitle": None,
        "opts": opts,
        "app_label": opts.app_label,
        "action": action,
        "effects": effects,
        "objects": objects if objects is not None else [str(row) for row in rows],
        "selected": [str(row.pk) for row in rows],
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "confirmed_field": CONFIRMED_FIELD,
        "note_label": note,
        "button": button,
        "destructive": destructive,
        "changelist_url": reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"),
    }
    request.current_app = model_admin.admin_site.name
    return TemplateResponse(request, "admin/shop_confirm_action.html", context)


def countdown(expires_at: datetime | None, *, now: datetime | None = None) -> str:
    """Time left until ``expires_at`` as ``4m 12s`` (``lapsed 1m 3s ago`` once past)."""
    if expires_at is None:
        return "-"
    seconds = int((expires_at - (now or timezone.now())).total_seconds())
    minutes, secs = divmod(abs(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    text = f"{hours}h {minutes}m {secs}s" if hours else f"{minutes}m {secs}s"
    if seconds < 0:
        return format_html('<span class="shop-countdown-lapsed">lapsed {} ago</span>', text)
    return text


ADDRESS_LINES = (("name",), ("line1",), ("line2",), ("postal_code", "city"), ("country",))


def _country(code: object) -> str:
    country = pycountry.countries.get(alpha_2=str(code)) if code else None
    return f"{country.name} ({code})" if country is not None else str(code)


def address_html(address: object) -> str:
    """An address (the checkout's JSON: name, line1, line2, postal_code, city, country) as
    a postal address block; keys it does not know are listed after it, so nothing is
    hidden."""
    if not address:
        return "-"
    if not isinstance(address, dict):
        return format_html("<address class='shop-address'>{}</address>", address)
    values = {**address, "country": _country(address.get("country"))}
    known = {key for line in ADDRESS_LINES for key in line}
    lines = [" ".join(str(values[k]) for k in line if values.get(k)) for line in ADDRESS_LINES]
    lines += [f"{key}: {value}" for key, value in address.items() if key not in known and value]
    body = format_html_join(mark_safe("<br>"), "{}", ((line,) for line in lines if line))
    return format_html("<address class='shop-address'>{}</address>", body)


def seconds(value: datetime | None) -> str:
    """A time with seconds, in the shop's time zone (``2026-11-30 10:58:07 UTC``)."""
    if value is None:
        return "-"
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S %Z")


def titled_filter(title: str, base: type = admin.ChoicesFieldListFilter) -> type:
    """A field list filter under its own title (two filters on fields both named
    ``status`` would otherwise both read "By status")."""

    class TitledFilter(base):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)
            self.title = title

    TitledFilter.__name__ = f"{base.__name__}_{title.replace(' ', '_')}"
    return TitledFilter
