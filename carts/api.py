"""Shopper cart API (API.md "Carts").

A cart is reached with its secret token in ``X-Cart-Token`` or by the logged-in customer
who owns it (``carts.access``); anyone else gets 404 ``CART_NOT_FOUND``, exactly as for a
cart that does not exist. Views check access, call ``carts.services`` (writes) or
``carts.selectors`` (reads), and answer with ``CartOutputSerializer``.
"""

from __future__ import annotations

from uuid import UUID

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from carts import selectors, services
from carts.access import CART_TOKEN_HEADER, access_check, get_cart_for_request, validated_body
from carts.models import Cart
from carts.serializers import CartCreatedOutputSerializer, CartOutputSerializer
from core import metrics
from core.api import request_actor
from core.schema import error_responses

CARTS = ["carts"]

CART_TOKEN_PARAMETER = OpenApiParameter(
    name=CART_TOKEN_HEADER,
    type=OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    required=False,
    description=(
        "The secret token from the answer of POST carts/. Not needed by the logged-in "
        "customer who owns the cart."
    ),
)
CART_NOT_FOUND = (404, "CART_NOT_FOUND: no such cart, or a missing or wrong X-Cart-Token")
INVALID_CART_STATUS = (409, "INVALID_CART_STATUS: the cart's status does not allow this")


def cart_response(cart: Cart, *, status_code: int = status.HTTP_200_OK) -> Response:
    """The answer with ``cart`` as the service left it, its lines read afresh."""
    return Response(CartOutputSerializer(selectors.with_items(cart)).data, status=status_code)


class CartCreateApi(APIView):
    permission_classes = [AllowAny]

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "CartCreate"

        currency = serializers.CharField(
            required=False, min_length=3, max_length=3, help_text="ISO 4217 code; USD if omitted"
        )

        def validate_currency(self, value: str) -> str:
            if not services.is_currency(value):
                raise serializers.ValidationError("Not an ISO 4217 currency code.")
            return value

    @extend_schema(
        operation_id="cart_create",
        tags=CARTS,
        request=InputSerializer,
        responses={201: CartCreatedOutputSerializer, **error_responses(400)},
        description="Creates an empty cart. The answer carries the secret `token` (shown "
        "only here) to send as `X-Cart-Token` on every later request on the cart.",
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = request.user if request.user.is_authenticated else None
        cart, token = services.create_cart(customer=user, **data.validated_data)
        body = CartCreatedOutputSerializer(
            selectors.with_items(cart), context={"token": token}
        ).data
        return Response(body, status=status.HTTP_201_CREATED)


class CartDetailApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="cart_retrieve",
        tags=CARTS,
        parameters=[CART_TOKEN_PARAMETER],
        responses={200: CartOutputSerializer, **error_responses(CART_NOT_FOUND)},
    )
    def get(self, request: Request, cart_id: UUID) -> Response:
        cart = get_cart_for_request(request, cart_id, queryset=selectors.carts_with_items())
        return Response(CartOutputSerializer(cart).data)


class CartItemAddApi(APIView):
    permission_classes = [AllowAny]

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "CartItemAdd"

        sku = serializers.CharField(max_length=64)
        quantity = serializers.IntegerField(min_value=1, max_value=services.MAX_LINE_QUANTITY)
        warehouse = serializers.CharField(
            required=False,
            max_length=32,
            help_text="Warehouse code to pin the line to; omitted: any active warehouse",
        )

    @extend_schema(
        operation_id="cart_item_add",
        tags=CARTS,
        parameters=[CART_TOKEN_PARAMETER],
        request=InputSerializer,
        responses={
            201: CartOutputSerializer,
            **error_responses(
                (
                    400,
                    "VALIDATION_ERROR: bad body, the line would exceed 1000, the product's "
                    "currency is not the cart's, or the product is in the cart from "
                    "another warehouse; QUANTITY_LIMIT_EXCEEDED: the line would be above "
                    "the product's max_per_order (details.sku, details.limit)",
                ),
                (
                    404,
                    "CART_NOT_FOUND, PRODUCT_NOT_FOUND (unknown sku) or NOT_FOUND "
                    "(unknown warehouse)",
                ),
                (
                    409,
                    "INVALID_CART_STATUS: items can be added only while the cart is "
                    "active or abandoned",
                ),
            ),
        },
        description="Adds a product to the cart; the same sku again adds to its line. "
        "Editing an abandoned cart makes it active again.",
    )
    def post(self, request: Request, cart_id: UUID) -> Response:
        data = validated_body(self.InputSerializer, request, cart_id)
        item = services.add_item(
            cart_id=cart_id,
            actor=request_actor(request),
            authorize=access_check(request),
            **data,
        )
        return cart_response(item.cart, status_code=status.HTTP_201_CREATED)


