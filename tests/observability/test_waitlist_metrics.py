"""Waitlists in ``/metrics`` and the alert rules (SPEC §15): the scrape-time length of the
waitlists per state, the offer counters moving with offers made and lapsed, and the alert
on offers lapsing unclaimed (its thresholds; ``make alerts-check`` runs its unit tests)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from django.utils import timezone

from inventory import services, waitlist, waitlist_jobs
from inventory.models import Reservation, StockLevel
from tests.observability.metrics_helpers import sample, scrape
from tests.support import metric, stocked
from tests.support.factories import CartFactory

ROOT = Path(__file__).resolve().parents[2]


def join(product, quantity: int = 1):
    return waitlist.join(
        cart_id=CartFactory().id, product=product, warehouse=None, quantity=quantity, actor="t"
    ).entry


def waitlist_gauges(client) -> dict[str, float | None]:
    page = scrape(client.get("/metrics").content.decode())
    return {
        "waiting": sample(page, "waitlist_entries", status="waiting"),
        "offered": sample(page, "waitlist_entries", status="offered"),
        "units": sample(page, "waitlist_units_waiting"),
    }


@pytest.mark.django_db
def test_the_waitlists_length_per_state_is_read_at_scrape_time(client):
    assert waitlist_gauges(client) == {"waiting": 0, "offered": 0, "units": 0}
    row = stocked(on_hand=0)
    other = stocked(on_hand=0).product
    first, _, _ = join(row.product, 2), join(row.product, 1), join(other, 4)
    assert waitlist_gauges(client) == {"waiting": 3, "offered": 0, "units": 7}

    # Two units come in: the first entry (2 units) holds an offer, the rest wait.
    services.set_stock(product=row.product, warehouse=row.warehouse, on_hand=2, actor="t")

    assert waitlist_gauges(client) == {"waiting": 2, "offered": 1, "units": 5}
    waitlist.leave(cart_id=first.cart_id, entry_id=first.id, actor="t")  # gives it back
    # Its units went to the next entry (1 unit); one unit is free again.
    assert waitlist_gauges(client) == {"waiting": 1, "offered": 1, "units": 4}


@pytest.mark.django_db
def test_offer_counters_move_with_offers_made_and_lapsed(django_capture_on_commit_callbacks):
    row = stocked(on_hand=0)
    join(row.product)
    join(row.product)
    before = {o: metric("waitlist_offers_total", outcome=o) for o in ("offered", "expired")}

    with django_capture_on_commit_callbacks(execute=True):
        services.set_stock(product=row.product, warehouse=row.warehouse, on_hand=1, actor="t")
    Reservation.objects.filter(waitlist_entry__isnull=False).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    with django_capture_on_commit_callbacks(execute=True):
        waitlist_jobs.serve_waitlists(batch_size=10)

    moved = {o: metric("waitlist_offers_total", outcome=o) - before[o] for o in before}
    assert moved == {"offered": 2, "expired": 1}  # the lapsed offer passed to the second
    assert StockLevel.objects.get(id=row.id).reserved == 1


def test_the_lapsing_offers_alert_needs_a_high_ratio_and_a_minimum_volume():
    groups = yaml.safe_load((ROOT / "config/prometheus/alerts.yml").read_text())["groups"]
    [rule] = [
        r for g in groups for r in g["rules"] if r.get("alert") == "WaitlistOffersLapsingHigh"
    ]
    expr = " ".join(rule["expr"].split())
    ratio = (
        'sum(increase(waitlist_offers_total{outcome="expired"}[15m])) '
        '/ sum(increase(waitlist_offers_total{outcome="offered"}[15m])) > 0.5'
    )
    volume = 'and sum(increase(waitlist_offers_total{outcome="offered"}[15m])) >= 10'
    assert expr == f"{ratio} {volume}"
    assert rule["labels"]["severity"] == "warning"
    assert "docs/operations.md#waitlist-offers-lapsing" in rule["annotations"]["description"]
