"""One batch of input events: decode, apply the core, persist state, publish, count.

Order matters for at-least-once delivery: the batch's alerts and dead letters are awaited
until the broker has them, and state goes to the changelog, before the batch's events are
acknowledged. Faust flushes the producer (changelog included) before it commits offsets, so
an offset is never committed ahead of the effects of its event.
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
from schemas.alerts import Alert
from schemas.dead_letters import DeadLetter
from schemas.events import OnboardingEvent
from streams.engine import apply
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
    def __init__(self, rules: CompiledRules, state: Any, onboarding_topic: str,
                 send_alert: Send, send_dead_letter: Send) -> None:
        self.rules = rules
        self.state = state
        self.onboarding_topic = onboarding_topic
        self.send_alert = send_alert
        self.send_dead_letter = send_dead_letter

    def _decode(self, message: Any) -> Transfer | OnboardingEvent:
        if message.topic == self.onboarding_topic:
            return decode_onboarding(message.key, message.value)
        return decode_transfer(message.key, message.value, self.rules)

    def apply_batch(self, messages: Sequence[Any]) -> BatchOutcome:
        """Apply every message to its customer's state; save each touched customer once."""
        outcome = BatchOutcome()
        touched: dict[bytes, tuple[CustomerState | None, int]] = {}
        now_s = time.time()
        for message in messages:
            topic = message.topic
            try:
                event = self._decode(message)
            except Rejected as rejected:
                outcome.dead_letters.append(dead_letter(message, rejected))
                metrics.EVENTS_CONSUMED.labels(topic, "dead_lettered").inc()
                continue
            metrics.EVENTS_CONSUMED.labels(topic, "processed").inc()
            metrics.PROCESSING_LAG.observe(now_s - event.occurred_at.timestamp())
            key = message.key
            state, _ = touched.get(key) or (self.state.load(key), message.partition)
            source = f"{topic}/{message.partition}"
            if state is not None and state.already_applied(source, message.offset):
                metrics.EVENTS_REPLAYED.labels(topic).inc()
                continue
            if isinstance(event, Transfer) and state is not None and (
                event.at_s < state.watermark_s - self.rules.config.allowed_lateness_s
            ):
                metrics.EVENTS_LATE.inc()
            state, alerts = apply(state, event, self.rules, (source, message.offset))
            touched[key] = (state, message.partition)
            outcome.alerts.extend(alerts)
        for key, (state, partition) in touched.items():
            if state is not None:
                self.state.save(key, state, partition)
        return outcome

    async def publish(self, outcome: BatchOutcome) -> None:
        pending = [
            await self.send_alert(alert.customer_id.encode(), alert.model_dump_json().encode())
            for alert in outcome.alerts
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

    async def process(self, messages: Sequence[Any]) -> BatchOutcome:
        started = time.perf_counter()
        outcome = self.apply_batch(messages)
        await self.publish(outcome)
        metrics.BATCH_DURATION.observe(time.perf_counter() - started)
        metrics.BATCH_SIZE.observe(len(messages))
        return outcome
