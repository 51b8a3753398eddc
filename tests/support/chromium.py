"""A real headless Chromium (Debian's, driven by Playwright) against pytest-django's live
server, for the browser tests of the storefront and the admin, with a screenshot of every
failing browser test in ``test-artifacts/``. A package's ``conftest.py`` imports the
fixtures (``browser``, ``default_warehouse``) and the ``pytest_runtest_makereport`` hook
that remembers each test's outcome for the screenshot."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connections

CHROMIUM = Path("/usr/bin/chromium")
# Without the networking switches Chromium keeps calling out to Google's hosts, which this
# closed network refuses, and it can hang at start.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(settings.BASE_DIR) / "test-artifacts"
SCREENSHOTS = Path(settings.BASE_DIR) / "docs" / "screenshots"
# UPDATE_SCREENSHOTS=1 refreshes the page screenshots in docs/screenshots/ during a run.
UPDATE_SCREENSHOTS = os.environ.get("UPDATE_SCREENSHOTS") == "1"

_call_report = pytest.StashKey[pytest.TestReport]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if report.when == "call":
        item.stash[_call_report] = report
    return report


@dataclass
class Browser:
    """One browser session: its page, the live server's address and what went wrong in
    the page's scripts."""

    page: object
    base_url: str
    script_errors: list[str] = field(default_factory=list)

    def open(self, path: str) -> None:
        self.page.goto(self.base_url + path)

    def snapshot(self, name: str, *, full_page: bool = True) -> None:
        """Saves a screenshot of the current page for the docs (only when asked to),
        squeezed with pngquant when it is installed."""
        if not UPDATE_SCREENSHOTS:
            return
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        pngquant = shutil.which("pngquant")
        if pngquant:
            options = ["--force", "--skip-if-larger", "--strip", "--quality=70-95", "--ext", ".png"]
            # A fixed tool found on PATH and a file this run just wrote.
            subprocess.run([pngquant, *options, str(path)], check=False)  # noqa: S603


@pytest.fixture
def default_warehouse(transactional_db):
    """The default warehouse migrate creates (a transactional test's flush removes it)."""
    from inventory.models import Warehouse

    warehouse, _ = Warehouse.objects.get_or_create(
        code="default", defaults={"name": "Default warehouse", "is_default": True}
    )
    return warehouse


@pytest.fixture
def browser(request, live_server, transactional_db, default_warehouse) -> Iterator[Browser]:
    """A fresh headless Chromium with an empty profile (so an empty localStorage).
    Parametrized indirectly with ``{"javascript": False}`` it runs no scripts at all."""
    options = getattr(request, "param", {})
    if not CHROMIUM.exists():
        pytest.fail("Chromium is missing: run `make browser` (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop running on this thread; Django would take
    # the test's own ORM calls for calls from async code. The live server runs in its own
    # thread and is not affected.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    profile = tempfile.mkdtemp(prefix="storefront-chromium-")
    manager = sync_playwright()
    playwright = manager.start()
    context = None
    try:
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1100, "height": 800},
            java_script_enabled=options.get("javascript", True),
        )
        context.set_default_timeout(10_000)
        page = context.pages[0] if context.pages else context.new_page()
        session = Browser(page=page, base_url=live_server.url)
        page.on("pageerror", lambda error: session.script_errors.append(str(error)))
        yield session
        # The test's own queries ran while Playwright's event loop was running, so Django
        # kept their connection in that async context, where the database teardown does
        # not look; left open, it blocks dropping the test database.
        connections.close_all()
        report = request.node.stash.get(_call_report, None)
        if report is not None and report.failed:
            ARTIFACTS.mkdir(exist_ok=True)
            name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
            page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
        elif session.script_errors:
            pytest.fail(f"script errors in the page: {session.script_errors}")
    finally:
        if context is not None:
            context.close()
        manager.__exit__(None, None, None)
        shutil.rmtree(profile, ignore_errors=True)
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous
