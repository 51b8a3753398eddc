"""The order timeline (SPEC §13 "Fulfilment"): every staff or system action on an order
is recorded (who, when, what, note), shown to staff in the API as ``events`` and never to
shoppers; staff add notes with ``POST orders/{id}/notes/``."""

from __future__ import annotations

import uuid

import pytest
from django.db import transaction

from checkout.confirm import confirm_checkout
from orders import services
from orders.models import Order, OrderEvent
from tests.support import API, TOKEN, assert_error, cart_in_checkout, stocked

pytestmark = pytest.mark.django_db


def place_order(*lines) -> Order:
    result = confirm_checkout(cart_id=cart_in_checkout(*lines).id)
    assert result.created
    return result.order


def timeline(order: Order) -> list[tuple[str, str, str]]:
    return [(e.actor, e.action, e.note) for e in order.events.order_by("at", "id")]


def test_status_changes_and_cancel_are_recorded_with_actor_and_note(staff_client):
    order = place_order((stocked(), 1))

    for status, note in (("confirmed", ""), ("processing", "picked"), ("shipped", "DHL 123")):
        response = staff_client.post(
            f"{API}/orders/{order.id}/status/", {"status": status, "note": note}, format="json"
        )
        assert response.status_code == 200, response.content

    actor = response.json()["events"][0]["actor"]
    assert actor.startswith("staff:")
    assert timeline(order) == [
        (actor, "status:pending→confirmed", ""),
        (actor, "status:confirmed→processing", "picked"),
        (actor, "status:processing→shipped", "DHL 123"),
    ]


def test_a_cancel_is_recorded_as_cancelled(staff_client):
    order = place_order((stocked(), 1))
    response = staff_client.post(f"{API}/orders/{order.id}/cancel/", {}, format="json")
    assert response.status_code == 200
    events = response.json()["events"]
    # The cancel first; a refund of the captured payment follows it in the timeline.
    assert (events[0]["action"], events[0]["note"]) == ("cancelled", "")
    assert events[0]["actor"].startswith("staff:")


def test_a_refused_change_records_nothing(staff_client):
    order = place_order((stocked(), 1))
    response = staff_client.post(
        f"{API}/orders/{order.id}/status/", {"status": "delivered"}, format="json"
    )
    assert_error(response, 409, "INVALID_ORDER_STATUS")
    assert timeline(order) == []


def test_staff_add_a_note_and_get_the_event(staff_client):
    order = place_order((stocked(), 1))

    response = staff_client.post(
        f"{API}/orders/{order.id}/notes/", {"note": "Customer called: leave at door"}, format="json"
    )

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"at", "actor", "action", "note"}
    assert body["action"] == "note"
    assert body["note"] == "Customer called: leave at door"
    assert body["actor"].startswith("staff:")
    assert timeline(order) == [(body["actor"], "note", "Customer called: leave at door")]


def test_a_note_must_not_be_blank(staff_client):
    order = place_order((stocked(), 1))
    response = staff_client.post(f"{API}/orders/{order.id}/notes/", {"note": " "}, format="json")
    assert_error(response, 400, "VALIDATION_ERROR")
    assert timeline(order) == []


def test_a_note_on_an_unknown_order_is_order_not_found(staff_client):
    for order_id in (uuid.uuid4(), "not-a-uuid"):
        response = staff_client.post(
            f"{API}/orders/{order_id}/notes/", {"note": "x"}, format="json"
        )
        assert_error(response, 404, "ORDER_NOT_FOUND")


def test_shoppers_may_not_add_notes(api_client):
    order = place_order((stocked(), 1))
    response = api_client.post(
        f"{API}/orders/{order.id}/notes/", {"note": "hi"}, format="json", HTTP_X_CART_TOKEN=TOKEN
    )
    assert_error(response, 401)
    assert timeline(order) == []


def test_staff_see_the_timeline_and_shoppers_do_not(staff_client, api_client):
    order = place_order((stocked(), 1))
    services.add_note(order_id=order.id, actor="staff:ops", note="gift wrap")

    staff_view = staff_client.get(f"{API}/orders/{order.id}/").json()
    shopper_view = api_client.get(f"{API}/orders/{order.id}/", HTTP_X_CART_TOKEN=TOKEN).json()
    listed = staff_client.get(f"{API}/orders/").json()["results"][0]

    assert [(e["actor"], e["action"], e["note"]) for e in staff_view["events"]] == [
        ("staff:ops", "note", "gift wrap")
    ]
    assert listed["events"] == staff_view["events"]
    assert "events" not in shopper_view
    cancelled = api_client.post(
        f"{API}/orders/{order.id}/cancel/", {}, format="json", HTTP_X_CART_TOKEN=TOKEN
    ).json()
    assert "events" not in cancelled


def test_record_event_belongs_to_the_callers_transaction():
    order = place_order((stocked(), 1))
    with pytest.raises(RuntimeError), transaction.atomic():
        services.record_event(order=order, actor="system", action="refund", note="4.25")
        raise RuntimeError("the refund failed")
    assert timeline(order) == []
    event = services.record_event(order=order.id, actor="system", action="refund", note="4.25")
    assert isinstance(event, OrderEvent)
    assert timeline(order) == [("system", "refund", "4.25")]
