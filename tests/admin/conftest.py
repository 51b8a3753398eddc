from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from tests.support import Shop, build_shop
from tests.support.chromium import (
    browser,
    default_warehouse,
    pytest_runtest_makereport,
)
from tests.support.factories import StaffFactory

# The headless Chromium of the browser tests (and its screenshot of a failing test).
__all__ = ("browser", "default_warehouse", "pytest_runtest_makereport")


@pytest.fixture
def shop(db) -> Shop:
    return build_shop()


@pytest.fixture
def admin_user(db):
    return StaffFactory(username="ops-admin", is_superuser=True)


@pytest.fixture
def staff_browser(admin_user) -> Client:
    """A staff member with every permission, signed in to the admin."""
    client = Client()
    client.force_login(admin_user)
    return client


@pytest.fixture
def viewer_browser(db) -> Client:
    """A staff member who may only look (``view_*`` permissions of the shop's apps)."""
    user = StaffFactory(username="ops-viewer")
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label__in=["inventory", "payments", "carts", "orders", "checkout"],
            codename__startswith="view_",
        )
    )
    client = Client()
    client.force_login(user)
    return client
