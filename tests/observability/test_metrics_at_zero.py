"""Every labelled counter of ``core.metrics`` is exported at 0 for each known label value
from the first scrape, before any event, in every process: this one, a fresh gunicorn
(multiprocess files) and a fresh Celery worker's metrics endpoint."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY, Counter

from checkout.admin import STAFF_ABANDON_REASON
from checkout.cleanup import REASON_EXPIRED, REASON_STALE
from core import metrics
from inventory.models import RELEASE_REASON_OTHER, ReleaseReason
from tests.observability.metrics_helpers import get, gunicorn, metrics_worker, scrape, wait_for

LABELLED = [
    value for value in vars(metrics).values() if isinstance(value, Counter) and value._labelnames
]


def expected_series() -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    return {
        (f"{name}_total", ((label, value),))
        for name, labels in metrics.ZERO_LABEL_VALUES.items()
        for label, values in labels.items()
        for value in values
    }


def test_every_labelled_counter_declares_its_values():
    assert len(LABELLED) >= 6
    for counter in LABELLED:
        declared = metrics.ZERO_LABEL_VALUES.get(counter._name)
        assert declared is not None, f"{counter._name}: call metrics.export_at_zero for it"
        assert set(declared) == set(counter._labelnames), counter._name
        assert all(declared.values()), counter._name


def test_declared_values_are_the_ones_the_code_uses():
    declared = metrics.ZERO_LABEL_VALUES
    assert set(declared["reservations_released"]["reason"]) == {
        *ReleaseReason.values,
        RELEASE_REASON_OTHER,
    }
    assert set(declared["carts_abandoned"]["reason"]) >= {
        REASON_EXPIRED,
        REASON_STALE,
        STAFF_ABANDON_REASON,
    }


def test_this_process_exports_every_series():
    for name, ((label, value),) in expected_series():
        assert REGISTRY.get_sample_value(name, {label: value}) is not None, (name, value)


def test_export_at_zero_refuses_the_wrong_labels():
    with pytest.raises(ValueError, match="exactly"):
        metrics.export_at_zero(metrics.payments_total, reason=("x",))


def _assert_all_at_zero(text: str) -> None:
    page = scrape(text)
    missing = expected_series() - set(page)
    assert not missing, sorted(missing)
    assert {key: page[key] for key in expected_series() if page[key] != 0} == {}


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_fresh_gunicorn_exports_every_series_at_zero(tmp_path):
    with gunicorn(tmp_path / "prometheus") as port:
        wait_for(f"http://127.0.0.1:{port}/healthz")
        text = get(f"http://127.0.0.1:{port}/metrics")[1]
    _assert_all_at_zero(text)


@pytest.mark.slow
def test_fresh_celery_worker_exports_every_series_at_zero(tmp_path, settings):
    queue = "obs-zero-unused"
    with metrics_worker(tmp_path / "prometheus", queue, settings.CELERY_BROKER_URL) as port:
        text = wait_for(f"http://127.0.0.1:{port}/metrics")
    _assert_all_at_zero(text)
