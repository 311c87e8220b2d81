"""Parity: the same events fed to the real worker on a real broker and to the backtest give
the same alert ids and the same risk changes (the one replay path, ``streams.replay``).

The stream has alerts of every rule (the planted customers, the network typologies among
them: the counterparty and flow stages on their internal topics) and ordinary customers, with
onboarding and transactions interleaved in event time across the partitions, as upstream
systems write them live; a few malformed records among them are dead-lettered by both."""

import asyncio
from datetime import UTC, datetime

import orjson
import pytest

from agents.cli import main
from schemas.alerts import Alert
from schemas.risk import RiskChange
from streams.backtest import run_backtest
from streams.network import NETWORK_RULE_IDS
from streams.ruleset import load_rules
from streams.synthetic import background_scenarios, bad_messages, planted_scenarios, to_messages
from streams.synthetic_network import network_scenarios

pytestmark = pytest.mark.integration

END = datetime(2026, 11, 21, 12, tzinfo=UTC)


async def test_the_worker_and_the_backtest_give_the_same_alerts_and_risk_changes(
        deployment, running_worker, tmp_path, monkeypatch):
    planted = planted_scenarios(END) + network_scenarios(END)
    messages = to_messages(planted + background_scenarios(400, END, seed=21))
    messages.sort(key=lambda m: m.occurred_at)  # both topics interleaved, as written live
    bad = [message for message, _ in bad_messages(END)]
    stream = messages[:len(messages) // 2] + bad + messages[len(messages) // 2:]
    rules = load_rules(deployment.settings.rules_path)
    expected = run_backtest([(m.topic, m.key, m.value) for m in stream], rules)
    assert {a.rule_id for a in expected.alerts} >= {
        rule for s in planted for rule in s.expected_rules}
    assert {a.rule_id for a in expected.alerts} >= set(NETWORK_RULE_IDS) - {
        "retro_listed_counterparty"}  # every network rule, through both internal topics
    assert len(expected.rejected) == len(bad)

    await deployment.produce(stream)
    alerts = [Alert.model_validate_json(r.value) for r in await deployment.read(
        deployment.topics["alerts"], lambda r: len(r) >= len(expected.alerts))]
    changes = [RiskChange.model_validate_json(r.value) for r in await deployment.read(
        deployment.topics["customer-risk"], lambda r: len(r) >= len(expected.risk_changes))]

    assert {a.alert_id for a in alerts} == {a.alert_id for a in expected.alerts}
    assert {c.change_id for c in changes} == {c.change_id for c in expected.risk_changes}
    assert running_worker.running, running_worker.log_tail()

    # The backtest reading the same topics from the broker (no group joined) agrees too.
    for name, value in (("BROKER", f"kafka://{deployment.bootstrap}"),
                        ("ONBOARDING_TOPIC", deployment.topics["onboarding"]),
                        ("TRANSACTIONS_TOPIC", deployment.topics["transactions"])):
        monkeypatch.setenv(f"AMLSTREAM_{name}", value)
    out = tmp_path / "from-topics"
    assert await asyncio.to_thread(main, ["backtest", "--topics", "--jobs", "1",
                                          "--out", str(out)]) == 0
    [run_dir] = out.iterdir()
    from_topics = {orjson.loads(line)["alert_id"]
                   for line in (run_dir / "alerts.jsonl").read_bytes().splitlines()}
    assert from_topics == {a.alert_id for a in expected.alerts}
    letters = (run_dir / "dead-letters.jsonl").read_bytes().splitlines()
    assert len(letters) == len(bad)
