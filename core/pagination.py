import re

from rest_framework.pagination import PageNumberPagination

from core.errors import ValidationFailed

_DIGITS = re.compile(r"[0-9]{1,18}")


class Pagination(PageNumberPagination):
    """``{count, next, previous, results}`` with ``?page=`` and ``?page_size=`` (max 200).

    A parameter that is not a positive integer (``abc``, ``0``, ``-1``, a page size
    above the maximum) answers 400 ``VALIDATION_ERROR`` with ``details.fields`` naming
    it; a blank one means the default. A well-formed page past the last one stays 404.
    """

    page_size_query_param = "page_size"
    max_page_size = 200

    def _positive(self, name: str, raw: str, maximum: int | None = None) -> int:
        value = int(raw) if _DIGITS.fullmatch(raw) else 0
        if value < 1:
            raise ValidationFailed({name: ["A positive integer is required."]})
        if maximum is not None and value > maximum:
            raise ValidationFailed({name: [f"Ensure this value is at most {maximum}."]})
        return value

    def get_page_size(self, request) -> int:
        raw = request.query_params.get(self.page_size_query_param, "")
        if raw == "":
            return self.page_size
        return self._positive(self.page_size_query_param, raw.strip(), self.max_page_size)

    def get_page_number(self, request, paginator):
        raw = request.query_params.get(self.page_query_param, "")
        if raw == "":
            return 1
        if raw in self.last_page_strings:
            return paginator.num_pages
        return self._positive(self.page_query_param, raw.strip())

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        bounds = {
            self.page_query_param: {"minimum": 1},
            self.page_size_query_param: {"minimum": 1, "maximum": self.max_page_size},
        }
        for parameter in parameters:
            parameter["schema"] = {**parameter["schema"], **bounds.get(parameter["name"], {})}
        return parameters
