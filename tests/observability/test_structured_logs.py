"""Every reservation operation and every cart status change is one JSON log line that
carries the cart id, the reservation ids, the order (id and, on the order's own lines,
its number) and the request id of the HTTP request — or of the request that enqueued
the Celery task — that caused it.

Lines are captured through the project's own formatter and request-id filter (the ones
``settings.LOGGING`` installs), so what is asserted is what ops will read."""

from __future__ import annotations

import io
import json
import logging
import time
from datetime import timedelta

import pytest
import time_machine
from celery.contrib.testing.worker import start_worker
from django.conf import settings
from django.utils import timezone

from config.celery import app
from core.logging import JsonFormatter, RequestIdFilter, request_id_var
from inventory.models import Reservation, ReservationEvent, ReservationStatus
from inventory.tasks import expire_reservations
from orders.models import Order
from tests.observability.metrics_helpers import Shopper
from tests.support import lapsed_reservation, stocked
from tests.support.factories import WarehouseFactory


class JsonLog:
    def __init__(self) -> None:
        self.stream = io.StringIO()
        self.handler = logging.StreamHandler(self.stream)
        self.handler.setFormatter(JsonFormatter(settings.LOGGING["formatters"]["json"]["format"]))
        self.handler.addFilter(RequestIdFilter())

    def attach(self) -> None:
        """(Re)installs the handler on the root logger: starting a Celery worker runs
        ``django.setup()`` again, which re-applies ``settings.LOGGING``."""
        root = logging.getLogger()
        if self.handler not in root.handlers:
            root.addHandler(self.handler)

    def lines(self, event: str | None = None, **match: object) -> list[dict]:
        out = [json.loads(line) for line in self.stream.getvalue().splitlines()]
        return [
            line
            for line in out
            if (event is None or line.get("event") == event)
            and all(line.get(k) == v for k, v in match.items())
        ]

    def one(self, event: str, **match: object) -> dict:
        found = self.lines(event, **match)
        assert len(found) == 1, (event, match, self.lines())
        return found[0]


@pytest.fixture
def json_log():
    log = JsonLog()
    root = logging.getLogger()
    level = root.level
    log.attach()
    root.setLevel(logging.INFO)
    try:
        yield log
    finally:
        root.removeHandler(log.handler)
        root.setLevel(level)


def ids_of(**filters: object) -> list[int]:
    return list(Reservation.objects.filter(**filters).order_by("id").values_list("id", flat=True))


def status_change(log: JsonLog, cart_id: str, source: str, target: str) -> dict:
    return log.one("cart.status_changed", cart_id=cart_id, from_status=source, to_status=target)


@pytest.mark.django_db
def test_a_paid_checkout_is_traceable_from_start_to_order(json_log):
    a, b = stocked(), stocked()
    shopper = Shopper(request_id="req-start")
    shopper.add(a.product.sku, 2)
    shopper.add(b.product.sku, 1)
    assert shopper.start().status_code == 201
    cart = shopper.cart_id
    held = ids_of(cart_id=cart)

    created = json_log.one("reservation.created", cart_id=cart)
    assert created["reservation_ids"] == held
    assert created["request_id"] == "req-start"
    assert created["quantity"] == 3
    assert created["levelname"] == "INFO" and created["name"] == "inventory.reservations"
    assert status_change(json_log, cart, "active", "checkout")["request_id"] == "req-start"

    shopper.headers["HTTP_X_REQUEST_ID"] = "req-activity"
    with time_machine.travel(timezone.now() + timedelta(seconds=200)):
        assert shopper.update(current_step=2).status_code == 200
    extended = json_log.one("reservation.extended", cart_id=cart, request_id="req-activity")
    assert extended["reservation_ids"] == held

    shopper.headers["HTTP_X_REQUEST_ID"] = "req-pay"
    shopper.ready_to_pay("card")
    assert shopper.confirm().status_code == 201
    order = Order.objects.get(cart_id=cart)
    confirmed = json_log.one("reservation.confirmed", cart_id=cart)
    assert confirmed["reservation_ids"] == held
    assert confirmed["order_id"] == str(order.id)
    assert confirmed["request_id"] == "req-pay"
    done = json_log.one("checkout.confirmed", cart_id=cart)
    assert (done["order_id"], done["number"], done["request_id"]) == (
        str(order.id),
        order.number,
        "req-pay",
    )
    assert status_change(json_log, cart, "checkout", "completed")["request_id"] == "req-pay"


