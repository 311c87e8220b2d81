"""Scoring alerts against labels: exact rates on small cases, per rule and per typology."""

from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction

import pytest

from schemas.alerts import Alert, CustomerSnapshot, Evidence, Severity
from streams.evaluation import as_json, evaluate, percent, render

S, N = ("suspicious", None), ("normal", None)


def alert(customer: str, rule: str) -> Alert:
    return Alert(
        alert_id=f"{customer}-{rule}", customer_id=customer, rule_id=rule,
        rule_set_version="t", severity=Severity.MEDIUM,
        triggered_at=datetime(2026, 1, 1, tzinfo=UTC), summary="s",
        observed_value=Decimal(1), threshold=Decimal(1), measure="m",
        evidence=Evidence(triggering_events=[]),
        customer=CustomerSnapshot(kyc_status="verified", kyc_tier=1, country_of_residence=None,
                                  nationality=None, pep=False, sanctions_hit=False,
                                  expected_monthly_volume_usd=None))


# (labels, alerts as (customer, rule), overall: alerts, suspicious alerted, normal alerted,
#  recall, FPR, precision, alerts per 1,000 customers)
CASES = [
    pytest.param({"a": S, "b": N}, [], (0, 0, 0, Fraction(0), Fraction(0), None, Fraction(0)),
                 id="no alerts: precision undefined"),
    pytest.param({}, [("a", "r")], (0, 0, 0, None, None, None, None),
                 id="no labels: every rate undefined"),
    pytest.param({"b": N, "d": N}, [("b", "r")],
                 (1, 0, 1, None, Fraction(1, 2), Fraction(0), Fraction(500)),
                 id="no suspicious: recall undefined"),
    pytest.param({"a": S, "c": S}, [("a", "r"), ("c", "r")],
                 (2, 2, 0, Fraction(1), None, Fraction(1), Fraction(1000)),
                 id="no normal: FPR undefined"),
    pytest.param({"a": S, "b": N, "c": S, "d": N},
                 [("a", "r1"), ("a", "r1"), ("a", "r2"), ("b", "r1")],
                 (4, 1, 1, Fraction(1, 2), Fraction(1, 2), Fraction(1, 2), Fraction(1000)),
                 id="mixed: customers counted once, alerts every time"),
    pytest.param({"a": S, "b": N, "c": N}, [("a", "r"), ("x", "r")],
                 (1, 1, 0, Fraction(1), Fraction(0), Fraction(1), Fraction(1000, 3)),
                 id="unlabelled customer not scored"),
]


@pytest.mark.parametrize(("labels", "alerts", "expected"), CASES)
def test_overall_scores(labels, alerts, expected):
    overall = evaluate([alert(c, r) for c, r in alerts], labels).overall
    assert (overall.alerts, overall.suspicious_alerted, overall.normal_alerted, overall.recall,
            overall.false_positive_rate, overall.precision,
            overall.alerts_per_1000_customers) == expected


def test_per_rule_hits_and_sole_hits():
    labels = {"a": S, "b": N, "c": S, "d": N, "e": S}
    alerts = [("a", "r1"), ("a", "r1"), ("a", "r2"), ("b", "r1"), ("c", "r2"), ("e", "r2")]
    result = evaluate([alert(c, r) for c, r in alerts], labels, rule_ids=["r1", "r2", "r3"])
    rows = {s.name: s for s in result.per_rule}
    assert [s.name for s in result.per_rule] == ["r2", "r1", "r3"]  # most suspicious hits first
    assert (rows["r1"].alerts, rows["r1"].suspicious_alerted, rows["r1"].normal_alerted,
            rows["r1"].sole_hits, rows["r1"].precision) == (3, 1, 1, 0, Fraction(1, 2))
    assert (rows["r2"].alerts, rows["r2"].suspicious_alerted, rows["r2"].normal_alerted,
            rows["r2"].sole_hits, rows["r2"].recall) == (3, 3, 0, 2, Fraction(1))
    assert (rows["r3"].alerts, rows["r3"].recall, rows["r3"].precision) == (0, Fraction(0), None)
    assert result.overall.recall == Fraction(1) and result.overall.false_positive_rate == \
        Fraction(1, 2)
    assert result.per_typology == []


def test_unlabelled_alerts_are_counted_apart():
    result = evaluate([alert("x", "r"), alert("x", "r"), alert("y", "r")], {"a": S})
    assert (result.unlabelled_alerts, result.unlabelled_customers_alerted) == (3, 2)
    assert result.overall.alerts == 0
    assert "(3 alerts on 2 unlabelled customers not scored)" in render(result)


def test_per_typology_recall_and_hits():
    labels = {"a": ("suspicious", "fan_in"), "b": ("suspicious", "fan_in"),
              "c": ("suspicious", "cycle"), "d": S, "e": N}
    result = evaluate([alert("a", "fan_in"), alert("a", "velocity_24h"), alert("c", "fan_in"),
                       alert("e", "fan_in")], labels)
    assert [(t.typology, t.suspicious, t.alerted, t.recall, t.hits_per_rule)
            for t in result.per_typology] == [
        ("(unspecified)", 1, 0, Fraction(0), {}),
        ("cycle", 1, 1, Fraction(1), {"fan_in": 1}),
        ("fan_in", 2, 1, Fraction(1, 2), {"fan_in": 1, "velocity_24h": 1}),
    ]
    text = render(result)
    assert text.splitlines()[-1].split() == ["fan_in", "2", "1", "50.0%", "fan_in", "1,",
                                             "velocity_24h", "1"]


@pytest.mark.parametrize(("rate", "text"), [
    (None, "-"), (Fraction(0), "0.0%"), (Fraction(1), "100.0%"), (Fraction(1, 3), "33.3%"),
    (Fraction(2, 3), "66.7%"), (Fraction(1, 16), "6.2%"), (Fraction(3, 16), "18.8%"),
    (Fraction(197, 954), "20.6%"),
])
def test_percent_rounds_half_even_exactly(rate, text):
    assert percent(rate) == text


def test_render_and_json():
    labels = {"a": S, "b": N, "c": S, "d": N}
    result = evaluate([alert("a", "r1"), alert("b", "r1")], labels, rule_ids=["r1", "r2"])
    assert render(result).splitlines() == [
        "rule       alerts  /1k cust  suspicious alerted  recall  normal alerted    FPR  "
        "precision  sole hits",
        "all rules       2     500.0                 1/2   50.0%             1/2  50.0%"
        "      50.0%",
        "r1              2     500.0                 1/2   50.0%             1/2  50.0%"
        "      50.0%          1",
        "r2              0       0.0                 0/2    0.0%             0/2   0.0%"
        "          -          0",
    ]
    document = as_json(result)
    assert document["overall"] == {
        "rule": "all rules", "alerts": 2, "suspicious": 2, "suspicious_alerted": 1, "normal": 2,
        "normal_alerted": 1, "sole_hits": 0, "recall": "0.500000",
        "false_positive_rate": "0.500000", "precision": "0.500000",
        "alerts_per_1000_customers": "500.000"}
    assert document["per_rule"][1]["precision"] is None
