"""Two workers in one group, one killed (SIGKILL) mid-stream: the survivor takes its
partitions over, and the group's committed offsets of every input partition must reach the
topics' end offsets, soon and after a graceful stop, with exactly the alerts of a backtest.

Issue 12 item 4 (reported: committed offsets stuck far behind after such a failover, also
after a graceful stop; a restart replayed the backlog). Reproduced here on the code before the
fix, in either of two ways: the survivor hung in Faust's ``Consumer.wait_empty`` at the
revocation, waiting for events the agent held for ordering, and committed nothing more; or
those events were released out of event-time order during the wait (extra alerts). See
``BatchApp._consumer_wait_empty`` in ``agents/fast_path.py``.
"""

import asyncio
import socket
import urllib.request
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from agents.settings import Settings
from agents.topics import ensure_topics
from schemas.alerts import Alert
from streams.backtest import run_backtest
from streams.ruleset import load_rules
from streams.synthetic import Message, background_scenarios, planted_scenarios, to_messages

pytestmark = pytest.mark.integration

END = datetime.now(UTC).replace(microsecond=0)
BACKGROUND_CUSTOMERS = 8_000  # ~46,000 events with the planted ones
SETTLE_S = 45.0
"""Longest wait for the survivor to commit the end offsets after the kill (~20 s here)."""

Deployment = Any  # tests/integration/conftest.py (the ``deployment`` fixture)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _settings(deployment: Deployment) -> Settings:
    t = deployment.topics
    return Settings(broker=f"kafka://{deployment.bootstrap}", onboarding_topic=t["onboarding"],
                    transactions_topic=t["transactions"], alerts_topic=t["alerts"],
                    dead_letter_topic=t["dead-letters"], risk_topic=t["customer-risk"],
                    rules_topic=t["rules"])


async def _commit_past_a_first_record(deployment: Deployment, partitions: int) -> None:
    """Give every input partition a record the group has committed past, before any worker
    starts. Why: the ordering step (``streams.ordering``) can only tell whether the other
    topic's partition is behind once it knows where the group stands in it; without a
    committed offset (a new group; Faust also reads a committed 0 as none) it holds an event
    at most ``AMLSTREAM_ORDERING_MAX_HOLD_S``, and with a whole backlog waiting that would
    apply transfers before their customer's onboarding: alerts no backtest raises."""
    producer = AIOKafkaProducer(bootstrap_servers=deployment.bootstrap, acks="all")
    await producer.start()
    try:
        for kind in ("onboarding", "transactions"):
            for p in range(partitions):
                await producer.send_and_wait(deployment.topics[kind], b"{}", key=b"skipped",
                                             partition=p)
    finally:
        await producer.stop()
    group = AIOKafkaConsumer(bootstrap_servers=deployment.bootstrap, group_id=deployment.name,
                             enable_auto_commit=False)
    tps = [TopicPartition(deployment.topics[kind], p)
           for kind in ("onboarding", "transactions") for p in range(partitions)]
    await group.start()
    try:
        group.assign(tps)
        await group.commit({tp: 1 for tp in tps})
    finally:
        await group.stop()


async def _produce_fast(deployment: Deployment, messages: list[Message]) -> None:
    """All of it, onboarding before transactions (as ``Deployment.produce``), unthrottled."""
    producer = AIOKafkaProducer(bootstrap_servers=deployment.bootstrap, acks="all",
                                linger_ms=20, max_batch_size=256 * 1024)
    await producer.start()
    try:
        for topic in ("onboarding", "transactions"):
            pending = [await producer.send(deployment.topics[topic], m.value, key=m.key)
                       for m in messages if m.topic == topic]
            await asyncio.gather(*pending)
    finally:
        await producer.stop()


