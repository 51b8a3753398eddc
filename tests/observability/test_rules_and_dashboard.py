"""The alert rules, their unit tests and the Grafana dashboard speak of metrics that
exist, cover the checklist's thresholds and every metric family, and point at runbook
sections that exist. (``make alerts-check`` runs ``promtool check rules`` and
``promtool test rules`` on the same files.)"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from core import metrics

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "config/prometheus/alerts.yml"
RULE_TESTS = ROOT / "config/prometheus/alerts_test.yml"
DASHBOARD = ROOT / "docs/grafana-dashboard.json"
RUNBOOK = ROOT / "docs/operations.md"

SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def project_families() -> dict[str, set[str]]:
    """Family name → the sample names it exposes, for every metric of core/metrics.py."""
    families = {}
    for obj in vars(metrics).values():
        if isinstance(obj, MetricWrapperBase):
            [family] = obj.describe()
            families[family.name] = {family.name + s for s in SUFFIXES[family.type]}
    for name in [*metrics.SCRAPE_TIME_GAUGES, *metrics.PAYMENT_BREAKER_GAUGES]:
        families[name] = {name}
    return families


EXPOSED = set().union(*project_families().values())


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (not functions, labels or keywords)."""
    expr = re.sub(r'"[^"]*"', "", expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    names = set(re.findall(r"\b[a-zA-Z_:][a-zA-Z0-9_:]*\b(?!\s*\()", expr))
    return names - {"and", "or", "unless", "bool", "offset"}


def rules() -> list[dict]:
    return [
        rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]
    ]


def alerts() -> dict[str, dict]:
    return {rule["alert"]: rule for rule in rules() if "alert" in rule}


def slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_metric_name_extraction_reads_only_metrics():
    expr = (
        "histogram_quantile(0.95, sum by (le) (rate(stock_reservations_ttl_seconds_bucket[5m])))"
        ' / (sum(rate(payments_total{outcome!="captured"}[30m])) or vector(0)) > 0.01'
    )
    assert metric_names(expr) == {"stock_reservations_ttl_seconds_bucket", "payments_total"}


def test_every_rule_reads_only_metrics_the_project_exposes():
    for rule in rules():
        unknown = metric_names(rule["expr"]) - EXPOSED
        assert not unknown, (rule.get("alert") or rule.get("record"), unknown)


@pytest.mark.parametrize(
    ("alert", "metric", "threshold"),
    [
        ("StockReservationFailureRateHigh", "stock_reservations_total", "> 0.01"),
        ("OrphanedReservations", "stock_reservations_orphaned", "> 10"),
        ("OrphanedReservationsReleasedHigh", "reservations_orphaned_total", "> 10"),
        ("ReservationExtensionFailureRateHigh", "stock_reservations_extended_total", "> 0.05"),
        ("StockValidationFailureRateHigh", "stock_validations_total", "> 0.02"),
        ("PaymentWithStockIssuesHigh", "checkout_confirm_stock_failures_total", "> 0.005"),
        ("CapturedPaymentWithoutOrder", "payments_captured_without_order", "> 0"),
    ],
)
def test_checklist_thresholds_are_alerted(alert, metric, threshold):
    rule = alerts()[alert]
    assert metric in metric_names(rule["expr"])
    assert rule["expr"].strip().endswith(threshold)
    assert rule["labels"]["severity"] in {"warning", "critical"}
    assert rule["annotations"]["summary"]


def test_conversion_is_a_recording_rule():
    recorded = {rule["record"]: rule["expr"] for rule in rules() if "record" in rule}
    expr = recorded["checkout:cart_to_order_conversion:ratio_rate1h"]
    assert metric_names(expr) == {"carts_completed_total", "carts_checkout_total"}


def test_every_alert_has_a_unit_test_where_it_fires():
    fired = {
        case["alertname"]
        for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
        if case["exp_alerts"]
    }
    assert fired == set(alerts())


def test_every_alert_points_at_a_runbook_section():
    anchors = {
        slug(line.lstrip("#")) for line in RUNBOOK.read_text().splitlines() if line.startswith("#")
    }
    for name, rule in alerts().items():
        links = re.findall(r"docs/operations\.md#([\w-]+)", rule["annotations"]["description"])
        assert links, name
        for anchor in links:
            assert anchor in anchors, (name, anchor)
        assert name in RUNBOOK.read_text(), f"{name} is not explained in the runbook"


def dashboard_targets() -> list[tuple[str, str]]:
    board = json.loads(DASHBOARD.read_text())
    return [
        (panel["title"], target["expr"])
        for panel in board["panels"]
        for target in panel.get("targets", [])
    ]


def test_dashboard_is_valid_grafana_json():
    board = json.loads(DASHBOARD.read_text())
    assert board["title"] and board["uid"] and board["schemaVersion"] >= 30
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        assert {"h", "w", "x", "y"} <= set(panel["gridPos"])
        if panel["type"] != "row":
            assert panel["targets"], panel["title"]
            assert panel["datasource"]["type"] == "prometheus"


def test_dashboard_queries_only_metrics_the_project_exposes():
    for title, expr in dashboard_targets():
        unknown = metric_names(expr) - EXPOSED
        assert not unknown, (title, unknown)


def test_dashboard_has_a_panel_for_every_metric_family():
    queried = set().union(*(metric_names(expr) for _, expr in dashboard_targets()))
    missing = [name for name, samples in project_families().items() if not samples & queried]
    assert not missing
