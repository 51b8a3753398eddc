"""Small request helpers shared by the apps' API views."""

from __future__ import annotations

from django.http import QueryDict
from rest_framework.request import Request


def request_actor(request: Request) -> str:
    """Who acts, for the logs and the reservation event log: ``staff:<username>``,
    ``customer:<id>`` for a logged-in shopper, else ``shopper`` (a cart-token holder)."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"staff:{user.username}" if user.is_staff else f"customer:{user.pk}"
    return "shopper"


def query_without_blanks(request: Request) -> QueryDict:
    """The query string without blank values: ``?status=`` means "no filter"."""
    query = request.query_params.copy()
    for key in list(query):
        values = [v for v in query.getlist(key) if v != ""]
        if values:
            query.setlist(key, values)
        else:
            del query[key]
    return query
