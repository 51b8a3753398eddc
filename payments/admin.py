"""Staff views of payments.

A payment is the record of what the gateway did; only the staff follow-up fields
(``needs_attention``, ``attention_reason``) are editable. A payment captured without an
order (money taken, order not written), a refund owed (``refund_pending``) and a payment
left in flight by an interrupted confirm are each one filter away, and the reconcile
action runs the same job as beat (which also resolves interrupted payments with the
gateway and retries refunds that are due).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from core.admin import ReadOnlyAdmin, admin_link, cart_admin_link, staff_actor
from core.jobs import registered_job
from payments.models import Payment


class CapturedWithoutOrderFilter(admin.SimpleListFilter):
    title = "captured without order"
    parameter_name = "captured_without_order"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin):
        return (("yes", "Yes — money taken, no order"),)

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "yes":
            return queryset.captured_without_order()
        return queryset


class InFlightFilter(admin.SimpleListFilter):
    """In flight now (a confirm is paying) or stale (left past the in-flight timeout by an
    interrupted confirm), as ``PaymentQuerySet`` defines them."""

    title = "in flight"
    parameter_name = "in_flight"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin):
        return (("now", "Now — a confirm is paying"), ("stale", "Stale — past the timeout"))

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "now":
            return queryset.in_flight()
        if self.value() == "stale":
            return queryset.stale_in_flight()
        return queryset


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "status",
        "amount",
        "currency",
        "method",
        "cart_link",
        "order_link",
        "needs_attention",
        "attempts",
        "error_code",
        "refunded_amount",
        "created_at",
        "captured_at",
    )
    list_filter = (
        "status",
        "needs_attention",
        CapturedWithoutOrderFilter,
        InFlightFilter,
        "gateway",
        "method",
        "created_at",
    )
    search_fields = (
        "id",
        "cart__id",
        "order__number",
        "payment_id",
        "authorization_id",
        "idempotency_key",
    )
    list_select_related = ("order",)
    date_hierarchy = "created_at"
    fields = (
        "id",
        "status",
        "needs_attention",
        "attention_reason",
        "cart_link",
        "order_link",
        "gateway",
        "method",
        "amount",
        "currency",
        "idempotency_key",
        "authorization_id",
        "payment_id",
        "attempts",
        "error_code",
        "error_message",
        "created_at",
        "updated_at",
        "authorized_at",
        "captured_at",
        "voided_at",
        "resolved_at",
        "refunded_amount",
        "refund_key",
        "refund_id",
        "refund_attempts",
        "refund_requested_at",
        "refund_next_attempt_at",
        "refunded_at",
    )
    readonly_fields = tuple(f for f in fields if f not in {"needs_attention", "attention_reason"})
    actions = ["reconcile_now"]

    def has_change_permission(self, request: HttpRequest, obj: object | None = None) -> bool:
        # Staff may mark a flagged payment as handled; everything else is read-only.
        return self.has_act_permission(request)

    @admin.display(description="cart")
    def cart_link(self, obj: Payment) -> str:
        return cart_admin_link(obj.cart_id)

    @admin.display(description="order", ordering="order__number")
    def order_link(self, obj: Payment) -> str:
        return admin_link(obj.order, obj.order.number if obj.order else None)

    @admin.action(
        description=(
            "Reconcile payments now (write orders of captured payments, resolve interrupted "
            "ones with the gateway, retry refunds due)"
        ),
        permissions=["act"],
    )
    def reconcile_now(self, request: HttpRequest, queryset: QuerySet) -> None:
        run = registered_job("reconcile_payments").run(
            batch_size=settings.CLEANUP_BATCH_SIZE,
            max_batches=settings.CLEANUP_MAX_BATCHES_PER_RUN,
            actor=staff_actor(request),
        )
        self.message_user(
            request,
            f"Reconciliation handled {run.done} payment(s) (orders written, interrupted "
            "payments resolved with the gateway, refunds retried, or flagged for attention); "
            "payments captured in the last minute are left to their own confirm.",
            messages.SUCCESS if not run.errors else messages.WARNING,
        )
