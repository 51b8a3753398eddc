"""Orders API (API.md "Orders").

An order is seen by the holder of its cart's token (``X-Cart-Token``), by the customer
who owns it, and by staff; anyone else gets 404 ``ORDER_NOT_FOUND``, exactly as for an
order that does not exist. Views check access, call ``orders.services`` (writes) or
``orders.selectors`` (reads), and answer with ``OrderOutputSerializer``.
"""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from carts.access import CART_TOKEN_HEADER
from core.api import query_without_blanks, request_actor
from core.pagination import Pagination
from core.permissions import IsStaff
from core.schema import error_responses
from orders import selectors, services
from orders.models import Order, OrderStatus
from orders.serializers import OrderOutputSerializer

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
ORDER_NOT_FOUND = (404, "ORDER_NOT_FOUND: no such order, or a missing or wrong X-Cart-Token")
INVALID_ORDER_STATUS = (409, "INVALID_ORDER_STATUS: the order's status does not allow this")
STAFF_ERRORS = (
    (401, "NOT_AUTHENTICATED: no or invalid credentials"),
    (403, "PERMISSION_DENIED: not staff"),
)


def _is_staff(request: Request) -> bool:
    return bool(request.user.is_authenticated and request.user.is_staff)


def _viewable_order(request: Request, order_id: str) -> Order:
    return selectors.order_get_for_viewer(
        order_id=order_id, cart_token=request.headers.get(CART_TOKEN_HEADER), user=request.user
    )


def order_response(order_id, *, status_code: int = 200) -> Response:
    order = selectors.order_get(order_id=order_id)
    return Response(OrderOutputSerializer(order).data, status=status_code)


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
            200: OrderOutputSerializer(many=True),
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
        return paginator.get_paginated_response(OrderOutputSerializer(page, many=True).data)


class OrderDetailApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="order_retrieve",
        tags=ORDERS,
        summary="An order (cart token, owning customer or staff)",
        parameters=[CART_TOKEN_PARAMETER],
        responses={200: OrderOutputSerializer, **error_responses(ORDER_NOT_FOUND)},
    )
    def get(self, request: Request, order_id: str) -> Response:
        return Response(OrderOutputSerializer(_viewable_order(request, order_id)).data)


class OrderCancelApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="order_cancel",
        tags=ORDERS,
        summary="Cancel an order (cart token while pending, or staff)",
        description="The order becomes `cancelled`; stock of confirmed reservations is "
        "restocked and pending reservations are released. The shopper (cart token or "
        "owning customer) may cancel a `pending` order; staff also a `confirmed` or "
        "`processing` one.",
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
        return order_response(order.id)


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

    @extend_schema(
        operation_id="order_status_change",
        tags=ORDERS,
        summary="Move an order along its status flow (staff)",
        description="`confirmed` also retries any reservation confirmation that had "
        "failed; `cancelled` restocks / releases like the cancel endpoint.",
        request=InputSerializer,
        responses={
            200: OrderOutputSerializer,
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
            order_id=order.id, status=data.validated_data["status"], actor=request_actor(request)
        )
        return order_response(order.id)
