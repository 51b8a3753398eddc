"""Staff changes of stock in the admin (SPEC §13 "Stock adjustments"): set or adjust
``on_hand`` of one stock level with a reason, import stock levels in bulk from CSV or
XLSX (django-import-export: upload, preview, confirm), and the stock ledger.

Every change goes through ``inventory.services.set_stock`` / ``adjust_stock``, which lock
the row, refuse an ``on_hand`` below ``reserved`` (``StockBelowReserved``) and write the
ledger entry. An import applies row by row, each in its own transaction: a refused row
is reported with its reason (as "skipped") and the others apply.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from import_export import fields, resources
from import_export.admin import ImportMixin
from import_export.formats.base_formats import CSV, XLSX
from import_export.forms import ConfirmImportForm, ImportForm
from import_export.results import RowResult

from core.admin import ReadOnlyAdmin, ReadOnlyInline, admin_link, staff_actor
from core.errors import ApplicationError
from inventory import selectors, services
from inventory.errors import StockBelowReserved
from inventory.models import Product, StockLedgerEntry, StockLevel

MAX_ON_HAND = 1_000_000_000


# --- Import -------------------------------------------------------------------------


def _on_hand(value: Any) -> int:
    """A cell's on_hand: a whole number 0..MAX_ON_HAND (XLSX cells may be floats)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value if value is not None else "").strip()
    if not text.isdigit():
        raise ValidationError({"on_hand": f"not a whole number ≥ 0: {text!r}"})
    number = int(text)
    if number > MAX_ON_HAND:
        raise ValidationError({"on_hand": f"above the maximum of {MAX_ON_HAND}"})
    return number


class StockLevelResource(resources.ModelResource):
    """Rows ``sku, warehouse, on_hand`` (warehouse: a code; blank = the default one).

    An unknown sku or warehouse, or an on_hand that is not a whole number, makes the row
    invalid (the file must be fixed). A row that would put on_hand below what is reserved
    is refused: shown as skipped with its reason in ``outcome``, the others apply."""

    sku = fields.Field(attribute="product__sku", column_name="sku", readonly=True)
    warehouse = fields.Field(attribute="warehouse__code", column_name="warehouse", readonly=True)
    on_hand = fields.Field(attribute="on_hand", column_name="on_hand", readonly=True)
    outcome = fields.Field(attribute="import_outcome", column_name="outcome", readonly=True)

    class Meta:
        model = StockLevel
        fields = ("sku", "warehouse", "on_hand", "outcome")
        import_id_fields = ()
        # Each row is its own set_stock transaction: the rest applies when one is refused,
        # and no lock outlives its row.
        use_transactions = False
        skip_unchanged = False
        report_skipped = True

    def __init__(self, *, actor: str = "admin:import", reason: str = "") -> None:
        super().__init__()
        self.actor = actor
        self.reason = reason

    def get_or_init_instance(self, instance_loader: Any, row: dict) -> tuple[StockLevel, bool]:
        sku = str(row.get("sku") or "").strip()
        code = str(row.get("warehouse") or "").strip() or None
        product = Product.objects.filter(sku=sku).first()
        if product is None:
            raise ValidationError({"sku": f"no product with sku {sku!r}"})
        try:
            warehouse = selectors.warehouse_get(code=code)
        except ApplicationError:
            raise ValidationError({"warehouse": f"no warehouse {code!r}"}) from None
        level = StockLevel.objects.filter(product=product, warehouse=warehouse).first()
        new = level is None
        if new:
            level = StockLevel(product=product, warehouse=warehouse, on_hand=0, reserved=0)
        level.product, level.warehouse = product, warehouse
        level.import_outcome = ""
        level.import_refused = False
        return level, new

    def import_instance(self, instance: StockLevel, row: dict, **kwargs: Any) -> None:
        instance.import_target = _on_hand(row.get("on_hand"))

    def save_instance(
        self, instance: StockLevel, is_create: bool, row: dict, **kwargs: Any
    ) -> None:
        target = instance.import_target
        if kwargs.get("dry_run"):
            refusal = selectors.set_stock_refusal(stock_level=instance, on_hand=target)
        else:
            refusal = None
            try:
                saved = services.set_stock(
                    product=instance.product,
                    warehouse=instance.warehouse,
                    on_hand=target,
                    actor=self.actor,
                    reason=self.reason,
                )
                instance.pk = saved.pk
            except StockBelowReserved as exc:
                refusal = (
                    f"refused: on_hand {target} is below the {exc.details['reserved']} reserved"
                )
        if refusal:
            instance.import_refused = True
            instance.import_outcome = refusal
        else:
            before = instance.on_hand
            instance.on_hand = target
            instance.import_outcome = "unchanged" if before == target else f"{target - before:+d}"

    def after_import_row(self, row: dict, row_result: RowResult, **kwargs: Any) -> None:
        instance = row_result.instance
        if instance is not None and getattr(instance, "import_refused", False):
            row_result.import_type = RowResult.IMPORT_TYPE_SKIP


class StockImportForm(ImportForm):
    reason = forms.CharField(
        max_length=255, help_text="Why (kept in the stock ledger with every change)."
    )


class StockConfirmImportForm(ConfirmImportForm):
    reason = forms.CharField(max_length=255, widget=forms.HiddenInput())


