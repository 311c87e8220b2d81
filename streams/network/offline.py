"""S2 and S3 over in-memory topic partitions: the backtest's network phases.

S1 runs first, partition by partition (``streams.backtest``); it takes nothing back from the
network stages, so its legs, in each producer's own order, are all there is to S2 and S3. Here
they are written to in-memory ``cp-legs`` and ``flows`` partitions with each producer's final
marker, the producers interleaved in a seeded random way (the order within a producer kept, as
Kafka keeps it), and read back through the same ``StageReplay`` and ``InternalAligner`` as the
worker, in fetches of random sizes. S3's provenance goes back into ``flows``, and its promises
as markers, round after round, until nothing is left to apply. The interleaving and fetch sizes
change nothing in the result (the ordering makes sure of it); they are random so that every
backtest exercises that claim.
"""

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from schemas.alerts import Alert
from streams.network.counterparty import CounterpartyState
from streams.network.emit import CP_LEGS, FLOWS, Emitted, PartitionClock, s1_marker
from streams.network.flow import FlowState
from streams.network.internal_order import InternalAligner
from streams.network.records import Marker, encode
from streams.network.stage import COUNTERPARTY, FLOW, StageReplay
from streams.replay import InputRecord, StepOutcome
from streams.ruleset import CompiledRules
from streams.state_cache import StateCache

FETCH_MAX = 500


@dataclass
class NetworkResult:
    alerts: list[Alert] = field(default_factory=list)
    records: Counter[str] = field(default_factory=Counter)
    """Internal records written, by topic (markers apart)."""
    markers: int = 0
    rounds: int = 0
    """S3 rounds: promises exchanged until everything was applied."""
    states: dict[str, dict[bytes, Any]] = field(default_factory=dict)
    consumed: Counter[tuple[str, str]] = field(default_factory=Counter)


class _Log:
    """One in-memory topic partition and how far the stage has read it."""

    def __init__(self, topic: str, partition: int) -> None:
        self.topic = topic
        self.partition = partition
        self.records: list[InputRecord] = []
        self.read = 0

    def append(self, key: bytes | None, value: bytes) -> None:
        self.records.append(InputRecord(self.topic, self.partition, len(self.records), key,
                                        value))

    def fetch(self, rng: random.Random) -> list[InputRecord]:
        end = min(len(self.records), self.read + rng.randint(1, FETCH_MAX))
        fetched, self.read = self.records[self.read:end], end
        return fetched


def _interleave(streams: list[list[tuple[str, bytes | None, bytes]]], rng: random.Random
                ) -> list[tuple[str, bytes | None, bytes]]:
    """Merge the producers' streams in a random order that keeps each stream's own order."""
    positions = [0] * len(streams)
    merged = []
    live = [n for n, stream in enumerate(streams) if stream]
    while live:
        n = rng.choice(live)
        merged.append(streams[n][positions[n]])
        positions[n] += 1
        if positions[n] == len(streams[n]):
            live.remove(n)
    return merged


def run_network(emitted: dict[int, list[Emitted]], clocks: dict[int, PartitionClock],
                rules: CompiledRules, partitions: int, lateness_s: int, hop_delay_s: int,
                seed: int = 0, progress: Callable[[str], None] | None = None) -> NetworkResult:
    """``emitted``: each S1 partition's records in the order it sent them; ``clocks`` its
    clock at the end."""
    rng = random.Random(seed)
    result = NetworkResult()
    logs = {topic: [_Log(topic, p) for p in range(partitions)] for topic in (CP_LEGS, FLOWS)}
    streams = []
    for p in range(partitions):
        stream: list[tuple[str, bytes | None, bytes]] = []
        for record in emitted.get(p, []):
            stream.append((f"{record.topic}/{record.partition}", record.key,
                           encode(record.envelope)))
            result.records[record.topic] += 1
        marker = encode(s1_marker(p, clocks.get(p, PartitionClock()), lateness_s, idle=True))
        stream.extend((f"{topic}/{q}", None, marker) for topic in logs for q in range(partitions))
        streams.append(stream)
    for destination, key, value in _interleave(streams, rng):
        topic, partition = destination.split("/")
        logs[topic][int(partition)].append(key, value)
    result.alerts.extend(_run_counterparty(logs[CP_LEGS], rules, partitions, hop_delay_s, rng,
                                           result))
    if progress is not None:
        progress("counterparty stage done")
    result.alerts.extend(_run_flow(logs[FLOWS], rules, partitions, hop_delay_s, rng, result))
    return result


def stage_replay(stage: str, rules: CompiledRules, partitions: int, hop_delay_s: int,
                 decode: Callable[[bytes], Any]) -> tuple[StageReplay, dict[bytes, bytes]]:
    """A stage's replay over every partition, its states in a dict (the store, returned)."""
    store: dict[bytes, bytes] = {}
    states = StateCache(lambda key, _: store.get(key), max_cached=1 << 60, decode=decode)
    aligner = InternalAligner(stage, partitions, hop_delay_s=hop_delay_s, max_held=1 << 60)
    for p in range(partitions):
        aligner.assign(p)
    return StageReplay(stage, rules, states, aligner, hop_delay_s), store


def _run_counterparty(logs: list[_Log], rules: CompiledRules, partitions: int,
                      hop_delay_s: int, rng: random.Random, result: NetworkResult
                      ) -> list[Alert]:
    replay, _ = stage_replay(COUNTERPARTY, rules, partitions, hop_delay_s,
                       CounterpartyState.from_bytes)
    alerts: list[Alert] = []
    while any(log.read < len(log.records) for log in logs):
        outcome = StepOutcome()
        for log in logs:
            replay.admit(log.fetch(rng), outcome)
        replay.apply_released(outcome)
        alerts.extend(alert for alert, _ in outcome.alerts)
        result.consumed.update(outcome.consumed)
    result.states[COUNTERPARTY] = dict(replay.states.cached)
    return alerts


def _run_flow(logs: list[_Log], rules: CompiledRules, partitions: int, hop_delay_s: int,
              rng: random.Random, result: NetworkResult) -> list[Alert]:
    replay, _ = stage_replay(FLOW, rules, partitions, hop_delay_s, FlowState.from_bytes)
    aligner = replay.aligner
    promised = [float("-inf")] * partitions
    alerts: list[Alert] = []
    while (any(log.read < len(log.records) for log in logs)
           or any(aligner.held(q) for q in range(partitions))):
        outcome = StepOutcome()
        unread = sum(len(log.records) - log.read for log in logs)
        for log in logs:
            replay.admit(log.fetch(rng), outcome)
        applied = replay.apply_released(outcome)
        if not unread and not applied:
            raise RuntimeError("the flow stage stopped advancing: its promises no longer move")
        alerts.extend(alert for alert, _ in outcome.alerts)
        result.consumed.update(outcome.consumed)
        for emitted, _ in outcome.internal:
            logs[emitted.partition].append(emitted.key, encode(emitted.envelope))
            result.records["provenance"] += 1
        for q in range(partitions):
            promise_s = aligner.flow_promise(q, promised[q])
            if promise_s > promised[q]:
                promised[q] = promise_s
                marker = encode(Marker(f"f{q}", int(promise_s), ceiling_s=aligner.ceiling(q)))
                for log in logs:
                    log.append(None, marker)
                result.markers += partitions
        result.rounds += 1
    result.states[FLOW] = dict(replay.states.cached)
    return alerts
