"""The JSON parser of the API (DRF ``DEFAULT_PARSER_CLASSES``).

DRF's own ``JSONParser`` turns most bad bodies into a ``ParseError``, but not all of
them: a body nested deeper than Python's recursion limit raises ``RecursionError`` (a
500), and bodies that parse fine can still break later (a 100,000-digit integer raises
``ValueError`` in ``int()``, ``1e999999`` becomes ``inf``, a lone surrogate or a NUL
character cannot be stored in PostgreSQL). This parser refuses all of those up front
with a ``ParseError``, which ``core.errors`` answers as 400 ``VALIDATION_ERROR`` with
``details.fields.body``.

What is refused:

* a body larger than ``DATA_UPLOAD_MAX_MEMORY_SIZE`` bytes;
* a body that is not UTF-8 in the declared charset, or not JSON;
* nesting deeper than :data:`MAX_DEPTH` arrays/objects;
* an integer literal of more than :data:`MAX_INTEGER_DIGITS` digits, a number literal
  longer than :data:`MAX_NUMBER_LENGTH` characters, a float that is not finite
  (``1e999999``), and the non-JSON constants ``NaN``, ``Infinity``, ``-Infinity``;
* an object with the same key twice (which value would win is parser-dependent);
* a string (value or key) holding a NUL character or an unpaired surrogate.
"""

from __future__ import annotations

import json
import math
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser
from rest_framework.renderers import JSONRenderer

MAX_DEPTH = 32
MAX_INTEGER_DIGITS = 64
MAX_NUMBER_LENGTH = 128


class _Refused(ValueError):
    """A JSON body that is well-formed enough to read but refused (see module doc)."""


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise _Refused(f"Integer with more than {MAX_INTEGER_DIGITS} digits")
    return int(text)


def _parse_float(text: str) -> float:
    if len(text) > MAX_NUMBER_LENGTH:
        raise _Refused(f"Number longer than {MAX_NUMBER_LENGTH} characters")
    value = float(text)
    if not math.isfinite(value):
        raise _Refused("Number out of range")
    return value


def _parse_constant(name: str) -> float:
    raise _Refused(f"{name} is not valid JSON")


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Refused(f'Duplicate key "{key[:64]}"')
        out[key] = value
    return out


def _check_string(text: str) -> None:
    if "\x00" in text:
        raise _Refused("Strings must not contain NUL characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise _Refused("Strings must not contain unpaired surrogates") from None


def _check_tree(data: Any) -> None:
    """Depth and string checks over the parsed value, without recursion."""
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, str):
            _check_string(node)
        elif isinstance(node, (dict, list)):
            if depth >= MAX_DEPTH:
                raise _Refused(f"Nested deeper than {MAX_DEPTH} levels")
            if isinstance(node, dict):
                for key, value in node.items():
                    _check_string(key)
                    stack.append((value, depth + 1))
            else:
                stack.extend((item, depth + 1) for item in node)


def loads(raw: bytes, encoding: str = "utf-8") -> Any:
    """Parses a JSON body; raises ``ValueError`` with a client-facing message."""
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        raise _Refused(f"Body is not valid {encoding}: {exc.reason}") from None
    try:
        data = json.loads(
            text,
            parse_int=_parse_int,
            parse_float=_parse_float,
            parse_constant=_parse_constant,
            object_pairs_hook=_object_without_duplicates,
        )
    except RecursionError:
        raise _Refused(f"Nested deeper than {MAX_DEPTH} levels") from None
    except _Refused:
        raise
    except ValueError as exc:
        raise _Refused(f"Invalid JSON: {exc}") from None
    _check_tree(data)
    return data


class SafeJSONParser(BaseParser):
    """``application/json`` bodies, with the limits of :func:`loads`."""

    media_type = "application/json"
    renderer_class = JSONRenderer

    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read() if limit is None else stream.read(limit + 1)
        if limit is not None and len(raw) > limit:
            raise ParseError(f"JSON parse error - Body larger than {limit} bytes")
        try:
            return loads(raw, encoding)
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
