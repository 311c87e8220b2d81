"""One batch of input events: decode, apply the core, persist state, publish, count.

Order matters for at-least-once delivery: the batch's alerts and dead letters are awaited
until the broker has them, then the state is written (store and changelog), then the batch's
events are acknowledged. Faust flushes the producer (changelog included) before it commits
offsets, so an offset is never committed ahead of the effects of its event.
"""

import asyncio
import base64
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from agents import metrics
from agents.ordering import InputAligner
from schemas.alerts import Alert
from schemas.dead_letters import DeadLetter, ErrorKind
from schemas.events import OnboardingEvent
from schemas.risk import RiskChange
from streams.engine import apply, is_late
from streams.intake import Rejected, Transfer, decode_onboarding, decode_transfer
from streams.ruleset import CompiledRules
from streams.state import CustomerState

log = logging.getLogger(__name__)

Send = Callable[[bytes | None, bytes], Awaitable[Awaitable[Any]]]
"""Start sending (key, value) to a topic; the returned awaitable resolves once delivered."""


@dataclass
class BatchOutcome:
    alerts: list[Alert] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    risk_changes: list[RiskChange] = field(default_factory=list)
    touched: dict[bytes, tuple[CustomerState, Any]] = field(default_factory=dict)
    """Customers whose state the batch changed, with one of their events."""


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
                 send_risk_change: Send) -> None:
        self.rules = rules
        self.state = state
        self.onboarding_topic = topics[0]
        self.aligner = aligner
        self.send_alert = send_alert
        self.send_dead_letter = send_dead_letter
        self.send_risk_change = send_risk_change
        self._lock = asyncio.Lock()

    def _decode(self, message: Any) -> Transfer | OnboardingEvent:
        if message.topic == self.onboarding_topic:
            return decode_onboarding(message.key, message.value)
        return decode_transfer(message.key, message.value, self.rules)

    def admit(self, events: Sequence[Any], outcome: BatchOutcome) -> None:
        """Decode; rejects become dead letters, the rest wait in the aligner.

        A held event gets an extra reference, so Faust's batch acknowledgement does not
        release its offset for commit: only ``process`` does, once it is applied.
        """
        now_s = time.time()
        for faust_event in events:
            message = faust_event.message
            try:
                event = self._decode(message)
            except Rejected as rejected:
                outcome.dead_letters.append(dead_letter(message, rejected))
                metrics.EVENTS_CONSUMED.labels(message.topic, "dead_lettered").inc()
                continue
            occurred_at_s = event.occurred_at.timestamp()
            metrics.PROCESSING_LAG.observe(now_s - occurred_at_s)
            message.incref()
            self.aligner.add(message.topic, message.partition, message.offset, occurred_at_s,
                             (faust_event, event))

    def apply_ready(self, ready: Sequence[tuple[Any, Transfer | OnboardingEvent]],
                    outcome: BatchOutcome) -> None:
        """Apply events in order to their customers' states, in memory."""
        touched = outcome.touched
        for faust_event, event in ready:
            message = faust_event.message
            try:
                self._apply_one(faust_event, event, touched, outcome)
            except Rejected as rejected:
                outcome.dead_letters.append(dead_letter(message, rejected))
                metrics.EVENTS_CONSUMED.labels(message.topic, "dead_lettered").inc()
            else:
                metrics.EVENTS_CONSUMED.labels(message.topic, "processed").inc()

    def save_states(self, outcome: BatchOutcome) -> None:
        """Write each customer touched by the batch once (store and changelog)."""
        for key, (state, faust_event) in outcome.touched.items():
            self.state.save(key, state, faust_event)

    def _apply_one(self, faust_event: Any, event: Transfer | OnboardingEvent,
                   touched: dict[bytes, tuple[CustomerState, Any]], outcome: BatchOutcome) -> None:
        message = faust_event.message
        key = message.key
        known = touched.get(key)
        state = known[0] if known is not None else self.state.load(key, faust_event)
        source = f"{message.topic}/{message.partition}"
        if state is not None and state.already_applied(source, message.offset):
            metrics.EVENTS_REPLAYED.labels(message.topic).inc()
            return
        if isinstance(event, Transfer) and state is not None and is_late(state, event,
                                                                        self.rules):
            metrics.EVENTS_LATE.inc()
        try:
            state, decisions = apply(state, event, self.rules, (source, message.offset))
        except Exception as exc:
            # A bug in the core must not stop the worker: keep the event for investigation.
            log.exception("the core failed on %s offset %d", source, message.offset)
            reason = f"internal error {type(exc).__name__} while applying the event"
            raise Rejected(ErrorKind.PROCESSING_ERROR, [reason]) from exc
        touched[key] = (state, faust_event)
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
        if pending:
            await asyncio.gather(*pending)
        for alert in outcome.alerts:
            metrics.ALERTS.labels(alert.rule_id, alert.severity.value).inc()
        for letter in outcome.dead_letters:
            metrics.DEAD_LETTERS.labels(letter.error_kind.value).inc()
        for change in outcome.risk_changes:
            metrics.RISK_CHANGES.labels(change.level.value).inc()

    async def process(self, events: Sequence[Any]) -> BatchOutcome:
        """Take a batch of Faust events (``stream.take_events``; empty from the release timer),
        apply whatever the aligner releases, publish, then acknowledge what was applied."""
        async with self._lock:
            started = time.perf_counter()
            outcome = BatchOutcome()
            self.admit(events, outcome)
            ready = self.aligner.release()
            self.apply_ready(ready, outcome)
            # Alerts before state: a crash in between re-applies the events on restart and
            # re-sends the same alerts (same ids), rather than skipping them as applied.
            await self.publish(outcome)
            self.save_states(outcome)
            for faust_event, _ in ready:
                faust_event.ack()
            metrics.EVENTS_HELD.set(len(self.aligner))
            if events or ready:
                metrics.BATCH_DURATION.observe(time.perf_counter() - started)
                metrics.BATCH_SIZE.observe(len(ready))
            return outcome
