"""A revocation while the agent holds events for ordering (issue 12 item 4).

Faust suspends the flow, then waits until every tracked message is acknowledged
(``Consumer.wait_empty``, no time limit) before it sends ``on_partitions_revoked``. An event
held for the other topic's partition, known to be behind, can never go while the flow is
suspended: the revocation must not wait for it (``BatchApp._consumer_wait_empty``).
"""

import asyncio
import logging
from typing import Any

import orjson
from faust.types import TP

from agents.fast_path import InputBatch


async def _put_tracked(harness: Any, topic: str, key: bytes, value: dict[str, Any],
                       partition: int, offset: int) -> Any:
    """Deliver one message as the batch conductor does, tracked by the consumer."""
    app = harness.aml.faust
    message = harness.agent.to_message(key, orjson.dumps(value), partition=partition,
                                       offset=offset)
    message.topic = topic
    message.tp = TP(topic, partition)
    message.incref()
    message.tracked = True
    app.consumer.track_message(message)
    await harness.agent.stream().channel.put(InputBatch([message], app.consumer_generation_id))
    return message


async def test_revocation_flushes_what_was_applied_and_does_not_wait_for_held_events(
        harness, monkeypatch):
    app = harness.aml.faust
    consumer = app.consumer
    app.topics._acking_topics.update({"onboarding", "transactions"})

    async def no_commit(*args: Any, **kwargs: Any) -> bool:  # no broker here
        return False
    monkeypatch.setattr(consumer, "commit", no_commit)

    # Partition 0: a deposit waits for its customer's onboarding, still on its way (high-water
    # 3, nothing received): held. Partition 1: an onboarding event, the other topic caught up
    # (high-water 0): applied, not yet flushed.
    harness.highwaters[("onboarding", 0)] = 3
    held = await _put_tracked(harness, "transactions", b"c-held", {
        "event_id": "t-1", "customer_id": "c-held", "occurred_at": "2026-11-20T10:00:00Z",
        "direction": "in", "asset": "USDT", "amount": "10", "channel": "crypto"}, 0, 7)
    applied = await _put_tracked(harness, "onboarding", b"c-applied", {
        "event_id": "o-1", "customer_id": "c-applied", "occurred_at": "2026-11-20T10:00:00Z",
        "type": "registered", "country_of_residence": "DE", "nationality": "DE"}, 1, 5)
    await asyncio.sleep(0.3)
    assert len(harness.aml.processor.aligner) == 1  # the deposit, held
    assert set(consumer.unacked) >= {held}

    # As Faust does on a revocation: flow suspended and queues cleared, then wait_empty.
    consumer.stop_flow()
    app.flow_control.suspend()
    app.flow_control.clear()
    waiting = asyncio.ensure_future(app._consumer_wait_empty(consumer, logging.getLogger()))
    done, _ = await asyncio.wait({waiting}, timeout=5.0)
    if not done:  # Faust's wait swallows cancellation: end its loop as a stopping consumer
        consumer._stopped.set()
        await waiting
    assert done, "the revocation waits for an event that cannot be released"

    assert len(harness.aml.processor.aligner) == 0  # dropped: read again after assignment
    assert applied.acked  # flushed and acknowledged before the wait
    assert not held.acked  # never acknowledged: not committed past
    assert held not in set(consumer.unacked)
