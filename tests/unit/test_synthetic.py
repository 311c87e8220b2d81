"""The synthetic stream through the backtest: exactly the planted alerts, every bad message
rejected with its kind."""

from collections import Counter
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from streams.backtest import run_backtest
from streams.synthetic import (
    background_scenarios,
    bad_messages,
    planted_scenarios,
    to_messages,
)

END = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)


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
    assert len(planted) == 11
    assert {s.customer_id for s in background}.isdisjoint({a.customer_id for a in result.alerts})


def test_background_is_busy_enough_to_mean_something(stream, result):
    transfers = sum(1 for s in stream.background for topic, _ in s.events
                    if topic == "transactions")

    assert len(stream.background) == 500
    assert transfers > 1000
    assert result.events_applied == stream.good
    assert len(result.states) == 511


def test_every_bad_message_is_rejected_with_its_kind(stream, result):
    assert [(position, rejected.kind.value) for position, rejected in result.rejected] == [
        (stream.good + n, kind) for n, (_, kind) in enumerate(stream.bad)]
    assert len(stream.bad) == 10
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
    assert all(a.rule_set_version == "2026-11-21.1" for a in result.alerts)


def test_the_backtest_is_deterministic(stream, rules, result):
    again = run_backtest(stream.inputs, rules)

    assert [a.model_dump() for a in again.alerts] == [a.model_dump() for a in result.alerts]
