"""JSON bodies a client should never send: each one must answer 400 VALIDATION_ERROR in
the envelope (``core.parsers``), never a 5xx. Shared by the security tests and the fuzzing."""

from __future__ import annotations

HOSTILE_BODIES: dict[str, bytes] = {
    "a megabyte of [": b"[" * 1_000_000,
    "arrays nested 33 deep": b"[" * 33 + b"]" * 33,
    "objects nested 40 deep": b'{"a":' * 40 + b"1" + b"}" * 40,
    "exponent 1e999999": b'{"sku": "A", "quantity": 1e999999}',
    "negative exponent overflow": b'{"sku": "A", "quantity": -1e999999}',
    "100000-digit integer": b'{"sku": "A", "quantity": ' + b"9" * 100_000 + b"}",
    "65-digit integer": b'{"sku": "A", "quantity": ' + b"1" * 65 + b"}",
    "100000-digit fraction": b'{"sku": "A", "quantity": 1.' + b"0" * 100_000 + b"}",
    "NaN": b'{"sku": "A", "quantity": NaN}',
    "Infinity": b'{"sku": "A", "quantity": Infinity}',
    "-Infinity": b'{"sku": "A", "quantity": -Infinity}',
    "invalid UTF-8": b'{"sku": "\xff\xfe", "quantity": 1}',
    "overlong UTF-8": b'{"sku": "\xc0\xaf", "quantity": 1}',
    "truncated UTF-8": b'{"sku": "\xe2\x82", "quantity": 1}',
    "unpaired surrogate": b'{"sku": "\\ud800", "quantity": 1}',
    "NUL character": b'{"sku": "A\\u0000B", "quantity": 1}',
    "surrogate in a key": b'{"\\udfff": 1}',
    "duplicate key": b'{"sku": "A", "quantity": 1, "quantity": 2}',
    "trailing garbage": b'{"sku": "A", "quantity": 1} x',
    "body over 2.5 MB": b'{"sku": "' + b"a" * 2_700_000 + b'", "quantity": 1}',
}
