"""One batch of input events: decode, apply the core, persist state, publish, count.

Order matters for at-least-once delivery. Each batch's alerts, risk changes and dead letters
are sent at once. Every ``flush_interval_s`` a flush takes a cut: the outputs sent so far, a
snapshot of every customer changed since the last cut (encoded there and then), and the events
applied so far. In the background, while the next batches are processed, it awaits the outputs
until the broker has them, then writes the snapshot (store and changelog, awaited), and only
then acknowledges the events: an offset is never committed ahead of the effects of its event,
and an alert is never behind the state that records it was raised. One flush writes at a time.
"""

import asyncio
import base64
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from agents import metrics
from agents.ordering import InputAligner
from agents.state_table import Snapshot
from schemas.alerts import Alert
from schemas.dead_letters import DeadLetter, ErrorKind
from schemas.events import OnboardingEvent
from schemas.risk import RiskChange
from streams.engine import apply
from streams.intake import Rejected, Transfer, decode_onboarding, decode_transfer
from streams.ruleset import CompiledRules

log = logging.getLogger(__name__)

Send = Callable[[bytes | None, bytes], Awaitable[Awaitable[Any]]]
"""Start sending (key, value) to a topic; the returned awaitable resolves once delivered."""


@dataclass
class BatchOutcome:
    alerts: list[Alert] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    risk_changes: list[RiskChange] = field(default_factory=list)
    consumed: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(topic, outcome) -> events; counted here and added to the metrics once per batch."""
    replayed: Counter[str] = field(default_factory=Counter)
    late: int = 0


def dead_letter(message: Any, rejected: Rejected) -> DeadLetter:
    key = message.key
    return DeadLetter(
        source_topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=None if key is None else bytes(key).decode("utf-8", "replace"),
        original_b64=base64.b64encode(message.value or b"").decode("ascii"),
        error_kind=rejected.kind,
        reasons=rejected.reasons,
        received_at=datetime.now(UTC),
    )


class BatchProcessor:
    """Decode, order (``agents.ordering``), apply, persist, publish, acknowledge."""

    def __init__(self, rules: CompiledRules, state: Any, topics: tuple[str, str],
                 aligner: InputAligner, send_alert: Send, send_dead_letter: Send,
                 send_risk_change: Send, ack: Callable[[Any], Any],
                 flush_interval_s: float = 0.5, max_dirty: int = 20_000) -> None:
        self.rules = rules
        self.state = state
        self.onboarding_topic = topics[0]
        self.aligner = aligner
        self.send_alert = send_alert
        self.send_dead_letter = send_dead_letter
        self.send_risk_change = send_risk_change
        self.ack = ack
        """Release a message's offset for commit (its one reference: ``agents.fast_path``)."""
        self.flush_interval_s = flush_interval_s
        self.max_dirty = max_dirty
        self._applied: list[Any] = []
        """Events applied (or dead-lettered) since the last flush: acknowledged by the flush."""
        self._in_flight: list[Awaitable[Any]] = []
        """Alerts, risk changes and dead letters sent but not yet acknowledged by the broker."""
        self._flushed_at = time.monotonic()
        self._writer: asyncio.Future[None] | None = None
        """The flush writing in the background, if any (see the module docstring)."""
        self._lock = asyncio.Lock()

    def _decode(self, message: Any) -> Transfer | OnboardingEvent:
        if message.topic == self.onboarding_topic:
            return decode_onboarding(message.key, message.value)
        return decode_transfer(message.key, message.value, self.rules)

    def admit(self, messages: Sequence[Any], outcome: BatchOutcome) -> None:
        """Decode; rejects become dead letters, the rest wait in the aligner. Nothing is
        acknowledged here: only the flush after an event's effects are written does."""
        now_s = time.time()
        for message in messages:
            try:
                event = self._decode(message)
            except Rejected as rejected:
                outcome.dead_letters.append(dead_letter(message, rejected))
                outcome.consumed[(message.topic, "dead_lettered")] += 1
                self._applied.append(message)  # acknowledged once the dead letter is written
                continue
            occurred_at_s = event.occurred_at.timestamp()
            metrics.PROCESSING_LAG.observe(now_s - occurred_at_s)
            self.aligner.add(message.topic, message.partition, message.offset, occurred_at_s,
                             (message, event))

    def apply_ready(self, ready: Sequence[tuple[Any, Transfer | OnboardingEvent]],
                    outcome: BatchOutcome) -> None:
        """Apply events in order to their customers' states (in the write-back cache)."""
        for message, event in ready:
            try:
                self._apply_one(message, event, outcome)
            except Rejected as rejected:
                outcome.dead_letters.append(dead_letter(message, rejected))
                outcome.consumed[(message.topic, "dead_lettered")] += 1
            else:
                outcome.consumed[(message.topic, "processed")] += 1

    def _apply_one(self, message: Any, event: Transfer | OnboardingEvent,
                   outcome: BatchOutcome) -> None:
        key = message.key
        state = self.state.load(key, message)
        source = f"{message.topic}/{message.partition}"
        try:
            state, decisions = apply(state, event, self.rules, (source, message.offset))
        except Exception as exc:
            # A bug in the core must not stop the worker: keep the event for investigation.
            log.exception("the core failed on %s offset %d", source, message.offset)
            reason = f"internal error {type(exc).__name__} while applying the event"
            raise Rejected(ErrorKind.PROCESSING_ERROR, [reason]) from exc
        if decisions.replayed:
            outcome.replayed[message.topic] += 1
            return
        outcome.late += decisions.late
        self.state.mark_changed(key, state, message)
        outcome.alerts.extend(decisions.alerts)
        outcome.risk_changes.extend(decisions.risk_changes)

    async def publish(self, outcome: BatchOutcome) -> None:
        pending = [
            await self.send_alert(alert.customer_id.encode(), alert.model_dump_json().encode())
            for alert in outcome.alerts
        ]
        pending += [
            await self.send_risk_change(change.customer_id.encode(),
                                        change.model_dump_json().encode())
            for change in outcome.risk_changes
        ]
        pending += [
            await self.send_dead_letter(
                None if letter.key is None else letter.key.encode(),
                letter.model_dump_json().encode(),
            )
            for letter in outcome.dead_letters
        ]
        # Not awaited here: the next flush awaits them before it writes any state, so the loop
        # goes on with the next batch while the broker acknowledges these.
        self._in_flight.extend(pending)
        for alert in outcome.alerts:
            metrics.ALERTS.labels(alert.rule_id, alert.severity.value).inc()
        for letter in outcome.dead_letters:
            metrics.DEAD_LETTERS.labels(letter.error_kind.value).inc()
        for change in outcome.risk_changes:
            metrics.RISK_CHANGES.labels(change.level.value).inc()

    def _count(self, outcome: BatchOutcome) -> None:
        for (topic, result), count in outcome.consumed.items():
            metrics.EVENTS_CONSUMED.labels(topic, result).inc(count)
        for topic, count in outcome.replayed.items():
            metrics.EVENTS_REPLAYED.labels(topic).inc(count)
        if outcome.late:
            metrics.EVENTS_LATE.inc(outcome.late)
        metrics.EVENTS_HELD.set(len(self.aligner))

    async def process(self, messages: Sequence[Any]) -> BatchOutcome:
        """Take a batch of input messages (one fetch; empty from the timer), apply what the
        aligner releases, publish its alerts, and, when a flush is due and none is writing,
        start one (see the module docstring)."""
        self._raise_if_flush_failed()
        async with self._lock:
            started = time.perf_counter()
            outcome = BatchOutcome()
            self.admit(messages, outcome)
            ready = self.aligner.release()
            self.apply_ready(ready, outcome)
            # Alerts before state: a crash in between re-applies the events on restart and
            # re-sends the same alerts (same ids), rather than skipping them as applied.
            await self.publish(outcome)
            self._applied.extend(message for message, _ in ready)
            if self._flush_due() and not self._flush_running():
                self._start_flush()
            self._count(outcome)
            if ready:
                metrics.BATCH_DURATION.observe(time.perf_counter() - started)
                metrics.BATCH_SIZE.observe(len(ready))
            return outcome

    def _flush_due(self) -> bool:
        return bool(self._applied or self._in_flight) and (
            time.monotonic() - self._flushed_at >= self.flush_interval_s
            or len(self.state.dirty) >= self.max_dirty)

    def _flush_running(self) -> bool:
        return self._writer is not None and not self._writer.done()

    def _raise_if_flush_failed(self) -> None:
        """A flush that failed (broker gone, a send refused) left its events unacknowledged;
        the caller stops the worker, which then re-reads them from the committed offsets."""
        if self._writer is not None and self._writer.done():
            self._writer.result()

    def _start_flush(self) -> None:
        """Take the cut (see the module docstring) and write it in the background."""
        in_flight, self._in_flight = self._in_flight, []
        applied, self._applied = self._applied, []
        snapshot = self.state.snapshot()
        self._flushed_at = time.monotonic()
        self._writer = asyncio.ensure_future(self._write(in_flight, snapshot, applied))

    async def _write(self, in_flight: list[Awaitable[Any]], snapshot: Snapshot,
                     applied: list[Any]) -> None:
        # Alerts first (see ``process``), then state, then the acknowledgements.
        await asyncio.gather(*in_flight)
        await self.state.write(snapshot)
        for message in applied:
            self.ack(message)
        metrics.CUSTOMERS_IN_STATE.set(self.state.customers())

    async def flush(self) -> None:
        """Write and acknowledge everything applied so far; return when it is done."""
        if self._writer is not None:
            await self._writer
        if self._applied or self._in_flight or self.state.dirty:
            self._start_flush()
            assert self._writer is not None
            await self._writer

    def held_partitions(self) -> set[int]:
        """Partition numbers with events held for ordering."""
        return set(self.aligner.queues)

    async def on_revoked(self, partitions: set[int]) -> None:
        """Partitions are moving. What was applied while we owned them is flushed and
        acknowledged now, before their new owner recovers the state; events still held for
        ordering in the revoked partitions are dropped unacknowledged (their new owner reads
        them again from the committed offset); the cache is dropped, as it may go stale."""
        async with self._lock:
            await self.flush()
            self.state.forget()
            self.aligner.drop(partitions)