class StockImportMixin(ImportMixin):
    """Import of stock levels: CSV or XLSX, previewed, applied through the service."""

    resource_classes = [StockLevelResource]
    import_form_class = StockImportForm
    confirm_form_class = StockConfirmImportForm
    formats = [CSV, XLSX]

    def has_import_permission(self, request: HttpRequest) -> bool:
        return self.has_act_permission(request)

    def get_import_resource_kwargs(self, request: HttpRequest, **kwargs: Any) -> dict:
        form = kwargs.get("form")
        reason = getattr(form, "cleaned_data", {}).get("reason", "")
        return {"actor": staff_actor(request), "reason": reason}

    def get_import_data_kwargs(self, **kwargs: Any) -> dict:
        # The retained instance tells after_import_row which rows were refused.
        data = super().get_import_data_kwargs(**kwargs)
        data["retain_instance_in_row_result"] = True
        return data

    def get_confirm_form_initial(self, request: HttpRequest, import_form: Any) -> dict:
        initial = super().get_confirm_form_initial(request, import_form)
        if import_form is not None:
            initial["reason"] = import_form.cleaned_data["reason"]
        return initial

    def add_success_message(self, result: Any, request: HttpRequest) -> None:
        refused = [
            f"line {number}: {row.instance}: {row.instance.import_outcome}"
            for number, row in enumerate(result.rows, start=2)
            if row.import_type == RowResult.IMPORT_TYPE_SKIP and row.instance is not None
        ]
        applied = sum(
            1
            for row in result.rows
            if row.import_type in (RowResult.IMPORT_TYPE_NEW, RowResult.IMPORT_TYPE_UPDATE)
        )
        self.message_user(request, f"Imported {applied} stock level(s).", messages.SUCCESS)
        if refused:
            self.message_user(
                request, f"Refused {len(refused)}: " + "; ".join(refused), messages.WARNING
            )


# --- Set or adjust one stock level ----------------------------------------------------


class StockAdjustForm(forms.Form):
    MODES = (
        ("set", "Set on hand to"),
        ("add", "Add to on hand"),
        ("remove", "Remove from on hand"),
    )

    mode = forms.ChoiceField(choices=MODES, initial="set", widget=forms.RadioSelect)
    quantity = forms.IntegerField(min_value=0, max_value=MAX_ON_HAND)
    reason = forms.CharField(
        max_length=255, help_text="Why (kept in the stock ledger), e.g. “stock count”."
    )


class StockAdjustMixin:
    """A "Set or adjust on hand" page per stock level (``<id>/adjust/``)."""

    change_form_template = "admin/inventory/stocklevel/change_form.html"

    def get_urls(self) -> list:
        info = (self.opts.app_label, self.opts.model_name)
        own = [
            path(
                "<path:object_id>/adjust/",
                self.admin_site.admin_view(self.adjust_view),
                name=f"{info[0]}_{info[1]}_adjust",
            )
        ]
        return own + super().get_urls()

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict | None = None,
    ) -> HttpResponse:
        context = {"has_act_permission": self.has_act_permission(request), **(extra_context or {})}
        return super().change_view(request, object_id, form_url, context)

    def adjust_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if not self.has_act_permission(request):
            raise PermissionDenied
        level = get_object_or_404(
            StockLevel.objects.select_related("product", "warehouse"), pk=object_id
        )
        form = StockAdjustForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            actor, reason = staff_actor(request), data["reason"]
            try:
                if data["mode"] == "set":
                    row = services.set_stock(
                        product=level.product,
                        warehouse=level.warehouse,
                        on_hand=data["quantity"],
                        actor=actor,
                        reason=reason,
                    )
                else:
                    sign = 1 if data["mode"] == "add" else -1
                    row = services.adjust_stock(
                        product=level.product,
                        warehouse=level.warehouse,
                        delta=sign * data["quantity"],
                        actor=actor,
                        reason=reason,
                    )
            except StockBelowReserved as exc:
                form.add_error(
                    NON_FIELD_ERRORS,
                    f"Refused: on hand would be {exc.details['on_hand']}, below the "
                    f"{exc.details['reserved']} reserved.",
                )
            else:
                self.message_user(
                    request,
                    f"{level}: on hand is now {row.on_hand} ({row.reserved} reserved).",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(
                    reverse("admin:inventory_stocklevel_change", args=[level.pk])
                )
        context = {
            **self.admin_site.each_context(request),
            "title": f"Set or adjust on hand: {level}",
            "opts": self.opts,
            "original": level,
            "form": form,
            "ledger": list(level.ledger_entries.order_by("-created_at", "-id")[:10]),
        }
        return TemplateResponse(request, "admin/inventory/stocklevel/adjust.html", context)


# --- Ledger ---------------------------------------------------------------------------


@admin.register(StockLedgerEntry)
class StockLedgerEntryAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "stock_level_link",
        "delta_shown",
        "on_hand_after",
        "reason",
        "actor",
    )
    list_filter = ("stock_level__warehouse", "created_at")
    search_fields = ("stock_level__product__sku", "reason", "actor")
    list_select_related = ("stock_level__product", "stock_level__warehouse")
    date_hierarchy = "created_at"

    @admin.display(description="stock level", ordering="stock_level__product__sku")
    def stock_level_link(self, obj: StockLedgerEntry) -> str:
        return admin_link(obj.stock_level)

    @admin.display(description="delta", ordering="delta")
    def delta_shown(self, obj: StockLedgerEntry) -> str:
        return f"{obj.delta:+d}"


class StockLedgerInline(ReadOnlyInline):
    model = StockLedgerEntry
    verbose_name_plural = "stock ledger (latest first)"
    fields = ("created_at", "delta", "on_hand_after", "reason", "actor")
    readonly_fields = fields
    show_change_link = False
    ordering = ("-created_at", "-id")
