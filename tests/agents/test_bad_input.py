"""Nothing an input holds stops the worker or corrupts a customer: oversized values and keys,
outputs the broker refuses, a core that fails part-way, a malformed last record."""

import asyncio
import base64
import hashlib
from datetime import UTC, datetime

import orjson
import pytest
from aiokafka.errors import MessageSizeTooLargeError, RecordTooLargeError

import streams.engine
from agents.pipeline import KEY_MAX_CHARS
from schemas.alerts import Alert
from schemas.dead_letters import DeadLetter
from streams.backtest import run_backtest
from streams.state import CustomerState
from streams.synthetic import planted_scenarios

END = datetime(2026, 11, 21, 12, tzinfo=UTC)
ONE_MB = 1_000_000


def _scenario(name: str) -> list[tuple[str, dict]]:
    return next(s for s in planted_scenarios(END) if s.name == name).events


async def _put_all(harness, events, partition: int = 0) -> None:
    for topic, event in events:
        await harness.put(topic, event["customer_id"].encode(), event, partition=partition)


async def test_a_1_mb_value_becomes_a_bounded_dead_letter_with_its_size_and_hash(harness):
    blob = b"\x00garbage" * (ONE_MB // 8)
    sent: list[bytes] = []
    record = harness.aml.processor.send_dead_letter

    async def send(key, value):
        sent.append(value)
        return await record(key, value)
    harness.aml.processor.send_dead_letter = send
    await harness.put("transactions", b"c-1", blob)
    await _put_all(harness, _scenario("large-transfer"))
    await harness.settle()

    [letter] = harness.dead_letters
    kept = base64.b64decode(letter.original_b64)
    assert letter.truncated and letter.original_size == len(blob)
    assert kept == blob[:len(kept)] and len(kept) == 512 * 1024
    assert letter.original_sha256 == hashlib.sha256(blob).hexdigest()
    assert len(sent[0]) < 1_000_000  # fits the broker's default message limit
    assert [a.rule_id for a in harness.alerts] == ["large_transfer"]


async def test_a_small_value_is_kept_whole(harness):
    await harness.put("transactions", b"c-1", b"{not json")
    await harness.settle()

    [letter] = harness.dead_letters
    assert not letter.truncated and base64.b64decode(letter.original_b64) == b"{not json"
    assert letter.original_size == 9


async def test_a_huge_key_is_cut_in_the_dead_letter_and_not_used_as_its_key(harness):
    keys: list = []
    record = harness.aml.processor.send_dead_letter

    async def send(key, value):
        keys.append(key)
        return await record(key, value)
    harness.aml.processor.send_dead_letter = send
    await harness.put("onboarding", b"k" * 200_000, b'{"type": "registered"}')
    await harness.settle()

    [letter] = harness.dead_letters
    assert letter.key_truncated and len(letter.key) == KEY_MAX_CHARS
    assert keys == [None]


@pytest.mark.parametrize("when", ["on send", "on delivery"])
async def test_an_alert_the_broker_refuses_becomes_a_dead_letter_of_its_input(harness, when):
    async def refuse(key, value):
        if when == "on send":
            raise MessageSizeTooLargeError("too large")
        failed = asyncio.get_running_loop().create_future()
        failed.set_exception(RecordTooLargeError("too large"))
        return failed
    harness.aml.processor.send_alert = refuse
    events = _scenario("large-transfer")
    await _put_all(harness, events)
    await harness.settle()

    [letter] = harness.dead_letters
    assert letter.error_kind.value == "output_rejected"
    assert "alert" in letter.reasons[0]
    assert letter.source_topic == "transactions"
    assert orjson.loads(base64.b64decode(letter.original_b64))["event_id"] == events[-1][1][
        "event_id"]
    assert not harness.aml.processor.checkpoint._writer.exception()  # the worker goes on


@pytest.fixture
def core_fails_on_777(monkeypatch):
    """The core fails (a bug) on a transfer of 777.00 USD, after it entered the windows."""
    real = streams.engine.is_near_threshold

    def fails_on_777(usd_cents, floor, threshold):
        if usd_cents == 77_700:
            raise RuntimeError("a bug")
        return real(usd_cents, floor, threshold)
    monkeypatch.setattr(streams.engine, "is_near_threshold", fails_on_777)


async def test_an_event_the_core_fails_on_leaves_its_customer_as_before(harness,
                                                                       core_fails_on_777):
    """The failure comes after the transfer entered the windows: the state must not keep it."""
    events = _scenario("volume-24h")
    onboarding = [e for t, e in events if t == "onboarding"]
    transfers = [e for t, e in events if t == "transactions"]
    poison = {**transfers[0], "event_id": "poison", "amount": "777.00", "amount_usd": "777.00"}
    order = [("onboarding", e) for e in onboarding] + [
        ("transactions", e) for e in (transfers[0], poison, *transfers[1:])]
    harness.aml.processor.checkpoint.interval_s = 3600.0  # all in one cut: restored from cache
    await _put_all(harness, order)
    await harness.settle()

    [letter] = harness.dead_letters
    assert letter.error_kind.value == "processing_error"
    expected = run_backtest(
        [(t, e["customer_id"].encode(), orjson.dumps(e)) for t, e in order if e is not poison],
        harness.aml.rules)
    key = b"planted-volume-24h"
    got = CustomerState.from_bytes(dict((k, v) for _, k, v in harness.changelog)[key])
    want = expected.states[key]
    got.applied = want.applied = {}
    assert got.to_bytes() == want.to_bytes()
    assert sorted(a.alert_id for a in harness.alerts) == sorted(
        a.alert_id for a in expected.alerts)


async def test_a_failure_after_a_cut_rebuilds_from_the_cut(harness, core_fails_on_777):
    events = _scenario("volume-24h")
    first, rest = events[:3], events[3:]
    await _put_all(harness, first)
    await harness.settle()  # a cut holds the customer now
    poison = {**rest[0][1], "event_id": "poison", "amount": "777.00", "amount_usd": "777.00"}
    await _put_all(harness, [("transactions", poison), *rest])
    await harness.settle()

    expected = run_backtest(
        [(t, e["customer_id"].encode(), orjson.dumps(e)) for t, e in events], harness.aml.rules)
    key = b"planted-volume-24h"
    got = CustomerState.from_bytes(dict((k, v) for _, k, v in harness.changelog)[key])
    want = expected.states[key]
    got.applied = want.applied = {}
    assert got.to_bytes() == want.to_bytes()


async def test_a_malformed_last_onboarding_record_does_not_hold_the_transactions(harness):
    """The issue's minimal case: a valid onboarding event, a truncated one, then a 50,000 USD
    transfer: the alert comes without any further onboarding event."""
    events = _scenario("large-transfer")
    onboarding = [e for t, e in events if t == "onboarding"]
    transfer = next(e for t, e in events if t == "transactions")
    key = transfer["customer_id"].encode()
    harness.highwaters[("onboarding", 0)] = len(onboarding) + 1
    for event in onboarding:
        await harness.put("onboarding", key, event)
    await harness.put("onboarding", key, orjson.dumps(onboarding[0])[:20])
    await harness.put("transactions", key, transfer)
    for _ in range(20):
        await harness.aml.processor.process(())
        await asyncio.sleep(0.02)

    assert len(harness.aml.processor.aligner) == 0
    assert [a.rule_id for a in harness.alerts] == ["large_transfer"]
    assert isinstance(harness.alerts[0], Alert)
    assert isinstance(harness.dead_letters[0], DeadLetter)
