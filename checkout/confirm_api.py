"""Confirm API (API.md "Checkout": ``POST carts/{id}/checkout/confirm/``).

The shopper (cart token or owning customer) confirms the checkout: payment, then the
order. ``checkout.confirm.confirm_checkout`` does the work; this view checks access and
the ``Idempotency-Key`` header and chooses the status of the answer.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.db import transaction
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from carts.access import CART_TOKEN_HEADER, access_check, request_body
from checkout.confirm import confirm_checkout
from checkout.idempotency import IDEMPOTENCY_KEY_MAX_LENGTH, request_fingerprint
from core.api import request_actor
from core.errors import ValidationFailed
from core.schema import error_responses
from orders.api import order_response
from orders.serializers import OrderOutputSerializer

IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"


def _body(request: Request, cart_id: UUID) -> Any:
    data = request_body(request, cart_id)
    if hasattr(data, "dict"):  # an empty body parses to an empty QueryDict
        data = data.dict()
    return data


class CheckoutConfirmApi(APIView):
    permission_classes = [AllowAny]

    @classmethod
    def as_view(cls, **initkwargs: Any):
        # Never inside a request-wide transaction (should ATOMIC_REQUESTS be turned on):
        # it would hold the Cart lock across the gateway calls and roll back the cleanup
        # that a payment failure commits before answering.
        return transaction.non_atomic_requests(super().as_view(**initkwargs))

    class ProcessingOutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "CheckoutConfirmProcessing"

        status = serializers.ChoiceField(choices=["processing"])
        cart_id = serializers.UUIDField()
        payment_id = serializers.UUIDField(
            help_text="The payment record (captured); staff find it in the admin."
        )
        message = serializers.CharField()

    @extend_schema(
        operation_id="checkout_confirm",
        tags=["checkout"],
        summary="Confirm the checkout: pay and create the order",
        description=(
            "Re-validates stock (re-reserving lines whose reservation lapsed), extends the "
            "reservations to the payment TTL, authorizes and captures the payment (no lock "
            "is held during the gateway calls), then writes the order, confirms the "
            "reservations and completes the cart. Any payment failure releases the "
            "reservations and returns the cart to `active`.\n\n"
            "Exactly once per cart: a repeat with the same `Idempotency-Key` answers 200 "
            "with the same order; the same key with a different request answers 409 "
            "`IDEMPOTENCY_CONFLICT`. A second confirm while the first is paying waits for "
            "it (a few seconds) and answers 200 with the same order (or the same payment "
            "error); if the first is still running it answers 409 `INVALID_CART_STATUS` "
            'with `details.status` `checkout` and the message "Confirmation in progress", '
            "`details.retry_after_seconds` and a `Retry-After` header: after at most "
            "PAYMENT_IN_FLIGHT_TIMEOUT_SECONDS the same request asks the gateway what became "
            "of an interrupted payment and finishes (the order if it was captured; else it "
            "is voided and this confirm pays). The gateway part of a confirm ends within "
            "PAYMENT_DEADLINE_SECONDS (then 504, authorization voided, holds released). "
            "A key whose request failed is not consumed: the shopper may fix the problem "
            "and confirm again with it.\n\n"
            "If the payment was captured but the order could not be written, the answer "
            'is 202 `{status: "processing", cart_id, payment_id}`: the payment is kept '
            "and confirming again writes the order and answers 201 with it (202 again "
            "while it still cannot be written); reconciliation finishes it otherwise, or "
            "alerts staff. Never a second payment.\n\n"
            "While the payment gateway's circuit breaker is open (repeated gateway failures "
            "or timeouts, shared by every worker) the confirm is refused at once with 503 "
            "`PAYMENT_UNAVAILABLE` and `Retry-After`, before any gateway call and before "
            "the reservations are extended: nothing is charged and the cart stays in "
            "checkout with its holds."
        ),
        request=None,
        parameters=[
            OpenApiParameter(
                name=IDEMPOTENCY_KEY_HEADER,
                type=OpenApiTypes.STR,
                location=OpenApiParameter.HEADER,
                required=False,
                description=f"Optional, at most {IDEMPOTENCY_KEY_MAX_LENGTH} characters.",
            ),
            OpenApiParameter(
                name=CART_TOKEN_HEADER,
                type=OpenApiTypes.STR,
                location=OpenApiParameter.HEADER,
                required=False,
                description="The cart's secret token; not needed by the owning customer.",
            ),
        ],
        responses={
            201: OpenApiResponse(OrderOutputSerializer, description="The order was created."),
            200: OpenApiResponse(
                OrderOutputSerializer,
                description="A repeat (same Idempotency-Key, or a concurrent confirm): the "
                "same order.",
            ),
            202: OpenApiResponse(
                ProcessingOutputSerializer,
                description="Paid; the order is being finalised.",
            ),
            **error_responses(
                (
                    400,
                    "VALIDATION_ERROR (Idempotency-Key longer than 255 characters), "
                    "CART_EMPTY, MISSING_CHECKOUT_DATA (details.missing lists "
                    "shipping_address and/or payment_method) or INSUFFICIENT_STOCK "
                    "(details.items; reservations released, cart back to active)",
                ),
                (
                    402,
                    "PAYMENT_DECLINED (authorization declined) or PAYMENT_CAPTURE_FAILED "
                    "(authorization voided); reservations released, cart back to active",
                ),
                (404, "CART_NOT_FOUND: no such cart, or a missing or wrong X-Cart-Token"),
                (
                    409,
                    "INVALID_CART_STATUS (the cart is not in checkout, or a confirmation is "
                    "in progress), IDEMPOTENCY_CONFLICT, or PURCHASE_LIMIT_REACHED (a line "
                    "it had to reserve would take the customer over the product's "
                    "max_per_customer; details.sku, limit, already; nothing charged)",
                ),
                (410, "CHECKOUT_EXPIRED: the reservations lapsed; the cart is now abandoned"),
                (
                    503,
                    "PAYMENT_UNAVAILABLE: the payment gateway's circuit breaker is open; "
                    "refused before any gateway call: nothing charged, the cart stays in "
                    "checkout with its holds (which lapse by their own TTL). `Retry-After` "
                    "(and details.retry_after_seconds) says when to try again",
                ),
                (
                    504,
                    "PAYMENT_TIMEOUT: the gateway did not answer after retries; "
                    "reservations released, cart back to active",
                ),
            ),
        },
    )
    def post(self, request: Request, cart_id: UUID) -> Response:
        key = request.headers.get(IDEMPOTENCY_KEY_HEADER, "").strip()
        if len(key) > IDEMPOTENCY_KEY_MAX_LENGTH:
            raise ValidationFailed(
                {
                    IDEMPOTENCY_KEY_HEADER: [
                        f"Ensure this value has at most {IDEMPOTENCY_KEY_MAX_LENGTH} characters."
                    ]
                }
            )
        result = confirm_checkout(
            cart_id=cart_id,
            idempotency_key=key,
            fingerprint=request_fingerprint(
                method=request.method, path=request.path, body=_body(request, cart_id)
            ),
            actor=request_actor(request),
            authorize=access_check(request),
        )
        if result.order is None:
            body = self.ProcessingOutputSerializer(
                {
                    "status": "processing",
                    "cart_id": cart_id,
                    "payment_id": result.payment.id,
                    "message": "Your payment was received; your order is being finalised.",
                }
            ).data
            return Response(body, status=status.HTTP_202_ACCEPTED)
        return order_response(
            result.order.id,
            status_code=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK,
        )
