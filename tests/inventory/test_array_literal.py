"""``locks.array_literal``: the array text the hot statements pass instead of Python lists
reads back in PostgreSQL as the same values."""

from datetime import UTC, datetime, timedelta, timezone
from uuid import uuid4

import pytest
from django.db import connection

from inventory.locks import array_literal

pytestmark = pytest.mark.django_db


def _read_back(values, pg_type: str):
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT %s::{pg_type}[]", [array_literal(values)])
        return cursor.fetchone()[0]


def test_integers_uuids_and_nulls_read_back_unchanged():
    ids = [1, 42, 9_000_000_000]
    uuids = [uuid4(), uuid4()]
    assert _read_back(ids, "bigint") == ids
    assert _read_back(uuids, "uuid") == uuids
    assert _read_back([7, None], "bigint") == [7, None]
    assert _read_back([], "bigint") == []


@pytest.mark.parametrize(
    "text",
    ["priority", 'say "hi"', "back\\slash", "comma, brace } { and 'quote'", "NULL", "", " x "],
)
def test_strings_are_quoted_whatever_they_hold(text):
    assert _read_back([text, "other"], "varchar") == [text, "other"]


def test_datetimes_keep_their_instant():
    moments = [
        datetime(2026, 11, 30, 14, 8, 9, 123456, tzinfo=UTC),
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=-5))),
    ]
    assert _read_back(moments, "timestamptz") == moments


@pytest.mark.parametrize("value", [True, 1.5, b"x"])
def test_other_types_are_refused(value):
    with pytest.raises(TypeError):
        array_literal([value])
