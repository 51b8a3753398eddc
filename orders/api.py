"""Orders API (API.md "Orders").

An order is seen by the holder of its cart's token (``X-Cart-Token``), by the customer
who owns it, and by staff; anyone else gets 404 ``ORDER_NOT_FOUND``, exactly as for an
order that does not exist. Views check access, call ``orders.services`` (writes) or
``orders.selectors`` (reads), and answer with ``OrderOutputSerializer``.
"""

from __future__ import annotations

from django.conf import settings
from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from carts.access import CART_TOKEN_HEADER
from core.api import query_without_blanks, request_actor
from core.pagination import Pagination
from core.permissions import IsStaff
from core.schema import error_responses
from orders import selectors, services
from orders.models import Order, OrderStatus
from orders.serializers import (
    OrderEventOutputSerializer,
    OrderOutputSerializer,
    StaffOrderOutputSerializer,
    order_output_serializer,
)
from orders.tokens import ORDER_TOKEN_HEADER, issue_order_token

ORDERS = ["orders"]

CART_TOKEN_PARAMETER = OpenApiParameter(
    name=CART_TOKEN_HEADER,
    type=OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    required=False,
    description=(
        "The token of the cart the order was made from. Not needed by the logged-in "
        "customer who owns the order, nor by staff."
    ),
)
ORDER_TOKEN_PARAMETER = OpenApiParameter(
    name=ORDER_TOKEN_HEADER,
    type=OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    required=False,
    description="The `token` of `POST orders/lookup/` for this order (instead of the cart token).",
)
ORDER_NOT_FOUND = (404, "ORDER_NOT_FOUND: no such order, or a missing or wrong X-Cart-Token")
INVALID_ORDER_STATUS = (409, "INVALID_ORDER_STATUS: the order's status does not allow this")
STAFF_ERRORS = (
    (401, "NOT_AUTHENTICATED: no or invalid credentials"),
    (403, "PERMISSION_DENIED: not staff"),
)


def _is_staff(request: Request) -> bool:
    return bool(request.user.is_authenticated and request.user.is_staff)


def _viewable_order(request: Request, order_id: str, *, by_order_token: bool = False) -> Order:
    return selectors.order_get_for_viewer(
        order_id=order_id,
        cart_token=request.headers.get(CART_TOKEN_HEADER),
        user=request.user,
        order_token=request.headers.get(ORDER_TOKEN_HEADER) if by_order_token else None,
    )


def order_response(order_id, *, status_code: int = 200, staff: bool = False) -> Response:
    """The order's answer; ``staff`` adds its timeline (``events``)."""
    order = selectors.order_get(order_id=order_id)
    return Response(order_output_serializer(staff=staff)(order).data, status=status_code)


class OrderListApi(APIView):
    permission_classes = [IsStaff]
    pagination_class = Pagination

    class FilterSerializer(serializers.Serializer):
        class Meta:
            ref_name = "OrderFilter"

        status = serializers.ChoiceField(choices=OrderStatus.choices, required=False)
        number = serializers.CharField(required=False, max_length=32, help_text="Exact number.")

    @extend_schema(
        operation_id="orders_list",
        tags=ORDERS,
        summary="List orders (staff)",
        description="Newest first, paginated `{count, next, previous, results}`.",
        parameters=[FilterSerializer],
        responses={
            200: StaffOrderOutputSerializer(many=True),
            **error_responses(
                (400, "VALIDATION_ERROR: a filter value is invalid"),
                *STAFF_ERRORS,
                (404, "NOT_FOUND: invalid page"),
            ),
        },
    )
    def get(self, request: Request) -> Response:
        params = self.FilterSerializer(data=query_without_blanks(request))
        params.is_valid(raise_exception=True)
        orders: QuerySet[Order] = selectors.order_list(**params.validated_data)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(orders, request, view=self)
        return paginator.get_paginated_response(StaffOrderOutputSerializer(page, many=True).data)


class OrderDetailApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="order_retrieve",
        tags=ORDERS,
        summary="An order (cart token, order lookup token, owning customer or staff)",
        description="Staff also get the order timeline, `events: [{at, actor, action, "
        "note}]`, oldest first.",
        parameters=[CART_TOKEN_PARAMETER, ORDER_TOKEN_PARAMETER],
        responses={200: OrderOutputSerializer, **error_responses(ORDER_NOT_FOUND)},
    )
    def get(self, request: Request, order_id: str) -> Response:
        order = _viewable_order(request, order_id, by_order_token=True)
        return Response(order_output_serializer(staff=_is_staff(request))(order).data)


class OrderLookupThrottle(ScopedRateThrottle):
    """The lookup's own rate per client (``ORDER_LOOKUP_THROTTLE``), read at request time;
    the counts live in the default cache (Redis), shared by every worker."""

    def get_rate(self) -> str:
        return settings.ORDER_LOOKUP_THROTTLE


