"""``?page=`` and ``?page_size=`` (core.pagination): a value that is not a positive
integer, or a page size above 200, answers 400 VALIDATION_ERROR naming the parameter;
blank means the default; a page past the end stays 404."""

from __future__ import annotations

import pytest
from drf_spectacular.generators import SchemaGenerator

from tests.support import assert_error
from tests.support.factories import ProductFactory

pytestmark = pytest.mark.django_db

LISTS = ["/api/v1/products/", "/api/v1/warehouses/", "/api/v1/orders/"]
LISTS += ["/api/v1/inventory/reservations/"]


@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"page_size": "abc"}, "page_size"),
        ({"page_size": "0"}, "page_size"),
        ({"page_size": "-5"}, "page_size"),
        ({"page_size": "201"}, "page_size"),
        ({"page_size": "9" * 5000}, "page_size"),
        ({"page_size": "1.5"}, "page_size"),
        ({"page_size": "\uff11"}, "page_size"),  # a full-width 1 is not an ASCII digit
        ({"page": "abc"}, "page"),
        ({"page": "0"}, "page"),
        ({"page": "-1"}, "page"),
        ({"page": "9" * 5000}, "page"),
    ],
)
def test_invalid_pagination_parameter_is_a_validation_error(staff_client, path, query, field):
    response = staff_client.get(path, query)

    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert list(error["details"]["fields"]) == [field]


def test_valid_blank_and_last_parameters_page_as_before(staff_client):
    ProductFactory.create_batch(5)

    sized = staff_client.get("/api/v1/products/", {"page_size": "2", "page": "2"}).json()
    maximum = staff_client.get("/api/v1/products/", {"page_size": "200"})
    blank = staff_client.get("/api/v1/products/", {"page_size": "", "page": ""}).json()
    last = staff_client.get("/api/v1/products/", {"page_size": "2", "page": "last"}).json()

    assert (sized["count"], len(sized["results"])) == (5, 2)
    assert sized["next"] is not None and sized["previous"] is not None
    assert maximum.status_code == 200 and len(maximum.json()["results"]) == 5
    assert len(blank["results"]) == 5
    assert (len(last["results"]), last["next"]) == (1, None)


def test_page_past_the_end_is_still_not_found(staff_client):
    ProductFactory.create_batch(3)

    response = staff_client.get("/api/v1/products/", {"page_size": "2", "page": "3"})

    assert_error(response, 404, "NOT_FOUND")


def test_every_paginated_operation_documents_400_and_the_bounds():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    paginated = {
        f"{method.upper()} {path}": (operation, {p["name"]: p for p in operation["parameters"]})
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if any(p.get("name") == "page_size" for p in operation.get("parameters", []))
    }
    assert len(paginated) >= 4
    for label, (operation, params) in paginated.items():
        assert "400" in operation["responses"], label
        assert params["page_size"]["schema"]["minimum"] == 1, label
        assert params["page_size"]["schema"]["maximum"] == 200, label
        assert params["page"]["schema"]["minimum"] == 1, label
