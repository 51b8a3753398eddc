"""docs/api.md is the project's API reference: it must list exactly the operations the
served OpenAPI schema has, each with the schema's status codes, and every error code the
API can answer, with its status.

The page's parseable parts:

* an operation is a heading ``### `METHOD /api/v1/...` `` followed by a table whose rows
  start ``| <status> |``;
* the error table's rows start ``| `CODE` | <status> |``.

Any other ``METHOD /api/v1/...`` mention on the page must also be a real operation, so a
planned endpoint cannot slip in as if it were served.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from pathlib import Path

import pytest
from django.conf import settings
from drf_spectacular.generators import SchemaGenerator

from core import middleware
from core.errors import _DRF_CODES, ApplicationError

API_DOC = Path(settings.BASE_DIR) / "docs" / "api.md"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
APPS = ("core", "inventory", "payments", "carts", "orders", "checkout", "ops", "storefront")

_HEADING = re.compile(r"^### `(?P<method>[A-Z]+) (?P<path>/api/v1/\S*)`\s*$")
_STATUS_ROW = re.compile(r"^\|\s*(?P<status>[1-5]\d\d)\s*\|")
_MENTION = re.compile(r"\b(?P<method>" + "|".join(METHODS) + r") (?P<path>/api/v1/[^\s`|]*)")
_ERROR_ROW = re.compile(r"^\|\s*`(?P<code>[A-Z][A-Z_]+)`\s*\|\s*(?P<status>\d{3})\s*\|")


def schema_operations() -> dict[tuple[str, str], set[int]]:
    """``{(METHOD, path): {status, ...}}`` of the schema ``/api/schema/`` serves."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    operations = {}
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method.upper() in METHODS:
                statuses = {int(status) for status in operation["responses"]}
                operations[(method.upper(), path)] = statuses
    return operations


def documented_operations(text: str) -> dict[tuple[str, str], set[int]]:
    """``{(METHOD, path): {status, ...}}`` from the page's operation headings and tables."""
    operations: dict[tuple[str, str], set[int]] = {}
    current: tuple[str, str] | None = None
    for line in text.splitlines():
        heading = _HEADING.match(line)
        if heading:
            current = (heading["method"], heading["path"])
            assert current not in operations, f"{current} is documented twice"
            operations[current] = set()
        elif line.startswith("#"):
            current = None
        elif current is not None and (row := _STATUS_ROW.match(line)):
            operations[current].add(int(row["status"]))
    return operations


def answerable_error_codes() -> dict[str, set[int]]:
    """Every ``{code: {status, ...}}`` the API can answer with: the apps' ApplicationError
    subclasses (``<app>/errors.py``), DRF's exceptions as ``core.errors`` maps them, and
    what the middleware puts in the envelope for Django's own answers."""
    for app in APPS:
        if importlib.util.find_spec(f"{app}.errors") is not None:
            importlib.import_module(f"{app}.errors")
    codes: dict[str, set[int]] = {}
    pending = list(ApplicationError.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.__module__.split(".")[0] in APPS and cls.__module__.endswith(".errors"):
            codes.setdefault(cls.code, set()).add(cls.status_code)
    for drf_exception, code, _message in _DRF_CODES:
        codes.setdefault(code, set()).add(drf_exception.status_code)
    for status, (code, _message) in middleware._STATUS_CODES.items():
        codes.setdefault(code, set()).add(status)
    return codes


def documented_error_codes(text: str) -> dict[str, int]:
    documented: dict[str, int] = {}
    for line in text.splitlines():
        row = _ERROR_ROW.match(line)
        if row:
            assert row["code"] not in documented, f"{row['code']} is in the error table twice"
            documented[row["code"]] = int(row["status"])
    return documented


@pytest.fixture(scope="module")
def api_doc() -> str:
    return API_DOC.read_text(encoding="utf-8")


def test_reference_lists_exactly_the_schema_operations(api_doc):
    served = schema_operations()
    documented = documented_operations(api_doc)
    assert sorted(set(served) - set(documented)) == [], "served but not in docs/api.md"
    assert sorted(set(documented) - set(served)) == [], "in docs/api.md but not served"


def test_reference_gives_each_operation_the_schema_status_codes(api_doc):
    served = schema_operations()
    documented = documented_operations(api_doc)
    wrong = {
        operation: {"schema": sorted(served[operation]), "docs": sorted(statuses)}
        for operation, statuses in documented.items()
        if operation in served and statuses != served[operation]
    }
    assert wrong == {}


def test_reference_mentions_no_operation_that_is_not_served(api_doc):
    served = set(schema_operations())
    mentioned = {(m["method"], m["path"]) for m in _MENTION.finditer(api_doc)}
    assert sorted(mentioned - served) == []


def test_reference_error_table_has_every_answerable_code_with_its_status(api_doc):
    answerable = answerable_error_codes()
    documented = documented_error_codes(api_doc)
    assert sorted(set(answerable) - set(documented)) == [], "answerable but not documented"
    assert sorted(set(documented) - set(answerable)) == [], "documented but never answered"
    wrong = {
        code: {"code": sorted(answerable[code]), "docs": documented[code]}
        for code in documented
        if documented[code] not in answerable[code]
    }
    assert wrong == {}


def test_api_error_codes_are_found_at_all():
    # Guards the checks above against passing vacuously (an empty collection).
    codes = answerable_error_codes()
    assert {"VALIDATION_ERROR", "CART_NOT_FOUND", "INSUFFICIENT_STOCK"} <= set(codes)
    assert len(schema_operations()) > 20
