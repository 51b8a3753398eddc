"""Request-scoped plumbing: a request id on every log line, and the API error envelope
for answers Django produces outside DRF (unknown routes, uncaught exceptions)."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse

from core.errors import database_unavailable, envelope
from core.logging import new_request_id, request_id_var

logger = logging.getLogger("core.api")

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestIdMiddleware:
    """Takes ``X-Request-ID`` from the client when it is sane, otherwise makes one; it is
    echoed in the response and follows the request into the Celery tasks it enqueues."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _SAFE_REQUEST_ID.match(incoming) else new_request_id()
        token = request_id_var.set(request_id)
        request.request_id = request_id
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response["X-Request-ID"] = request_id
        return response


_STATUS_CODES = {
    400: ("VALIDATION_ERROR", "Bad request"),
    401: ("NOT_AUTHENTICATED", "Authentication credentials were not provided"),
    403: ("PERMISSION_DENIED", "You do not have permission to do this"),
    404: ("NOT_FOUND", "Not found"),
    405: ("METHOD_NOT_ALLOWED", "Method not allowed"),
    500: ("INTERNAL_ERROR", "Internal server error"),
    503: ("SERVICE_UNAVAILABLE", "The service is temporarily unavailable; please retry"),
}


def is_api_path(path: str) -> bool:
    return path.startswith("/api/")


class ApiErrorMiddleware:
    """Last resort for ``/api/``: any exception that escaped DRF becomes the envelope
    with status 500 and a generic message, never a traceback or an HTML page; a request
    aborted by the web server's worker timeout answers 503 ``SERVICE_UNAVAILABLE``."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            response = self.get_response(request)
        except SystemExit:
            # gunicorn aborts a worker past its timeout by raising SystemExit in the
            # request (then writes an HTML page): answer the envelope instead. The worker
            # still exits after this answer; work left half done (a payment in flight) is
            # resolved later (PAYMENT_IN_FLIGHT_TIMEOUT_SECONDS).
            if not is_api_path(request.path):
                raise
            logger.error(
                "request aborted by the worker timeout: %s %s", request.method, request.path
            )
            response = JsonResponse(
                envelope(
                    "SERVICE_UNAVAILABLE",
                    "The request took too long and was stopped; please retry in a moment",
                ),
                status=503,
            )
            response["Retry-After"] = "5"
            return response
        if (
            is_api_path(request.path)
            and response.status_code >= 400
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            # Django's own answers (unknown route, CSRF failure, 500 page) become the envelope.
            code, message = _STATUS_CODES.get(response.status_code, ("ERROR", "Request failed"))
            wrapped = JsonResponse(envelope(code, message), status=response.status_code)
            for header in ("Allow", "Retry-After", "WWW-Authenticate", "X-Request-ID"):
                if header in response:
                    wrapped[header] = response[header]
            return wrapped
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not is_api_path(request.path):
            return None
        if database_unavailable(exception):
            logger.warning(
                "database unavailable on %s %s: %s", request.method, request.path, exception
            )
            response = JsonResponse(envelope(*_STATUS_CODES[503]), status=503)
            response["Retry-After"] = "1"
            return response
        logger.exception("unhandled error on %s %s", request.method, request.path)
        return JsonResponse(envelope("INTERNAL_ERROR", "Internal server error"), status=500)
