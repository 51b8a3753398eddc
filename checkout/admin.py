"""Staff views of the checkout: carts with the checkout actions, idempotency records.

The cart actions call the checkout services (``cancel_checkout``, ``abandon_checkout``)
and leave alone every cart whose payment is in flight or captured without an order:
the confirm, or reconciliation, still needs its reservations.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import Exists, OuterRef, QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

from carts.admin import CartAdmin
from carts.models import Cart, CartStatus
from checkout.models import IdempotencyKey
from checkout.orphans import orphaned_reservations
from checkout.services import abandon_checkout, cancel_checkout
from core.admin import ReadOnlyAdmin, action_confirmed, confirmation_page, staff_actor
from core.errors import ApplicationError
from inventory.admin import ReservationAdmin
from inventory.models import Reservation
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
    def cancel_checkout(self, request: HttpRequest, queryset: QuerySet) -> TemplateResponse | None:
        if not action_confirmed(request):
            return confirmation_page(
                self,
                request,
                queryset,
                action="cancel_checkout",
                title="Cancel checkouts",
                effects=[
                    "release the reservations of each selected cart in checkout, giving "
                    "their stock back;",
                    "put the cart back to active: the shopper keeps the cart and must start "
                    "checkout again;",
                    "leave carts not in checkout, or whose payment is in flight or captured "
                    "without an order, as they are.",
                ],
                objects=self._cart_lines(queryset),
                button="Yes, cancel these checkouts",
            )
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
    def abandon_checkout(self, request: HttpRequest, queryset: QuerySet) -> TemplateResponse | None:
        if not action_confirmed(request):
            return confirmation_page(
                self,
                request,
                queryset,
                action="abandon_checkout",
                title="Abandon checkouts",
                effects=[
                    "release the reservations of each selected cart in checkout, giving "
                    "their stock back;",
                    "mark the cart abandoned: the shopper cannot use it again;",
                    "leave carts not in checkout, or whose payment is in flight or captured "
                    "without an order, as they are.",
                ],
                objects=self._cart_lines(queryset),
                button="Yes, abandon these checkouts",
            )
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

    @staticmethod
    def _cart_lines(queryset: QuerySet) -> list[str]:
        return [
            f"cart {str(pk)[:8]} ({status})" for pk, status in queryset.values_list("id", "status")
        ]

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


class OrphanedFilter(admin.SimpleListFilter):
    """Orphaned reservations as the orphan sweeper sees them (``checkout.orphans``)."""

    title = "orphaned"
    parameter_name = "orphaned"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin):
        return (("yes", "Yes — no checkout and no order holds it"),)

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "yes":
            return queryset.filter(id__in=orphaned_reservations().values("id"))
        return queryset


# The reservation admin of ``inventory`` plus the orphan filter, which only the checkout
# can state (inventory knows nothing of carts in checkout or payments).
admin.site.unregister(Reservation)


@admin.register(Reservation)
class CheckoutReservationAdmin(ReservationAdmin):
    list_filter = (*ReservationAdmin.list_filter, OrphanedFilter)
