"""Shared OpenAPI pieces for the apps' ``@extend_schema`` declarations.

Every non-2xx answer of the API has one body, the envelope of API.md "Errors"
(built by ``core.errors``). Views document it with :func:`error_responses`::

    @extend_schema(
        responses={
            200: OutputSerializer,
            **error_responses(400, 401, 403, (404, "PRODUCT_NOT_FOUND: no such product")),
        },
    )

A bare status gets a generic description naming the codes API.md gives that status; a
``(status, description)`` pair says exactly which codes this operation answers with.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers


class ErrorBodySerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable machine-readable code, e.g. VALIDATION_ERROR.")
    message = serializers.CharField(help_text="Human-readable explanation.")
    details = serializers.DictField(
        help_text=(
            "Code-specific data: `fields` (field → messages) for VALIDATION_ERROR, "
            "`items` (every short line) for INSUFFICIENT_STOCK, etc. `{}` when none."
        ),
    )


class ErrorEnvelopeSerializer(serializers.Serializer):
    """``{"error": {"code", "message", "details"}}`` — the body of every non-2xx answer."""

    error = ErrorBodySerializer()


DEFAULT_DESCRIPTIONS: dict[int, str] = {
    400: "VALIDATION_ERROR (details.fields maps field → messages) or another 400 code of API.md",
    401: "NOT_AUTHENTICATED: no or invalid credentials",
    402: "PAYMENT_DECLINED or PAYMENT_CAPTURE_FAILED",
    403: "PERMISSION_DENIED: authenticated but not allowed (e.g. not staff)",
    404: "*_NOT_FOUND: the resource does not exist",
    409: "The current state does not allow this operation",
    410: "CHECKOUT_EXPIRED",
    503: "SERVICE_UNAVAILABLE: retry later",
    504: "PAYMENT_TIMEOUT",
}


def error_responses(*statuses: int | tuple[int, str]) -> dict[int, OpenApiResponse]:
    """``{status: OpenApiResponse(ErrorEnvelopeSerializer, description)}`` for each given
    status, or ``(status, description)`` pair; merge it into ``responses=``."""
    responses: dict[int, OpenApiResponse] = {}
    for entry in statuses:
        status, description = entry if isinstance(entry, tuple) else (entry, None)
        responses[status] = OpenApiResponse(
            response=ErrorEnvelopeSerializer,
            description=description or DEFAULT_DESCRIPTIONS.get(status, "Error"),
        )
    return responses
