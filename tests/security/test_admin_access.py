"""The Django admin is for staff only: every page of every registered model sends
anonymous visitors and signed-in customers to the login page."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.urls import reverse

from tests.support.factories import StaffFactory, UserFactory

pytestmark = pytest.mark.django_db


def _admin_urls() -> list[str]:
    urls = [reverse("admin:index")]
    for model in admin.site._registry:
        meta = model._meta
        urls.append(reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"))
        urls.append(reverse(f"admin:{meta.app_label}_{meta.model_name}_add"))
    return urls


ADMIN_URLS = _admin_urls()


def test_the_shop_models_are_in_the_admin():
    labels = {m._meta.label for m in admin.site._registry}
    assert {"carts.Cart", "inventory.Reservation", "orders.Order"} <= labels


@pytest.mark.parametrize("url", ADMIN_URLS)
def test_admin_page_sends_anonymous_visitors_to_login(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


@pytest.mark.parametrize("url", ADMIN_URLS)
def test_admin_page_sends_customers_to_login(client, url):
    client.force_login(UserFactory())
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_admin_index_opens_for_staff(client):
    client.force_login(StaffFactory())
    assert client.get(reverse("admin:index")).status_code == 200


def test_admin_login_refuses_a_customer_password(client):
    UserFactory(username="shopper")
    response = client.post(
        reverse("admin:login"),
        {"username": "shopper", "password": "pw-for-tests", "next": reverse("admin:index")},
    )
    assert response.status_code == 200  # the form again, with an error
    assert "_auth_user_id" not in client.session