class CartItemApi(APIView):
    """One line of a cart: change its quantity or remove it."""

    permission_classes = [AllowAny]

    class UpdateInputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "CartItemUpdate"

        quantity = serializers.IntegerField(min_value=1, max_value=services.MAX_LINE_QUANTITY)

    @extend_schema(
        operation_id="cart_item_update",
        tags=CARTS,
        parameters=[CART_TOKEN_PARAMETER],
        request=UpdateInputSerializer,
        responses={
            200: CartOutputSerializer,
            **error_responses(
                (
                    400,
                    "VALIDATION_ERROR, or QUANTITY_LIMIT_EXCEEDED: the quantity is above "
                    "the product's max_per_order (details.sku, details.limit)",
                ),
                (404, "CART_NOT_FOUND, or NOT_FOUND: no such line in this cart"),
                (
                    409,
                    "INVALID_CART_STATUS: lines can be changed only while the cart is "
                    "active or abandoned",
                ),
            ),
        },
    )
    def patch(self, request: Request, cart_id: UUID, item_id: int) -> Response:
        data = validated_body(self.UpdateInputSerializer, request, cart_id)
        item = services.update_item(
            cart_id=cart_id,
            item_id=item_id,
            quantity=data["quantity"],
            actor=request_actor(request),
            authorize=access_check(request),
        )
        return cart_response(item.cart)

    @extend_schema(
        operation_id="cart_item_remove",
        tags=CARTS,
        parameters=[CART_TOKEN_PARAMETER],
        request=None,
        responses={
            200: CartOutputSerializer,
            **error_responses(
                (404, "CART_NOT_FOUND, or NOT_FOUND: no such line in this cart"),
                (409, "INVALID_CART_STATUS: the cart is completed"),
            ),
        },
        description="Removes a line. During checkout it also releases the line's "
        "reservation and the checkout goes on; removing the last line ends the checkout "
        "(the cart goes back to active).",
    )
    def delete(self, request: Request, cart_id: UUID, item_id: int) -> Response:
        cart = services.remove_item(
            cart_id=cart_id,
            item_id=item_id,
            actor=request_actor(request),
            authorize=access_check(request),
        )
        return cart_response(cart)


class CartValidateStockApi(APIView):
    permission_classes = [AllowAny]

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "CartStockValidation"

        class LineSerializer(serializers.Serializer):
            class Meta:
                ref_name = "CartStockValidationLine"

            item_id = serializers.IntegerField(source="item.id")
            product_id = serializers.UUIDField(source="item.product_id")
            sku = serializers.CharField(source="item.product.sku")
            warehouse = serializers.CharField(
                source="item.warehouse.code",
                allow_null=True,
                help_text="The pinned warehouse; null: the line counts every active warehouse",
            )
            requested = serializers.IntegerField()
            available = serializers.IntegerField(
                help_text="What this cart could hold for the line, its own reservations included"
            )
            reserved = serializers.IntegerField(
                help_text="What this cart holds for the line in pending reservations"
            )
            status = serializers.ChoiceField(
                choices=["in_stock", "low_stock", "out_of_stock", "insufficient"],
                help_text="out_of_stock: nothing available; insufficient: less than "
                "requested; otherwise the stock status of `available`",
            )

        ok = serializers.BooleanField()
        items = LineSerializer(many=True)

    @extend_schema(
        operation_id="cart_validate_stock",
        tags=CARTS,
        parameters=[CART_TOKEN_PARAMETER],
        responses={200: OutputSerializer, **error_responses(CART_NOT_FOUND)},
    )
    def get(self, request: Request, cart_id: UUID) -> Response:
        cart = get_cart_for_request(request, cart_id, queryset=selectors.carts_with_items())
        lines = selectors.cart_line_stock(cart=cart)
        ok = all(line.ok for line in lines)
        metrics.stock_validations_total.labels(outcome="ok" if ok else "insufficient").inc()
        return Response(self.OutputSerializer({"ok": ok, "items": lines}).data)
