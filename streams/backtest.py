"""Run the replay path over events held in memory: the same alerts as the live worker.

The events go through ``streams.replay`` exactly as the worker's records do: each is placed
where Kafka would put it (the default partitioner over ``partitions``, offsets in input order
per topic partition), the two input topics are merged partition by partition by event time
(every record is already there, so each partition's end is known from the start, as for a
worker draining a backlog), and a rejected or failing event is returned, not raised. The
states live in a ``StateCache`` over a dictionary, snapshotted every ``SNAPSHOT_EVERY`` events
as the worker's are at each flush.
"""

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from schemas.alerts import Alert
from schemas.risk import RiskChange
from streams.intake import Rejected
from streams.network import HOP_DELAY_S, LATENESS_S
from streams.network.emit import Emitted, Emitter, PartitionClock
from streams.network.offline import NetworkResult, run_network
from streams.ordering import InputAligner
from streams.partitioning import partition_of
from streams.replay import InputRecord, Replay, StepOutcome
from streams.ruleset import CompiledRules
from streams.state import CustomerState
from streams.state_cache import StateCache

ONBOARDING = "onboarding"
TRANSACTIONS = "transactions"
DECISIONS = "alert-decisions"
INPUT_KINDS = (ONBOARDING, TRANSACTIONS, DECISIONS)
"""The input topics in the order of a tie in event time (``streams.ordering``)."""
PARTITIONS = 4
"""The worker's default (``AMLSTREAM_PARTITIONS``); set the production count to match it."""
SNAPSHOT_EVERY = 50_000
STEP = 5_000
"""Records admitted between two releases (the worker's fetch size)."""


@dataclass
class BacktestResult:
    alerts: list[Alert] = field(default_factory=list)
    risk_changes: list[RiskChange] = field(default_factory=list)
    rejected: list[tuple[int, Rejected]] = field(default_factory=list)
    """(input position, why) of every input that would be dead-lettered."""
    states: dict[bytes, CustomerState] = field(default_factory=dict)
    events_applied: int = 0
    consumed: Counter[tuple[str, str]] = field(default_factory=Counter)
    interrupted: bool = False
    """Stopped early (Ctrl-C): what is here covers the records read so far."""
    internal: dict[int, list[Emitted]] = field(default_factory=dict)
    """S1's records for the network stages, per transactions partition, in the order sent."""
    clocks: dict[int, PartitionClock] = field(default_factory=dict)
    network: NetworkResult | None = None
    """What the network stages did (None: not run)."""


@dataclass(frozen=True)
class NetworkTiming:
    """The worker settings the network stages' order depends on (``AMLSTREAM_NETWORK_*``)."""

    lateness_s: int = LATENESS_S
    hop_delay_s: int = HOP_DELAY_S


def place(inputs: Iterable[tuple[str, bytes | None, bytes]],
          partitions: int = PARTITIONS) -> list[InputRecord]:
    """Where Kafka would put each input: (topic kind, key, raw value) in produce order."""
    next_offset: Counter[tuple[str, int]] = Counter()
    records = []
    for topic, key, value in inputs:
        partition = partition_of(key, partitions) if key else 0
        offset = next_offset[(topic, partition)]
        next_offset[(topic, partition)] = offset + 1
        records.append(InputRecord(topic, partition, offset, key, value))
    return records


def prepare(records: list[InputRecord], rules: CompiledRules, partitions: int,
            store: dict[bytes, bytes], timing: NetworkTiming | None = None) -> Replay:
    """The replay path over ``records``, all of them already there (each partition's end
    known), its states in a cache over ``store``."""
    states = StateCache(lambda key, _: store.get(key), max_cached=len(records) + 1)
    aligner = InputAligner(INPUT_KINDS, highwater=lambda *_: None,
                           max_held=len(records) + 1)
    bounds: dict[tuple[str, int], tuple[int, int]] = {}
    for r in records:
        start, end = bounds.get((r.topic, r.partition), (r.offset, r.offset + 1))
        bounds[(r.topic, r.partition)] = (min(start, r.offset), max(end, r.offset + 1))
    for partition in range(partitions):
        for topic in aligner.topics:
            aligner.learn(topic, partition, *bounds.get((topic, partition), (0, 0)))
    emitter = None if timing is None else Emitter(partitions, timing.lateness_s)
    return Replay(rules, states, aligner, emitter)


def run_backtest(inputs: Iterable[tuple[str, bytes | None, bytes]], rules: CompiledRules,
                 partitions: int = PARTITIONS,
                 progress: Callable[[int, int], None] | None = None,
                 network: NetworkTiming | None = NetworkTiming()) -> BacktestResult:
    """``inputs`` are (topic kind: ``onboarding``, ``transactions`` or ``alert-decisions``, key,
    raw value), in the
    order they were (or would be) produced. ``progress`` gets (records done, records in all)
    after every step. Ctrl-C ends the run early, with what was done (``interrupted``).
    ``network`` None: S1 alone, as a worker with ``AMLSTREAM_NETWORK=off``."""
    result = run_records(place(inputs, partitions), rules, partitions, progress, network)
    if network is not None:
        run_network_stages(result, rules, partitions, network)
    return result


def run_network_stages(result: BacktestResult, rules: CompiledRules, partitions: int,
                       timing: NetworkTiming, seed: int = 0) -> None:
    """S2 and S3 over what S1 sent (``result.internal``): their alerts join S1's."""
    result.network = run_network(result.internal, result.clocks, rules, partitions,
                                 timing.lateness_s, timing.hop_delay_s, seed)
    result.alerts.extend(result.network.alerts)
    result.consumed.update(result.network.consumed)


def run_records(records: list[InputRecord], rules: CompiledRules, partitions: int,
                progress: Callable[[int, int], None] | None = None,
                network: NetworkTiming | None = None) -> BacktestResult:
    """``run_backtest`` over records already placed (read from Kafka, say), in offset order
    within each topic partition; a rejection's position is its index here. Partitions share
    nothing: the records of some partitions give their part of the whole (a parallel run).
    With ``network``, S1's records for the network stages are collected (``internal``), for
    ``run_network_stages`` to run once every partition is done."""
    position = {(r.topic, r.partition, r.offset): n for n, r in enumerate(records)}
    store: dict[bytes, bytes] = {}
    replay = prepare(records, rules, partitions, store, network)
    states = replay.states
    result = BacktestResult()
    since_snapshot = 0
    try:
        for start in range(0, len(records), STEP):
            outcome = StepOutcome()
            replay.admit(records[start:start + STEP], outcome)
            replay.apply_released(outcome)
            _collect(outcome, position, result)
            for emitted, record in outcome.internal:
                result.internal.setdefault(record.partition, []).append(emitted)
            since_snapshot += STEP
            if since_snapshot >= SNAPSHOT_EVERY:
                store.update((key, raw) for key, _, raw in states.snapshot())
                since_snapshot = 0
            if progress is not None:
                progress(min(start + STEP, len(records)), len(records))
    except KeyboardInterrupt:
        result.interrupted = True
    result.states = dict(states.cached)
    if replay.emitter is not None:
        result.clocks = dict(replay.emitter.clocks)
    result.events_applied = sum(count for (_, outcome_kind), count in result.consumed.items()
                                if outcome_kind == "processed")
    return result


def _collect(outcome: StepOutcome, position: dict[tuple[str, int, int], int],
             result: BacktestResult) -> None:
    result.alerts.extend(alert for alert, _ in outcome.alerts)
    result.risk_changes.extend(change for change, _ in outcome.risk_changes)
    result.rejected.extend((position[(r.topic, r.partition, r.offset)], why)
                           for r, why in outcome.rejected)
    result.consumed.update(outcome.consumed)
