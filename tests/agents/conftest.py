"""Agent tests: the real Faust agent in ``agent.test_context()``, memory store, no broker.

Sends to Kafka (alerts, dead letters, changelog) are replaced by recorders; the broker's
end offsets by a dictionary the test controls.
"""

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest

from agents.app import AmlApp, create_app
from agents.fast_path import InputBatch
from agents.settings import Settings
from schemas.alerts import Alert
from schemas.dead_letters import DeadLetter
from schemas.risk import RiskChange


@dataclass
class Harness:
    aml: AmlApp
    agent: Any
    alerts: list[Alert] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    risk_changes: list[RiskChange] = field(default_factory=list)
    changelog: list[tuple[int, bytes, bytes]] = field(default_factory=list)
    highwaters: dict[tuple[str, int], int] = field(default_factory=dict)
    offsets: Counter[str] = field(default_factory=Counter)
    paused: set[tuple[str, int]] = field(default_factory=set)
    internal: list[tuple[str, int, bytes | None, bytes]] = field(default_factory=list)
    network_changelog: list[tuple[int, bytes, bytes]] = field(default_factory=list)
    meta: list[tuple[int, bytes, bytes]] = field(default_factory=list)
    """Partition records of the tables (the network stages' clocks)."""
    """Records sent to the network stages' topics: (topic, partition, key, value)."""

    async def put(self, topic: str, key: bytes | None, value: bytes | dict[str, Any],
                  partition: int = 0, offset: int | None = None) -> None:
        """Deliver one message as the batch conductor would (``agents.fast_path``)."""
        raw = value if isinstance(value, bytes) else orjson.dumps(value)
        if offset is None:
            offset = self.offsets[topic]
        self.offsets[topic] = offset + 1
        message = self.agent.to_message(key, raw, partition=partition, offset=offset)
        message.topic = topic
        message.incref()
        batch = InputBatch([message], self.aml.faust.consumer_generation_id)
        await self.agent.stream().channel.put(batch)
        await asyncio.sleep(0)

    async def settle(self, timeout_s: float = 5.0) -> None:
        """Wait until the agent has taken every put and holds nothing back."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        await asyncio.sleep(0.2)
        processor = self.aml.processor
        while len(processor.aligner) and loop.time() < deadline:
            await processor.process(())
            await asyncio.sleep(0.05)
        await processor.flush()


def _recorder(into: list[Any], model: Any) -> Any:
    async def send(key: bytes | None, value: bytes) -> Any:
        into.append(model.model_validate_json(value))
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done
    return send


@pytest.fixture
async def harness(tmp_path: Any) -> Any:
    aml = create_app(Settings(store="memory://", data_dir=tmp_path / "state",
                              state_flush_interval_s=0.01))
    async with aml.monitor.test_context() as agent:
        h = Harness(aml, agent)
        aml.processor.send_alert = _recorder(h.alerts, Alert)
        aml.processor.send_dead_letter = _recorder(h.dead_letters, DeadLetter)
        aml.processor.send_risk_change = _recorder(h.risk_changes, RiskChange)
        def recorder(into: list[tuple[int, bytes, bytes]]) -> Any:
            async def send_records(partition: int, records: list[tuple[bytes, bytes]]) -> Any:
                for key, value in records:  # partition meta (NUL-prefixed keys) apart
                    (h.meta if key.startswith(b"\x00") else into).append(
                        (partition, key, value))
                done = asyncio.get_running_loop().create_future()
                done.set_result(len(into) + len(h.meta) - 1)
                return [done]
            return send_records
        aml.state.send_records = recorder(h.changelog)
        network = aml.processor.network
        if network is not None:  # internal records recorded, not read back here
            async def send_internal(topic: str, partition: int,
                                    records: list[tuple[bytes | None, bytes]]) -> Any:
                h.internal.extend((topic, partition, key, value) for key, value in records)
                done = asyncio.get_running_loop().create_future()
                done.set_result(None)
                return [done]
            network.send_records = send_internal
            network.counterparty.states.send_records = recorder(h.network_changelog)
            network.flow.states.send_records = recorder(h.network_changelog)

        aml.processor.aligner.highwater = lambda topic, partition: h.highwaters.get(
            (topic, partition), 0)

        async def bounds(tps: list[tuple[str, int]]) -> dict[tuple[str, int], tuple[int, int]]:
            return {tp: (0, h.highwaters.get(tp, 0)) for tp in tps}
        aml.processor.bounds = bounds
        aml.processor.pause = h.paused.update
        aml.processor.resume = h.paused.difference_update

        yield h
