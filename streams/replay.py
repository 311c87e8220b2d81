"""The one replay path: input records to alerts, the same in the worker and the backtest.

Everything around ``engine.apply`` lives here, so that the live worker (``agents.pipeline``)
and the backtest (``streams.backtest``) cannot differ:

- decoding by input kind (``streams.intake``); a record that does not decode is *rejected*
  (the caller dead-letters it) and still moves its partition's position;
- the event-time merge of the onboarding, transactions and alert-decisions partitions
  (``streams.ordering``);
- positions: each event is applied with its (source partition, offset), so one delivered
  again changes nothing;
- the error policy: an event the core fails on is rejected (``processing_error``) and leaves
  its customer's state exactly as before (rebuilt from the latest snapshot plus the events
  applied since: ``streams.state_cache``);
- the rule set in force (``rules``, replaced between two steps when a new one is published).

A record is anything with ``topic``, ``partition``, ``offset``, ``key`` and ``value``: a Kafka
message in the worker, an ``InputRecord`` in the backtest.
"""

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from schemas.alerts import Alert
from schemas.dead_letters import ErrorKind
from schemas.risk import RiskChange
from streams.engine import Event, apply
from streams.intake import (
    Rejected,
    Transfer,
    decode_decision,
    decode_onboarding,
    decode_transfer,
)
from streams.network.emit import Emitted, Emitter, PartitionClock
from streams.ordering import InputAligner
from streams.ruleset import CompiledRules
from streams.state_cache import StateCache, rebuild

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class InputRecord:
    """A record read from a file or a list (the backtest): where it would sit in Kafka."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes


@dataclass
class StepOutcome:
    """What one step led to, each with the record it came from."""

    alerts: list[tuple[Alert, Any]] = field(default_factory=list)
    risk_changes: list[tuple[RiskChange, Any]] = field(default_factory=list)
    rejected: list[tuple[Any, Rejected]] = field(default_factory=list)
    done: list[Any] = field(default_factory=list)
    """Records finished in this step (applied, replayed or rejected), in order."""
    consumed: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(topic, ``processed`` or ``dead_lettered``) -> records."""
    replayed: Counter[str] = field(default_factory=Counter)
    late: int = 0
    internal: list[tuple[Emitted, Any]] = field(default_factory=list)
    """Records for the network stages (``streams.network``), with the input they came from."""


ClockLoader = Callable[[int, Any], PartitionClock]
"""A transactions partition's network clock as the store has it, given one of its records."""


class Replay:
    def __init__(self, rules: CompiledRules, states: StateCache, aligner: InputAligner,
                 emitter: Emitter | None = None, load_clock: ClockLoader | None = None) -> None:
        self.rules = rules
        self.states = states
        self.aligner = aligner
        self.onboarding_topic = aligner.topics[0]
        self.decisions_topic = aligner.topics[2] if len(aligner.topics) > 2 else None
        self.emitter = emitter
        """S1's side of the network stages; None: no network stages."""
        self.load_clock = load_clock or (lambda partition, record: PartitionClock())

    def _decode(self, record: Any) -> Event:
        topic = record.topic
        if topic == self.onboarding_topic:
            return decode_onboarding(record.key, record.value)
        if topic == self.decisions_topic:
            return decode_decision(record.key, record.value)
        return decode_transfer(record.key, record.value, self.rules)

    def admit(self, records: Sequence[Any], outcome: StepOutcome,
              on_event: Callable[[float], None] | None = None,
              fetched_ms: float | None = None) -> None:
        """Decode; a reject is done at once, an event waits in the aligner. Every record
        moves its partition's position. ``on_event`` gets each event's time (epoch s);
        ``fetched_ms``: when the worker was handed the records (``streams.ordering``)."""
        aligner = self.aligner
        for record in records:
            try:
                event = self._decode(record)
            except Rejected as rejected:
                self._reject(record, rejected, outcome)
                aligner.read(record.topic, record.partition, record.offset)
                continue
            occurred_at_s = event.occurred_at.timestamp()
            if on_event is not None:
                on_event(occurred_at_s)
            aligner.add(record.topic, record.partition, record.offset, occurred_at_s,
                        (record, event), fetched_ms)

    def apply_released(self, outcome: StepOutcome) -> int:
        """Apply, in order, what the aligner lets go now; return how many events."""
        ready = self.aligner.release()
        for record, event in ready:
            try:
                self._apply_one(record, event, outcome)
            except Rejected as rejected:
                self._reject(record, rejected, outcome)
            else:
                outcome.consumed[(record.topic, "processed")] += 1
                outcome.done.append(record)
        return len(ready)

    @staticmethod
    def _reject(record: Any, rejected: Rejected, outcome: StepOutcome) -> None:
        outcome.rejected.append((record, rejected))
        outcome.consumed[(record.topic, "dead_lettered")] += 1
        outcome.done.append(record)

    def _apply_one(self, record: Any, event: Event, outcome: StepOutcome) -> None:
        key = record.key
        position = (f"{record.topic}/{record.partition}", record.offset)
        rules = self.rules
        try:
            state = self.states.load(key, record)
            state, decisions = apply(state, event, rules, position)
        except Exception as exc:
            # A bug in the core must stop neither the worker nor the backtest, nor leave a
            # half-changed state behind.
            log.exception("the core failed on %s offset %d", *position)
            self._restore(key, record)
            reason = f"internal error {type(exc).__name__} while applying the event"
            raise Rejected(ErrorKind.PROCESSING_ERROR, [reason]) from exc
        if decisions.replayed:
            outcome.replayed[record.topic] += 1
            return
        outcome.late += decisions.late
        emitter = self.emitter
        if emitter is not None and isinstance(event, Transfer) and not decisions.late:
            partition = record.partition
            if partition not in emitter.clocks:
                emitter.clocks[partition] = self.load_clock(partition, record)
            outcome.internal.extend(
                (emitted, record)
                for emitted in emitter.legs(event, state, rules, partition, record.offset))
        self.states.mark_changed(key, state, record, (event, position, rules))
        outcome.alerts.extend((alert, record) for alert in decisions.alerts)
        outcome.risk_changes.extend((change, record) for change in decisions.risk_changes)

    def _restore(self, key: bytes, record: Any) -> None:
        """Rebuild ``key``'s state as it was before the failed event."""
        def reapply(state: Any, change: Any) -> Any:
            event, position, rules = change
            return apply(state, event, rules, position)[0]
        rebuild(self.states, key, record, reapply)
