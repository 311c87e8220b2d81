"""The synthetic stream through the backtest: exactly the planted alerts, every bad message
rejected with its kind."""

from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from types import SimpleNamespace

import pytest

from streams.backtest import run_backtest
from streams.rules import RULE_IDS
from streams.synthetic import (
    background_scenarios,
    bad_messages,
    planted_scenarios,
    to_messages,
)

END = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)
NEEDS_INTEL = {"high_risk_counterparty"}
"""Rules that fire only on a listing of the address-intel topic: the stream carries none."""


@pytest.fixture(scope="module")
def stream():
    planted = planted_scenarios(END)
    background = background_scenarios(500, END)
    bad = bad_messages(END)
    good = [(m.topic, m.key, m.value) for m in to_messages(planted + background)]
    return SimpleNamespace(planted=planted, background=background, bad=bad, good=len(good),
                           inputs=good + [(m.topic, m.key, m.value) for m, _ in bad])


@pytest.fixture(scope="module")
def result(stream, rules):
    return run_backtest(stream.inputs, rules)


def test_alerts_are_exactly_the_planted_ones(stream, result):
    planted, background = stream.planted, stream.background
    expected = Counter((s.customer_id, rule) for s in planted for rule in s.expected_rules)

    assert Counter((a.customer_id, a.rule_id) for a in result.alerts) == expected
    assert len(planted) == 21
    assert {s.customer_id for s in background}.isdisjoint({a.customer_id for a in result.alerts})


def test_every_rule_is_planted(stream):
    planted = Counter(rule for s in stream.planted for rule in s.expected_rules)

    assert set(planted) == set(RULE_IDS) - NEEDS_INTEL
    assert all(len(s.expected_rules) == 1 for s in stream.planted)
    assert planted["unverified_activity"] == planted["high_risk_jurisdiction"] == 2
    assert sum(planted.values()) == 21


def test_shipped_rules_raise_the_same_alerts(stream, result, default_rules):
    """With the risk rating's effects on (as shipped) the same customers alert on the same
    rules: none of them is high risk when it alerts."""
    shipped = run_backtest(stream.inputs, default_rules)

    assert [(a.customer_id, a.rule_id, a.severity) for a in shipped.alerts] == [
        (a.customer_id, a.rule_id, a.severity) for a in result.alerts]
    assert all(a.customer.risk_level != "high" for a in shipped.alerts)


def test_every_customer_is_rated(stream, result):
    """Each customer gets a first rating (from 'unrated'); background customers end low."""
    first = [c for c in result.risk_changes if c.previous_level == "unrated"]
    background = {s.customer_id.encode() for s in stream.background}

    assert sorted(c.customer_id for c in first) == sorted(
        key.decode() for key in result.states)
    assert {result.states[key].risk_level for key in background} == {"low"}


def test_background_is_busy_enough_to_mean_something(stream, result):
    transfers = sum(1 for s in stream.background for topic, _ in s.events
                    if topic == "transactions")

    assert len(stream.background) == 500
    assert transfers > 1000
    assert result.events_applied == stream.good
    assert len(result.states) == 521


def test_every_bad_message_is_rejected_with_its_kind(stream, result):
    assert [(position, rejected.kind.value) for position, rejected in result.rejected] == [
        (stream.good + n, kind) for n, (_, kind) in enumerate(stream.bad)]
    assert len(stream.bad) == 12
    assert all(rejected.reasons for _, rejected in result.rejected)


def test_planted_alerts_carry_evidence(result):
    by_rule = {a.rule_id: a for a in result.alerts}
    by_customer = {a.customer_id: a for a in result.alerts}

    assert by_rule["structuring"].evidence.aggregates["near_threshold_usd_total"] == 28850
    assert by_rule["sanctioned_counterparty"].evidence.matches["entity"] == "LAZARUS GROUP"
    assert by_rule["volume_30d"].observed_value == 54000
    assert by_rule["velocity_24h"].observed_value == 31
    assert by_customer["planted-jurisdiction-counterparty"].severity == "high"  # IR: black
    assert by_customer["planted-jurisdiction-residence"].severity == "medium"  # VE: grey
    assert by_rule["rapid_in_out"].observed_value == Decimal("85.0")  # 17,000 of 20,000
    assert by_rule["dormant_reactivated"].observed_value == Decimal("100.42")  # days
    assert by_rule["new_account_high_volume"].observed_value == 24000
    assert by_rule["declared_volume_exceeded"].observed_value == 6000  # > 5000 (the floor)
    assert by_rule["fan_in"].observed_value == by_rule["fan_out"].observed_value == 10
    assert by_rule["repeated_new_address"].observed_value == 3
    assert by_rule["volume_spike"].observed_value == 10000
    assert by_rule["mixer_exposure"].evidence.matches["service"] == "Tornado Cash"
    unhosted = by_rule["unhosted_after_deposit"]
    assert unhosted.evidence.matches["jurisdiction_profile"] == "EU"  # resident in DE
    assert unhosted.threshold == Decimal("1080.00")  # 1,000 EUR
    assert all(a.rule_set_version == "2026-11-21.1" for a in result.alerts)


def test_the_backtest_is_deterministic(stream, rules, result):
    again = run_backtest(stream.inputs, rules)

    assert [a.model_dump() for a in again.alerts] == [a.model_dump() for a in result.alerts]