@pytest.mark.django_db
def test_cancel_decline_and_expiry_each_log_what_they_released(json_log):
    stock = stocked()

    cancelled = Shopper(request_id="req-cancel")
    cancelled.add(stock.product.sku)
    assert cancelled.start().status_code == 201
    assert cancelled.cancel().status_code == 200
    released = json_log.one("reservation.released", cart_id=cancelled.cart_id)
    assert released["reason"] == "checkout_cancelled"
    assert released["reservation_ids"] == ids_of(cart_id=cancelled.cart_id)
    assert released["request_id"] == "req-cancel"
    status_change(json_log, cancelled.cart_id, "checkout", "active")

    declined = Shopper(request_id="req-decline")
    declined.add(stock.product.sku)
    assert declined.start().status_code == 201
    declined.ready_to_pay("test_decline")
    assert declined.confirm().status_code == 402
    released = json_log.one("reservation.released", cart_id=declined.cart_id)
    assert (released["reason"], released["request_id"]) == ("payment_failed", "req-decline")
    status_change(json_log, declined.cart_id, "checkout", "active")

    lapsed = Shopper(request_id="req-late")
    lapsed.add(stock.product.sku)
    assert lapsed.start().status_code == 201
    with time_machine.travel(timezone.now() + timedelta(seconds=301)):
        response = lapsed.call("get", "checkout/")
    assert response.status_code == 410
    expired = json_log.one("reservation.expired", cart_id=lapsed.cart_id)
    assert expired["reservation_ids"] == ids_of(cart_id=lapsed.cart_id)
    assert expired["request_id"] == "req-late"
    change = status_change(json_log, lapsed.cart_id, "checkout", "abandoned")
    assert (change["reason"], change["request_id"]) == ("expired", "req-late")


@pytest.mark.django_db
def test_order_cancel_logs_the_restocked_reservations(json_log, staff_client):
    stock = stocked()
    shopper = Shopper()
    shopper.add(stock.product.sku, 2)
    assert shopper.start().status_code == 201
    shopper.ready_to_pay()
    order_id = shopper.confirm().json()["id"]
    response = staff_client.post(
        f"/api/v1/orders/{order_id}/cancel/", {}, format="json", HTTP_X_REQUEST_ID="req-refund"
    )
    assert response.status_code == 200, response.content
    restocked = json_log.one("reservation.restocked", order_id=order_id)
    assert restocked["reservation_ids"] == ids_of(order_id=order_id)
    assert (restocked["reason"], restocked["request_id"]) == ("order_cancelled", "req-refund")
    assert restocked["cart_id"] == shopper.cart_id


@pytest.mark.django_db(transaction=True)
def test_request_id_follows_into_the_celery_task_it_enqueued(json_log):
    warehouse = WarehouseFactory(code="obs-logs")  # the default may have been flushed
    lapsed = [lapsed_reservation(stocked(warehouse=warehouse)) for _ in range(3)]
    app.control.purge()  # leftovers of earlier tests must not run here
    # start_worker sets the root logger's level to its loglevel (default "error") once a
    # worker has run in this process; INFO keeps the reservation lines.
    with start_worker(
        app, pool="solo", perform_ping_check=False, shutdown_timeout=10, loglevel="INFO"
    ):
        json_log.attach()
        token = request_id_var.set("req-ops-console")
        try:
            expire_reservations.delay()
        finally:
            request_id_var.reset(token)
        deadline = time.monotonic() + 20
        while Reservation.objects.filter(status=ReservationStatus.PENDING).exists():
            assert time.monotonic() < deadline, "the task did not run"
            time.sleep(0.1)
        time.sleep(0.3)  # let the task finish logging its summary

    expired = json_log.one("reservation.expired", request_id="req-ops-console")
    assert sorted(expired["reservation_ids"]) == [r.id for r in lapsed]
    assert expired["actor"] == "task:expire_reservations"
    assert json_log.one("job.finished", request_id="req-ops-console")["done"] == 3
    events = ReservationEvent.objects.filter(kind="expired")
    assert {e.request_id for e in events} == {"req-ops-console"}
