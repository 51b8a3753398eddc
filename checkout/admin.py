"""Staff views of the checkout: carts with the checkout actions, idempotency records.

The cart actions call the checkout services (``cancel_checkout``, ``abandon_checkout``)
and leave alone every cart whose payment is in flight or captured without an order:
the confirm, or reconciliation, still needs its reservations.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import Exists, OuterRef, QuerySet
from django.http import HttpRequest

from carts.admin import CartAdmin
from carts.models import Cart, CartStatus
from checkout.models import IdempotencyKey
from checkout.services import abandon_checkout, cancel_checkout
from core.admin import ReadOnlyAdmin, staff_actor
from core.errors import ApplicationError
from payments.models import Payment

# Label of carts_abandoned_total and of the cart status log line for staff abandons.
STAFF_ABANDON_REASON = "staff"


@admin.register(Cart)
class CheckoutCartAdmin(CartAdmin):
    actions = ["cancel_checkout", "abandon_checkout"]

    def _in_checkout_not_paying(self, queryset: QuerySet) -> tuple[list, int]:
        """The selected carts in checkout that no confirm or reconciliation is using (a
        payment in flight, or captured without an order yet), and how many were left."""
        paying = Payment.objects.holding_cart().filter(cart_id=OuterRef("id"))
        rows = list(
            queryset.order_by()
            .annotate(paying=Exists(paying))
            .values_list("id", "status", "paying")
        )
        due = [pk for pk, status, busy in rows if status == CartStatus.CHECKOUT and not busy]
        return due, len(rows) - len(due)

    @admin.action(
        description="Cancel checkout (release reservations, cart back to active)",
        permissions=["act"],
    )
    def cancel_checkout(self, request: HttpRequest, queryset: QuerySet) -> None:
        due, left = self._in_checkout_not_paying(queryset)
        done, failed = 0, []
        for cart_id in due:
            try:
                cancel_checkout(cart_id=cart_id, actor=staff_actor(request))
                done += 1
            except ApplicationError as exc:
                failed.append(f"{str(cart_id)[:8]}: {exc.message}")
        self._report(request, "Cancelled the checkout of", done, left, failed)

    @admin.action(
        description="Abandon checkout (release reservations, cart abandoned)",
        permissions=["act"],
    )
    def abandon_checkout(self, request: HttpRequest, queryset: QuerySet) -> None:
        due, left = self._in_checkout_not_paying(queryset)
        done, failed = 0, []
        for cart_id in due:
            try:
                if abandon_checkout(
                    cart_id=cart_id, reason=STAFF_ABANDON_REASON, actor=staff_actor(request)
                ):
                    done += 1
                else:
                    left += 1
            except ApplicationError as exc:
                failed.append(f"{str(cart_id)[:8]}: {exc.message}")
        self._report(request, "Abandoned", done, left, failed)

    def _report(
        self, request: HttpRequest, verb: str, done: int, left: int, failed: list[str]
    ) -> None:
        self.message_user(request, f"{verb} {done} cart(s).", messages.SUCCESS)
        if left:
            self.message_user(
                request,
                f"Left {left} cart(s) alone: not in checkout, or a payment is in flight or "
                "captured without an order (reconciliation needs its reservations).",
                messages.WARNING,
            )
        if failed:
            self.message_user(request, "Failed: " + "; ".join(failed), messages.ERROR)


@admin.register(IdempotencyKey)
class IdempotencyKeyAdmin(ReadOnlyAdmin):
    list_display = ("key", "cart_id", "order", "response_status", "created_at")
    list_filter = ("response_status", "created_at")
    search_fields = ("key", "cart__id", "order__number")
    list_select_related = ("order",)
