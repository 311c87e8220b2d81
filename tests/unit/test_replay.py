"""The replay path as the backtest runs it: Kafka's placement, the event-time merge of the
two inputs, and the error policy, the same as in the worker (``tests/agents``)."""

import random
from datetime import UTC, datetime

import orjson
from aiokafka.partitioner import murmur2 as aiokafka_murmur2

import streams.engine
from streams.backtest import place, run_backtest
from streams.partitioning import murmur2, partition_of
from streams.synthetic import planted_scenarios, to_messages

END = datetime(2026, 11, 21, 12, tzinfo=UTC)


def _inputs(messages):
    return [(m.topic, m.key, m.value) for m in messages]


def test_murmur2_is_kafkas():
    rng = random.Random(3)
    for _ in range(500):
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 33)))
        assert murmur2(data) == aiokafka_murmur2(data) & 0xFFFFFFFF


def test_records_are_placed_as_kafka_would_with_offsets_per_topic_partition():
    keys = [f"c-{n}".encode() for n in range(40)]
    records = place([("transactions", key, b"{}") for key in keys] * 2, partitions=3)

    assert [r.partition for r in records[:40]] == [partition_of(k, 3) for k in keys]
    for partition in range(3):
        offsets = [r.offset for r in records if r.partition == partition]
        assert offsets == list(range(len(offsets)))


def test_a_backlog_written_transactions_first_gives_the_alerts_of_the_time_ordered_stream(rules):
    """The merge puts each onboarding event before the later transactions of its partition,
    whatever order the two topics were written in."""
    messages = to_messages(planted_scenarios(END))
    in_time = run_backtest(_inputs(messages), rules)
    transactions_first = sorted(messages, key=lambda m: m.topic == "onboarding")
    reordered = run_backtest(_inputs(transactions_first), rules)

    assert {a.alert_id for a in reordered.alerts} == {a.alert_id for a in in_time.alerts}
    assert "unverified_activity" not in {a.rule_id for a in reordered.alerts} - {
        a.rule_id for a in in_time.alerts}
    assert len(in_time.alerts) >= 19


def test_an_event_the_core_fails_on_is_rejected_and_changes_nothing(rules, monkeypatch):
    real = streams.engine.is_near_threshold

    def fails_on_777(usd_cents, floor, threshold):
        if usd_cents == 77_700:
            raise RuntimeError("a bug")
        return real(usd_cents, floor, threshold)
    monkeypatch.setattr(streams.engine, "is_near_threshold", fails_on_777)
    events = next(s for s in planted_scenarios(END) if s.name == "volume-24h").events
    good = [(t, e["customer_id"].encode(), orjson.dumps(e)) for t, e in events]
    poison_event = {**events[-1][1], "event_id": "poison", "amount": "777.00",
                    "amount_usd": "777.00"}
    poison = ("transactions", poison_event["customer_id"].encode(), orjson.dumps(poison_event))
    with_poison = [*good[:3], poison, *good[3:]]

    result = run_backtest(with_poison, rules)
    expected = run_backtest(good, rules)

    [(position, rejected)] = result.rejected
    assert position == 3 and rejected.kind.value == "processing_error"
    [(key, state)] = result.states.items()
    want = expected.states[key]
    state.applied = want.applied = {}
    assert state.to_bytes() == want.to_bytes()
    assert {a.alert_id for a in result.alerts} == {a.alert_id for a in expected.alerts}