class OrderLookupApi(APIView):
    """A shopper on another device finds an order by its number and email."""

    permission_classes = [AllowAny]
    throttle_classes = [*APIView.throttle_classes, OrderLookupThrottle]
    throttle_scope = "order_lookup"

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "OrderLookup"

        number = serializers.CharField(max_length=32, help_text="The order number, e.g. ORD-000042")
        email = serializers.EmailField(max_length=254, help_text="The email given at checkout")

    class OutputSerializer(OrderOutputSerializer):
        class Meta:
            ref_name = "OrderLookupResult"

        token = serializers.CharField(
            help_text="Reads this order later: send it as `X-Order-Token` on "
            "`GET orders/{id}/`. Expires after ORDER_LOOKUP_TOKEN_MAX_AGE_SECONDS."
        )

    @extend_schema(
        operation_id="order_lookup",
        tags=ORDERS,
        summary="Find an order by number and email (anyone, throttled)",
        description="200 with the order and a `token` for `GET orders/{id}/` "
        "(`X-Order-Token`). A wrong pair answers 404 `ORDER_NOT_FOUND`, the same whichever "
        "half is wrong (an order without an email cannot be looked up). Limited to "
        "`ORDER_LOOKUP_THROTTLE` requests per client (429 `THROTTLED` with `Retry-After`).",
        request=InputSerializer,
        responses={
            200: OutputSerializer,
            **error_responses(
                (400, "VALIDATION_ERROR: number or email missing or malformed"),
                (404, "ORDER_NOT_FOUND: no order with this number and email"),
                (429, "THROTTLED: too many lookups from this client; see Retry-After"),
            ),
        },
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        order = selectors.order_lookup(**data.validated_data)
        order.token = issue_order_token(order_id=order.id)
        return Response(self.OutputSerializer(order).data)


class OrderCancelApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="order_cancel",
        tags=ORDERS,
        summary="Cancel an order (cart token while pending, or staff)",
        description="The order becomes `cancelled`; stock of confirmed reservations is "
        "restocked and pending reservations are released. The shopper (cart token or "
        "owning customer) may cancel a `pending` order; staff also a `confirmed` or "
        "`processing` one. A captured payment is refunded exactly once after the cancel "
        "is written: `payment.status` `refunded`, or `refund_pending` while the gateway "
        "refuses (retried by reconciliation, flagged for staff after REFUND_MAX_ATTEMPTS).",
        request=None,
        parameters=[CART_TOKEN_PARAMETER],
        responses={
            200: OrderOutputSerializer,
            **error_responses(ORDER_NOT_FOUND, INVALID_ORDER_STATUS),
        },
    )
    def post(self, request: Request, order_id: str) -> Response:
        order = _viewable_order(request, order_id)
        services.cancel_order(
            order_id=order.id, actor=request_actor(request), by_staff=_is_staff(request)
        )
        return order_response(order.id, staff=_is_staff(request))


class OrderStatusApi(APIView):
    permission_classes = [IsStaff]

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "OrderStatusChange"

        status = serializers.ChoiceField(
            choices=OrderStatus.choices,
            help_text="pending → confirmed → processing → shipped → delivered; cancelled "
            "from pending, confirmed or processing.",
        )
        note = serializers.CharField(
            required=False,
            allow_blank=True,
            max_length=2000,
            help_text="Kept with the change in the order timeline.",
        )

    @extend_schema(
        operation_id="order_status_change",
        tags=ORDERS,
        summary="Move an order along its status flow (staff)",
        description="`confirmed` also retries any reservation confirmation that had "
        "failed; `cancelled` restocks / releases like the cancel endpoint.",
        request=InputSerializer,
        responses={
            200: StaffOrderOutputSerializer,
            **error_responses(
                (400, "VALIDATION_ERROR: unknown status"),
                *STAFF_ERRORS,
                ORDER_NOT_FOUND,
                INVALID_ORDER_STATUS,
            ),
        },
    )
    def post(self, request: Request, order_id: str) -> Response:
        order = selectors.order_get(order_id=order_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.change_order_status(
            order_id=order.id,
            status=data.validated_data["status"],
            actor=request_actor(request),
            note=data.validated_data.get("note", ""),
        )
        return order_response(order.id, staff=True)


class OrderNoteApi(APIView):
    permission_classes = [IsStaff]

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "OrderNote"

        note = serializers.CharField(max_length=2000)

    @extend_schema(
        operation_id="order_note_create",
        tags=ORDERS,
        summary="Add a note to an order's timeline (staff)",
        request=InputSerializer,
        responses={
            201: OrderEventOutputSerializer,
            **error_responses(
                (400, "VALIDATION_ERROR: note missing, blank or too long"),
                *STAFF_ERRORS,
                ORDER_NOT_FOUND,
            ),
        },
    )
    def post(self, request: Request, order_id: str) -> Response:
        order = selectors.order_get(order_id=order_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        event = services.add_note(
            order_id=order.id, actor=request_actor(request), note=data.validated_data["note"]
        )
        return Response(OrderEventOutputSerializer(event).data, status=201)
