"""One error envelope for every non-2xx API answer (API.md "Errors").

Domain code raises an :class:`ApplicationError` subclass (each app keeps its own in
``errors.py``); DRF's own exceptions and database outages are mapped here, so every
answer has the shape ``{"error": {"code", "message", "details"}}``.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import Http404
from rest_framework import exceptions as drf
from rest_framework.response import Response
from rest_framework.views import set_rollback

logger = logging.getLogger("core.api")


class ApplicationError(Exception):
    """A failure the client can act on; carries the API code and HTTP status."""

    code: str = "APPLICATION_ERROR"
    status_code: int = 400
    message: str = "The request could not be completed"

    def __init__(self, message: str | None = None, *, details: dict[str, Any] | None = None):
        self.message = message or self.message
        self.details = details or {}
        super().__init__(self.message)

    def as_body(self) -> dict[str, Any]:
        return envelope(self.code, self.message, self.details)

    def headers(self) -> dict[str, str]:
        """HTTP headers of the answer (``Retry-After``, ...); none by default."""
        return {}


class ValidationFailed(ApplicationError):
    code = "VALIDATION_ERROR"
    status_code = 400
    message = "Invalid input"

    def __init__(self, fields: dict[str, list[str]], message: str | None = None):
        super().__init__(message, details={"fields": fields})


class NotFound(ApplicationError):
    code = "NOT_FOUND"
    status_code = 404
    message = "Not found"


class ServiceUnavailable(ApplicationError):
    code = "SERVICE_UNAVAILABLE"
    status_code = 503
    message = "The service is temporarily unavailable; please retry"


def envelope(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def _field_errors(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """Flattens DRF's nested error detail into ``{"a.b.0.c": ["msg", ...]}``."""
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = "non_field_errors" if key in ("non_field_errors", "__all__") else str(key)
            out.update(_field_errors(value, f"{prefix}.{name}" if prefix else name))
    elif isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            out[prefix or "non_field_errors"] = [str(item) for item in detail]
        else:
            for index, item in enumerate(detail):
                if item:
                    out.update(_field_errors(item, f"{prefix}.{index}" if prefix else str(index)))
    else:
        out[prefix or "non_field_errors"] = [str(detail)]
    return out


_DRF_CODES: list[tuple[type[drf.APIException], str, str]] = [
    (drf.NotAuthenticated, "NOT_AUTHENTICATED", "Authentication credentials were not provided"),
    (drf.AuthenticationFailed, "NOT_AUTHENTICATED", "Invalid authentication credentials"),
    (drf.PermissionDenied, "PERMISSION_DENIED", "You do not have permission to do this"),
    (drf.NotFound, "NOT_FOUND", "Not found"),
    (drf.MethodNotAllowed, "METHOD_NOT_ALLOWED", "Method not allowed"),
    (drf.NotAcceptable, "NOT_ACCEPTABLE", "Cannot satisfy the Accept header"),
    (drf.UnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE", "Unsupported media type"),
    (drf.Throttled, "THROTTLED", "Too many requests"),
]


def database_unavailable(exc: BaseException) -> bool:
    """The database connection was lost, rather than a statement being wrong:
    ``OperationalError``/``InterfaceError``, or psycopg's own ``InternalError`` (one
    without an SQLSTATE: the exchange with the server broke off, PostgreSQL reported no
    error). Behind PgBouncer, a COMMIT sent after the server connection died (a restart, a
    terminated backend) reads the server's error and the pooler's as two results, which
    psycopg reports that way; the transaction is gone, as with any outage."""
    if isinstance(exc, (OperationalError, InterfaceError)):
        return True
    cause = exc.__cause__
    return (
        isinstance(exc, DatabaseError)
        and isinstance(cause, psycopg.InternalError)
        and cause.sqlstate is None
    )


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF ``EXCEPTION_HANDLER``: every exception a view raises becomes the envelope."""
    headers: dict[str, str] = {}
    if isinstance(exc, ApplicationError):
        set_rollback()
        return Response(exc.as_body(), status=exc.status_code, headers=exc.headers())
    if isinstance(exc, Http404):
        exc = drf.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf.PermissionDenied()
    if database_unavailable(exc):
        logger.warning("database unavailable: %s", exc)
        set_rollback()
        err = ServiceUnavailable()
        return Response(err.as_body(), status=err.status_code, headers={"Retry-After": "1"})
    if isinstance(exc, DatabaseError):
        return None  # a genuine bug: the middleware logs it and answers 500 in the envelope
    if not isinstance(exc, drf.APIException):
        return None

    set_rollback()
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))
    if isinstance(exc, (drf.ValidationError, drf.ParseError)):
        if isinstance(exc, drf.ParseError):
            fields = {"body": [str(exc.detail)]}
        else:
            fields = _field_errors(exc.detail)
        body = envelope("VALIDATION_ERROR", "Invalid input", {"fields": fields})
        return Response(body, status=400, headers=headers)
    for cls, code, message in _DRF_CODES:
        if isinstance(exc, cls):
            details: dict[str, Any] = {}
            if isinstance(exc, drf.Throttled) and exc.wait is not None:
                details["retry_after"] = int(exc.wait)
            text = str(exc.detail) if isinstance(exc.detail, str) else message
            if isinstance(exc, drf.NotAuthenticated):
                # 401 even for session-only clients, as API.md fixes it.
                exc.status_code = 401
            return Response(envelope(code, text, details), status=exc.status_code, headers=headers)
    return Response(
        envelope("ERROR", str(exc.detail) if isinstance(exc.detail, str) else "Request failed"),
        status=exc.status_code,
        headers=headers,
    )