class Offsets:
    """The group's committed offsets and the end offsets of the input partitions."""

    def __init__(self, deployment: Deployment, partitions: int) -> None:
        self.group = deployment.name
        self.tps = [TopicPartition(deployment.topics[kind], p)
                    for kind in ("onboarding", "transactions") for p in range(partitions)]
        self.admin = AIOKafkaAdminClient(bootstrap_servers=deployment.bootstrap)
        self.consumer = AIOKafkaConsumer(bootstrap_servers=deployment.bootstrap,
                                         enable_auto_commit=False)

    async def __aenter__(self) -> "Offsets":
        await self.admin.start()
        await self.consumer.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.consumer.stop()
        await self.admin.close()

    async def committed(self) -> dict[TopicPartition, Any]:
        """The group's committed offsets; none while the broker has no coordinator for it
        yet (its offsets topic is created when the first group appears)."""
        try:
            return dict(await self.admin.list_consumer_group_offsets(self.group))
        except KafkaError:
            return {}

    async def lag(self) -> dict[TopicPartition, int]:
        """End offset minus committed offset (the whole partition if nothing is committed)."""
        committed = await self.committed()
        ends = await self.consumer.end_offsets(self.tps)
        return {tp: ends[tp] - (committed[tp].offset if tp in committed else 0)
                for tp in self.tps}

    async def committed_total(self) -> int:
        committed = await self.committed()
        return sum(max(committed[tp].offset, 0) for tp in self.tps if tp in committed)

    async def wait_caught_up(self, timeout_s: float) -> dict[TopicPartition, int]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        lag = await self.lag()
        while any(lag.values()) and loop.time() < deadline:
            await asyncio.sleep(0.5)
            lag = await self.lag()
        return lag


def _progress(worker: Any) -> str:
    """The survivor's own account (its metrics), for a failure message."""
    port = worker.env["AMLSTREAM_METRICS_PORT"]
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError as exc:
        return f"no metrics ({exc})"
    wanted = ("amlstream_events_held", "amlstream_input_partitions_paused",
              "amlstream_events_consumed_total", "amlstream_events_replayed_total")
    return "; ".join(line for line in text.splitlines() if line.startswith(wanted))


def _lagging(lag: dict[TopicPartition, int]) -> dict[str, int]:
    return {f"{tp.topic}/{tp.partition}": n for tp, n in lag.items() if n}


async def test_committed_offsets_reach_the_end_after_a_worker_is_killed(deployment,
                                                                       request_cleanup):
    settings = _settings(deployment)
    messages = to_messages(planted_scenarios(END)
                           + background_scenarios(BACKGROUND_CUSTOMERS, END, seed=5))
    total = len(messages)
    expected = run_backtest(
        [(m.topic, m.key, m.value) for m in messages], load_rules(Settings().rules_path))
    assert expected.alerts and not expected.rejected
    await ensure_topics(settings)
    await _commit_past_a_first_record(deployment, settings.partitions)
    first_records = 2 * settings.partitions  # committed past already, one a partition
    await _produce_fast(deployment, messages)
    started = asyncio.get_running_loop().time()

    workers = []
    for name in ("a", "b"):
        worker = deployment.worker(f"state-{name}")
        worker.env["AMLSTREAM_METRICS_PORT"] = str(free_port())
        worker.start()
        request_cleanup(worker.kill)
        workers.append(worker)
    victim, survivor = workers

    async with Offsets(deployment, settings.partitions) as offsets:
        # Kill one worker once the group has committed part of the stream (both workers have
        # joined by then: each takes a few seconds to start, the stream ~10 s to process).
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        committed = 0
        # (a fifth, or less on a fast machine: the kill must land before the end)
        while loop.time() < deadline and committed < total * 0.2:
            await asyncio.sleep(0.05)
            committed = await offsets.committed_total()
            if committed > first_records:
                break
        assert first_records < committed < first_records + total, (
            f"{committed - first_records} of {total} committed before the kill")
        victim.kill()
        print(f"killed at {asyncio.get_running_loop().time() - started:.1f} s")

        lag = await offsets.wait_caught_up(SETTLE_S)
        assert not _lagging(lag), (f"after the failover, committed offsets lag: "
                                   f"{_lagging(lag)}; the survivor: {_progress(survivor)}")
        assert survivor.running, survivor.log_tail()

        print(f"caught up at {asyncio.get_running_loop().time() - started:.1f} s")
        survivor.stop()
        lag = await offsets.lag()
        assert not _lagging(lag), f"after a graceful stop, committed offsets lag: {_lagging(lag)}"

    records = await deployment.read(deployment.topics["alerts"],
                                    lambda r: len(r) >= len(expected.alerts), timeout_s=30)
    alerts = {a.alert_id: a for a in (Alert.model_validate_json(r.value) for r in records)}
    oracle = {a.alert_id: a for a in expected.alerts}
    extra = sorted((a.customer_id, a.rule_id) for i, a in alerts.items() if i not in oracle)
    missing = sorted((a.customer_id, a.rule_id) for i, a in oracle.items() if i not in alerts)
    assert not extra and not missing, f"extra alerts {extra}, missing alerts {missing}"
    assert alerts.keys() == oracle.keys()
