"""The flush writes in the background (``agents.pipeline``, ``agents.state_table``): events go
on being applied while it waits for the broker, and none is acknowledged before it is done."""

import asyncio
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from prometheus_client import REGISTRY

from agents.state_table import StateTable
from streams.state import CustomerState
from streams.synthetic import planted_scenarios

END = datetime(2026, 11, 21, 12, tzinfo=UTC)


async def _put_scenario(harness, name: str, partition: int) -> int:
    events = next(s for s in planted_scenarios(END) if s.name == name).events
    for topic, event in events:
        await harness.put(topic, event["customer_id"].encode(), event, partition=partition)
    return len(events)


async def _flush_waiting_for_the_broker(harness) -> tuple[asyncio.Future, list, int]:
    """Apply a scenario with alerts, then start a flush whose alerts the broker has not yet
    delivered: returns the gate that delivers them, the acknowledged messages, the events."""
    gate = asyncio.get_running_loop().create_future()

    async def send(key: bytes | None, value: bytes) -> asyncio.Future:
        harness.alerts.append(value)
        return gate  # delivered when the test says so
    processor = harness.aml.processor
    processor.send_alert = send
    acked: list = []
    processor.checkpoint.ack = acked.append
    processor.checkpoint.interval_s = 3600.0
    events = await _put_scenario(harness, "structuring", partition=2)
    await asyncio.sleep(0.3)
    processor.checkpoint.interval_s = 0.0
    await processor.process(())  # the flush starts, and waits for the alert
    return gate, acked, events


async def test_events_are_applied_while_a_flush_waits_and_acknowledged_only_after(harness):
    gate, acked, first = await _flush_waiting_for_the_broker(harness)
    second = await _put_scenario(harness, "velocity-1h", partition=3)
    await asyncio.sleep(0.3)

    assert b"planted-velocity-1h" in harness.aml.state.cached  # applied meanwhile
    assert len(harness.alerts) >= 2
    assert acked == []
    assert harness.changelog == []  # no state before its alerts are delivered

    writes = REGISTRY.get_sample_value("amlstream_checkpoint_write_seconds_count")
    gate.set_result(None)
    await harness.settle()

    assert len(acked) == first + second
    assert REGISTRY.get_sample_value("amlstream_checkpoint_write_seconds_count") > writes
    assert {key for _, key, _ in harness.changelog} == {b"planted-structuring",
                                                         b"planted-velocity-1h"}


async def test_a_failed_flush_stops_the_processing(harness):
    gate, acked, _ = await _flush_waiting_for_the_broker(harness)

    gate.set_exception(ConnectionError("broker gone"))
    await asyncio.sleep(0.05)

    with pytest.raises(ConnectionError):
        await harness.aml.processor.process(())
    assert acked == []


class _Store(dict):
    def set_persisted_offset(self, tp, offset) -> None:
        self[("offset", tp.partition)] = offset


async def test_the_cache_keeps_customers_changed_since_the_snapshot():
    table = SimpleNamespace(data=_Store(), changelog_topic=SimpleNamespace(
        get_topic_name=lambda: "customer-state-changelog"))

    async def send_records(partition: int, records: list[tuple[bytes, bytes]]):
        done = asyncio.get_running_loop().create_future()
        done.set_result(7)
        return [done]

    state = StateTable(table, send_records, max_cached=0)
    message = SimpleNamespace(partition=1)
    state.mark_changed(b"a", CustomerState(), message, "change")
    snapshot = state.snapshot()
    # changed while the snapshot is written:
    state.mark_changed(b"b", CustomerState(), message, "change")

    assert await state.write(snapshot) == 1

    assert list(state.cached) == [b"b"]  # "a" is in the store; "b" is not yet
    assert table.data[b"a"] == CustomerState().to_bytes()
    assert table.data[("offset", 1)] == 7
