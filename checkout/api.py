"""Shopper checkout API (API.md "Checkout"): start, get, update and cancel the checkout
of a cart. Access is the cart's (``X-Cart-Token`` or the owning customer); views call
``checkout.services`` and answer with the state built by ``checkout.selectors``.

The views opt out of ``ATOMIC_REQUESTS``: reading or updating an expired checkout
commits its cleanup in a transaction of its own before answering 410, which a
request-wide transaction would roll back with the error.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pycountry
from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from carts.access import access_check, get_cart_for_request, validated_body
from carts.api import (
    CART_NOT_FOUND,
    CART_TOKEN_PARAMETER,
    cart_response,
)
from carts.models import Cart
from carts.serializers import CartOutputSerializer
from checkout import selectors, services
from core.api import request_actor
from core.schema import error_responses

CHECKOUT = ["checkout"]
EXPIRED = (410, "CHECKOUT_EXPIRED: the reservations lapsed; the cart is now abandoned")
NOT_IN_CHECKOUT = (409, "INVALID_CART_STATUS: the cart is not in checkout (details.status)")


class AddressSerializer(serializers.Serializer):
    class Meta:
        ref_name = "Address"

    name = serializers.CharField(max_length=255)
    line1 = serializers.CharField(max_length=255)
    line2 = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")
    city = serializers.CharField(max_length=128)
    postal_code = serializers.CharField(max_length=32)
    country = serializers.CharField(
        min_length=2, max_length=2, help_text="ISO 3166-1 alpha-2 code, e.g. US"
    )

    def validate_country(self, value: str) -> str:
        code = value.upper()
        if pycountry.countries.get(alpha_2=code) is None:
            raise serializers.ValidationError("Not an ISO 3166-1 alpha-2 country code.")
        return code


class WarningSerializer(serializers.Serializer):
    class Meta:
        ref_name = "CheckoutWarning"

    code = serializers.ChoiceField(
        choices=["LOW_STOCK", "HIGH_DEMAND"],
        help_text="LOW_STOCK: little is left for others (`available`); HIGH_DEMAND: the "
        "product has a waitlist or is low on stock, so its hold is shorter (`ttl_seconds`)",
    )
    sku = serializers.CharField()
    available = serializers.IntegerField(
        required=False, help_text="LOW_STOCK only: what is left for others after this cart"
    )
    ttl_seconds = serializers.IntegerField(
        required=False,
        help_text="HIGH_DEMAND only: the hold length a checkout holding this line gets "
        "(the shorter of SCARCITY_TTL_SECONDS and the start or extension TTL)",
    )


class AllocationSerializer(serializers.Serializer):
    class Meta:
        ref_name = "CheckoutAllocation"

    item_id = serializers.IntegerField()
    product_id = serializers.UUIDField()
    sku = serializers.CharField()
    warehouse = serializers.CharField(help_text="Code of the warehouse holding this part")
    quantity = serializers.IntegerField()
    reservation_id = serializers.IntegerField()
    strategy = serializers.CharField(
        help_text="What chose the warehouse: `pinned` (the line names it) or the "
        "ALLOCATION_STRATEGY in force (`priority`, `most_available`, `fewest_splits`)"
    )


class CheckoutStateOutputSerializer(serializers.Serializer):
    class Meta:
        ref_name = "CheckoutState"

    cart_id = serializers.UUIDField()
    status = serializers.CharField()
    current_step = serializers.IntegerField()
    email = serializers.CharField(help_text="The shopper's email; empty until given")
    shipping_address = AddressSerializer(allow_null=True)
    billing_address = AddressSerializer(allow_null=True)
    payment_method = serializers.CharField(help_text="Empty until chosen")
    shipping_method_id = serializers.CharField(help_text="Empty until chosen")
    reservation_ids = serializers.ListField(child=serializers.IntegerField())
    reservation_map = serializers.DictField(
        child=serializers.IntegerField(),
        help_text="product_id → the first of its line's reservations, in allocation order",
    )
    allocations = AllocationSerializer(
        many=True, help_text="Where each line is held: one entry per line and warehouse"
    )
    reservation_expires_at = serializers.DateTimeField(allow_null=True)
    checkout_started_at = serializers.DateTimeField(allow_null=True)
    extensions_used = serializers.IntegerField()
    extensions_left = serializers.IntegerField()
    warnings = WarningSerializer(many=True)
    cart = CartOutputSerializer()


def state_response(cart: Cart, *, status_code: int = status.HTTP_200_OK) -> Response:
    state = selectors.checkout_state(cart=cart)
    return Response(CheckoutStateOutputSerializer(state).data, status=status_code)


class CheckoutApi(APIView):
    """The checkout of one cart: POST starts, GET reads, PATCH saves data (and extends
    the reservations when due), DELETE cancels."""

    permission_classes = [AllowAny]

    @classmethod
    def as_view(cls, **initkwargs: Any):
        return transaction.non_atomic_requests(super().as_view(**initkwargs))

    class UpdateInputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "CheckoutUpdate"

        email = serializers.EmailField(
            required=False,
            allow_blank=True,
            max_length=254,
            help_text="Optional; copied to the order, which it later finds with the number "
            "(`POST orders/lookup/`). An empty string clears it.",
        )
        shipping_address = AddressSerializer(required=False, allow_null=True)
        billing_address = AddressSerializer(required=False, allow_null=True)
        payment_method = serializers.CharField(
            required=False,
            max_length=64,
            help_text="Dummy gateway: card, test_decline, test_capture_fail, test_timeout",
        )
        shipping_method_id = serializers.CharField(required=False, max_length=64)
        current_step = serializers.IntegerField(required=False, min_value=1, max_value=10)

    @extend_schema(
        operation_id="checkout_start",
        tags=CHECKOUT,
        parameters=[CART_TOKEN_PARAMETER],
        request=None,
        responses={
            201: CheckoutStateOutputSerializer,
            200: CheckoutStateOutputSerializer,
            **error_responses(
                (
                    400,
                    "INSUFFICIENT_STOCK (details.items lists every short line), CART_EMPTY, "
                    "or QUANTITY_LIMIT_EXCEEDED (a line above its product's max_per_order; "
                    "details.sku, details.limit)",
                ),
                CART_NOT_FOUND,
                (
                    409,
                    "INVALID_CART_STATUS: the cart is completed; PURCHASE_LIMIT_REACHED: "
                    "the logged-in customer would be over a product's max_per_customer "
                    "(details.sku, limit, already)",
                ),
            ),
        },
        description="Starts checkout: reserves every line (all or nothing) and moves the "
        "cart to checkout. 201 when started; 200 with the current state when the cart is "
        "already in checkout. Low stock and high demand are reported in `warnings`, not "
        "as errors; a line in high demand makes the holds shorter (SCARCITY_TTL_SECONDS).",
    )
    def post(self, request: Request, cart_id: UUID) -> Response:
        cart, started = services.start_checkout(
            cart_id=cart_id, actor=request_actor(request), authorize=access_check(request)
        )
        return state_response(
            cart, status_code=status.HTTP_201_CREATED if started else status.HTTP_200_OK
        )

    @extend_schema(
        operation_id="checkout_retrieve",
        tags=CHECKOUT,
        parameters=[CART_TOKEN_PARAMETER],
        responses={
            200: CheckoutStateOutputSerializer,
            **error_responses(CART_NOT_FOUND, NOT_IN_CHECKOUT, EXPIRED),
        },
        description="The saved checkout state to resume from. An expired checkout is "
        "cleaned up (reservations expired, cart abandoned) and answers 410.",
    )
    def get(self, request: Request, cart_id: UUID) -> Response:
        cart = get_cart_for_request(request, cart_id)
        services.get_checkout(cart=cart, actor=request_actor(request))
        return state_response(cart)

    @extend_schema(
        operation_id="checkout_update",
        tags=CHECKOUT,
        parameters=[CART_TOKEN_PARAMETER],
        request=UpdateInputSerializer,
        responses={
            200: CheckoutStateOutputSerializer,
            **error_responses(
                (
                    400,
                    "VALIDATION_ERROR, or INSUFFICIENT_STOCK when re-validation before an "
                    "extension finds a line that can no longer be held",
                ),
                CART_NOT_FOUND,
                (
                    409,
                    "INVALID_CART_STATUS: the cart is not in checkout (details.status); "
                    "PURCHASE_LIMIT_REACHED: a line held again at an extension would take "
                    "the customer over a product's max_per_customer",
                ),
                EXPIRED,
            ),
        },
        description="Saves any of the fields given. Activity extends the reservations "
        "when less than the threshold remains and extensions are left; past the limit the "
        "data is still saved. An address may be cleared with null.",
    )
    def patch(self, request: Request, cart_id: UUID) -> Response:
        data = validated_body(self.UpdateInputSerializer, request, cart_id)
        cart = services.update_checkout(
            cart_id=cart_id,
            changes=dict(data),
            actor=request_actor(request),
            authorize=access_check(request),
        )
        return state_response(cart)

    @extend_schema(
        operation_id="checkout_cancel",
        tags=CHECKOUT,
        parameters=[CART_TOKEN_PARAMETER],
        request=None,
        responses={
            200: CartOutputSerializer,
            **error_responses(CART_NOT_FOUND, NOT_IN_CHECKOUT),
        },
        description="Cancels the checkout: releases the reservations; the cart is active "
        "again with its saved data.",
    )
    def delete(self, request: Request, cart_id: UUID) -> Response:
        cart = services.cancel_checkout(
            cart_id=cart_id, actor=request_actor(request), authorize=access_check(request)
        )
        return cart_response(cart)
