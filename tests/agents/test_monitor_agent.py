"""The monitor agent end to end in memory: decode, order, apply, persist, publish."""

import asyncio
from datetime import UTC, datetime

import orjson

from streams.state import CustomerState
from streams.synthetic import bad_messages, planted_scenarios

END = datetime(2026, 11, 21, 12, tzinfo=UTC)


def _scenario(name: str) -> list[tuple[str, dict]]:
    return next(s for s in planted_scenarios(END) if s.name == name).events


async def test_planted_structuring_raises_one_alert_with_evidence(harness):
    for topic, event in _scenario("structuring"):
        await harness.put(topic, event["customer_id"].encode(), event, partition=2)
    await harness.settle()

    assert [a.rule_id for a in harness.alerts] == ["structuring"]
    alert = harness.alerts[0]
    assert alert.customer.kyc_status == "verified"
    assert alert.rule_set_version == harness.aml.rules.version
    assert len(alert.evidence.triggering_events) == 3


async def test_state_is_written_once_per_customer_per_flush_to_its_own_partition(harness):
    for partition, name in ((1, "volume-24h"), (3, "velocity-1h")):
        for topic, event in _scenario(name):
            await harness.put(topic, event["customer_id"].encode(), event, partition=partition)
    await harness.settle()

    partitions = {key: {p for p, k, _ in harness.changelog if k == key}
                  for _, key, _ in harness.changelog}
    assert partitions == {b"planted-volume-24h": {1}, b"planted-velocity-1h": {3}}
    writes = len(harness.changelog)
    assert writes < 4 + 3 + 12 + 3  # fewer writes than events: once per customer per flush
    final = {key: CustomerState.from_bytes(value) for _, key, value in harness.changelog}
    assert final[b"planted-velocity-1h"].profile.kyc_tier == 1


async def test_transaction_seen_before_its_onboarding_waits_for_it(harness):
    """The deposit reaches the worker first; the onboarding that preceded it is still on its
    way (the broker says so: high-water 3), so the deposit waits and is judged verified."""
    events = _scenario("jurisdiction-counterparty")
    onboarding = [e for t, e in events if t == "onboarding"]
    transfer = next(e for t, e in events if t == "transactions")
    harness.highwaters[("onboarding", 0)] = 3
    await harness.put("transactions", b"planted-jurisdiction-counterparty", transfer, offset=0)
    await asyncio.sleep(0.3)
    assert len(harness.aml.processor.aligner) == 1  # taken by the agent, held
    for offset, event in enumerate(onboarding):
        await harness.put("onboarding", event["customer_id"].encode(), event, offset=offset)
    await harness.settle()

    assert [(a.rule_id, a.customer.kyc_status) for a in harness.alerts] == [
        ("high_risk_jurisdiction", "verified")]


async def test_malformed_inputs_become_dead_letters_and_the_agent_goes_on(harness):
    bad = bad_messages(END)
    for n, (message, _) in enumerate(bad):
        await harness.put(message.topic, message.key, message.value, offset=n)
    for topic, event in _scenario("large-transfer"):
        await harness.put(topic, event["customer_id"].encode(), event)
    await harness.settle()

    assert [d.error_kind.value for d in harness.dead_letters] == [kind for _, kind in bad]
    assert all(d.reasons for d in harness.dead_letters)
    assert [d.offset for d in harness.dead_letters] == list(range(len(bad)))
    assert [a.rule_id for a in harness.alerts] == ["large_transfer"]


async def test_a_replayed_event_changes_nothing(harness):
    events = _scenario("large-transfer")
    for offset, (topic, event) in enumerate(events):
        await harness.put(topic, event["customer_id"].encode(), event, offset=offset)
    await harness.settle()
    topic, event = events[-1]
    await harness.put(topic, event["customer_id"].encode(), orjson.dumps(event),
                      offset=len(events) - 1)
    await harness.settle()

    assert [a.rule_id for a in harness.alerts] == ["large_transfer"]
    last = CustomerState.from_bytes(harness.changelog[-1][2])
    assert sum(b[4] for b in last.windows.buckets(2)) == 1  # one withdrawal counted, not two
