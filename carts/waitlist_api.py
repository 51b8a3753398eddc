"""Shopper waitlist API (API.md "Waitlists"): join, read and leave the waitlists of a
cart's products.

The same access as every cart endpoint (``carts.access``): the cart's ``X-Cart-Token`` or
the session of the customer who owns it, anyone else 404 ``CART_NOT_FOUND``. Writes go
through ``carts.waitlist`` (which locks the cart), reads through ``inventory.waitlist``;
answers are ``WaitlistEntryOutputSerializer``.
"""

from __future__ import annotations

from uuid import UUID

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from carts import services
from carts import waitlist as cart_waitlist
from carts.access import access_check, get_cart_for_request, validated_body
from carts.api import CART_NOT_FOUND, CART_TOKEN_PARAMETER, CARTS
from carts.serializers import WaitlistEntryOutputSerializer, WaitlistOutputSerializer
from core.api import request_actor
from core.schema import error_responses
from inventory import waitlist

WAITLIST_ENTRY_NOT_FOUND = (
    404,
    "CART_NOT_FOUND, or WAITLIST_ENTRY_NOT_FOUND: the cart has no entry with this id",
)


class CartWaitlistApi(APIView):
    """The cart's waitlist entries: read them, or join a product's waitlist."""

    permission_classes = [AllowAny]

    class JoinInputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "WaitlistJoin"

        sku = serializers.CharField(max_length=64)
        quantity = serializers.IntegerField(min_value=1, max_value=services.MAX_LINE_QUANTITY)
        warehouse = serializers.CharField(
            required=False,
            max_length=32,
            help_text="Warehouse code the units must come from; omitted: any active warehouse",
        )

    @extend_schema(
        operation_id="cart_waitlist_list",
        tags=CARTS,
        parameters=[CART_TOKEN_PARAMETER],
        responses={200: WaitlistOutputSerializer, **error_responses(CART_NOT_FOUND)},
        description="The cart's waitlist entries, newest first, every status included. "
        "`position` is the entry's 1-based place in its product's queue while it waits.",
    )
    def get(self, request: Request, cart_id: UUID) -> Response:
        cart = get_cart_for_request(request, cart_id)
        entries = waitlist.entries_for_cart(cart_id=cart.id)
        return Response(WaitlistOutputSerializer({"entries": entries}).data)

    @extend_schema(
        operation_id="cart_waitlist_join",
        tags=CARTS,
        parameters=[CART_TOKEN_PARAMETER],
        request=JoinInputSerializer,
        responses={
            201: WaitlistEntryOutputSerializer,
            **error_responses(
                (
                    400,
                    "VALIDATION_ERROR: bad body, or the product's currency is not the "
                    "cart's; QUANTITY_LIMIT_EXCEEDED: above the product's max_per_order",
                ),
                (
                    404,
                    "CART_NOT_FOUND, PRODUCT_NOT_FOUND (unknown sku) or NOT_FOUND "
                    "(unknown warehouse)",
                ),
                (
                    409,
                    "STOCK_AVAILABLE: the quantity can be reserved now (add it to the cart "
                    "instead); INVALID_CART_STATUS: only an active or abandoned cart can wait",
                ),
            ),
        },
        description="Puts the cart on the product's waitlist for `quantity` units. Units "
        "freed later are offered strictly first come first served, each entry for its "
        "whole quantity: the offer is a hold for the cart (`WAITLIST_OFFER_TTL_SECONDS`) "
        "and the line is put in the cart; starting checkout uses it. One open entry per "
        "cart and product: joining again changes a waiting entry's quantity (it keeps its "
        "place) and answers an offered one as it is.",
    )
    def post(self, request: Request, cart_id: UUID) -> Response:
        data = validated_body(self.JoinInputSerializer, request, cart_id)
        joined = cart_waitlist.join_waitlist(
            cart_id=cart_id,
            actor=request_actor(request),
            authorize=access_check(request),
            **data,
        )
        return Response(
            WaitlistEntryOutputSerializer(joined.entry).data, status=status.HTTP_201_CREATED
        )


class CartWaitlistEntryApi(APIView):
    """One waitlist entry of a cart: leave it."""

    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="cart_waitlist_leave",
        tags=CARTS,
        parameters=[CART_TOKEN_PARAMETER],
        request=None,
        responses={200: WaitlistEntryOutputSerializer, **error_responses(WAITLIST_ENTRY_NOT_FOUND)},
        description="Leaves the waitlist: the entry is `cancelled`. An offered entry's hold "
        "is released and its units are offered to the next entry at once. An entry that "
        "has ended already is answered as it is.",
    )
    def delete(self, request: Request, cart_id: UUID, entry_id: int) -> Response:
        entry = cart_waitlist.leave_waitlist(
            cart_id=cart_id,
            entry_id=entry_id,
            actor=request_actor(request),
            authorize=access_check(request),
        )
        return Response(WaitlistEntryOutputSerializer(entry).data)
