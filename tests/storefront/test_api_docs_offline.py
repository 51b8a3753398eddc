"""``/api/docs/`` (Swagger UI) is self-contained: its JavaScript, CSS and favicon come
from the project's static files (drf-spectacular-sidecar), so it renders every operation
with all outside network blocked."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from drf_spectacular.generators import SchemaGenerator

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _operation_count() -> int:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    methods = {"get", "post", "put", "patch", "delete"}
    return sum(1 for item in schema["paths"].values() for method in item if method in methods)


def test_swagger_ui_renders_the_operations_with_outside_network_blocked(browser):
    page = browser.page
    own = urlsplit(browser.base_url).netloc
    blocked: list[str] = []
    served: list[str] = []

    def only_the_live_server(route, request) -> None:
        if urlsplit(request.url).netloc == own:
            served.append(request.url)
            route.continue_()
        else:
            blocked.append(request.url)
            route.abort()

    page.route("**/*", only_the_live_server)
    browser.open("/api/docs/")
    page.wait_for_selector(".opblock", timeout=15_000)

    rendered = page.locator(".opblock").count()
    assert rendered == _operation_count(), (rendered, _operation_count())
    assert page.locator(".opblock-summary-path", has_text="/api/v1/carts/{cart_id}/items/").count()
    assert page.locator(".info .title").inner_text().startswith("Checkout API")
    assert blocked == [], blocked
    assert any("swagger-ui-dist" in url for url in served), served
    assert browser.script_errors == []
