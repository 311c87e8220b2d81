"""One batch of input records through the replay path (``streams.replay``: decode, order,
apply), on Kafka: publish, count; the checkpoint makes it durable (``agents.checkpoint``).

Every record read ends processed or dead-lettered; nothing an input holds can stop the
worker:

- a record that does not decode is a dead letter (its original bytes bounded: see
  ``dead_letter``) and still moves its partition's position (``streams.ordering``);
- an event the core fails on (a bug) is a dead letter (``processing_error``), and its
  customer's state is rebuilt as it was before the event (``streams.replay``);
- an output the broker refuses for a reason of that record (``RECORD_REJECTIONS``: its size,
  its timestamp) is replaced by a small dead letter of the input that produced it
  (``output_rejected``); if even that is refused, it is logged and counted in
  ``amlstream_outputs_lost_total`` and the worker goes on;
- any other send failure (broker unreachable past the producer's retries and timeout, not
  authorised) fails the checkpoint, which stops the worker: a restarted worker re-reads from
  the committed offsets and loses nothing.
"""

import asyncio
import base64
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka.errors import (
    InvalidTimestampError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
)

from agents import metrics
from agents.checkpoint import Checkpointer
from agents.network_stages import NetworkStages
from schemas.dead_letters import DeadLetter, ErrorKind
from streams.ordering import InputAligner, TopicPartition
from streams.replay import Replay, StepOutcome
from streams.ruleset import CompiledRules
from streams.state_cache import StateCache

log = logging.getLogger(__name__)

Send = Callable[[bytes | None, bytes], Awaitable[Awaitable[Any]]]
"""Start sending (key, value) to a topic; the returned awaitable resolves once delivered."""
Bounds = Callable[[list[TopicPartition]], Awaitable[dict[TopicPartition, tuple[int, int]]]]
"""(start, end) offsets of topic partitions, from the broker (``InputAligner.learn``)."""

RECORD_REJECTIONS = (MessageSizeTooLargeError, RecordTooLargeError, RecordListTooLargeError,
                     InvalidTimestampError)
"""Send failures caused by the record itself: the same record would fail again."""
KEY_MAX_CHARS = 1024
REASON_MAX_CHARS = 500
REJECTED_OUTPUT_ORIGINAL_BYTES = 4096
"""Original bytes kept in the dead letter that replaces a refused output."""
BOUNDS_RETRY_S = 1.0
BOUNDS_TIMEOUT_S = 10.0


@dataclass(slots=True)
class Output:
    kind: str
    """alert, risk change or dead letter."""
    send: Send
    key: bytes | None
    value: bytes
    source: Any
    """The input message it came from."""


@dataclass
class BatchOutcome(StepOutcome):
    outputs: list[Output] = field(default_factory=list)
    """What the step led to, encoded for the topics, in the order they are sent."""


def dead_letter(message: Any, kind: ErrorKind, reasons: list[str],
                max_original_bytes: int) -> DeadLetter:
    """The dead letter of ``message``: the original value whole up to ``max_original_bytes``,
    else its first bytes with its size and SHA-256; the key text bounded too."""
    value: bytes = message.value or b""
    key = message.key
    key_text = None if key is None else bytes(key).decode("utf-8", "replace")
    return DeadLetter(
        source_topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=None if key_text is None else key_text[:KEY_MAX_CHARS],
        key_truncated=key_text is not None and len(key_text) > KEY_MAX_CHARS,
        original_b64=base64.b64encode(value[:max_original_bytes]).decode("ascii"),
        original_size=len(value),
        original_sha256=hashlib.sha256(value).hexdigest(),
        truncated=len(value) > max_original_bytes,
        error_kind=kind,
        reasons=[reason[:REASON_MAX_CHARS] for reason in reasons] or ["(no reason given)"],
        received_at=datetime.now(UTC),
    )


def _dead_letter_key(message: Any) -> bytes | None:
    """The dead letter's own message key: the input's, unless it is too long to be a key."""
    key = message.key
    return None if key is None or len(key) > KEY_MAX_CHARS else bytes(key)


class LagObserver:
    """Processing lag of a batch's events: into the histogram within the allowed lateness,
    else counted as back-dated, with the largest such lag as a gauge."""

    def __init__(self, now_s: float, allowed_lateness_s: float) -> None:
        self.now_s = now_s
        self.allowed_lateness_s = allowed_lateness_s
        self.events = 0
        self.backdated = 0
        self.largest_backdated_s = 0.0

    def observe(self, occurred_at_s: float) -> None:
        self.events += 1
        lag_s = self.now_s - occurred_at_s
        if lag_s <= self.allowed_lateness_s:
            metrics.PROCESSING_LAG.observe(lag_s)
        else:
            self.backdated += 1
            self.largest_backdated_s = max(self.largest_backdated_s, lag_s)

    def report(self) -> None:
        if self.backdated:
            metrics.EVENTS_BACKDATED.inc(self.backdated)
        if self.events:
            metrics.BACKDATED_LAG.set(self.largest_backdated_s)


class BatchProcessor:
    """The replay step (``streams.replay``) on Kafka: learn the input partitions' bounds,
    pause those too far ahead, publish the outputs; ``checkpoint`` makes it durable."""

    def __init__(self, replay: Replay, send_alert: Send, send_dead_letter: Send,
                 send_risk_change: Send, checkpoint: Checkpointer, bounds: Bounds,
                 pause: Callable[[set[TopicPartition]], None],
                 resume: Callable[[set[TopicPartition]], None],
                 max_original_bytes: int = 512 * 1024,
                 network: NetworkStages | None = None) -> None:
        self.replay = replay
        self.network = network
        """S2 and S3, in the same step (None: ``AMLSTREAM_NETWORK=off``)."""
        self.send_alert = send_alert
        self.send_dead_letter = send_dead_letter
        self.send_risk_change = send_risk_change
        self.checkpoint = checkpoint
        self.bounds = bounds
        self.pause = pause
        self.resume = resume
        self.max_original_bytes = max_original_bytes
        self._bounds_retry_at = 0.0
        self._lock = asyncio.Lock()

    @property
    def rules(self) -> CompiledRules:
        return self.replay.rules

    @rules.setter
    def rules(self, rules: CompiledRules) -> None:
        self.replay.rules = rules
        if self.network is not None:
            self.network.counterparty.rules = rules
            self.network.flow.rules = rules

    @property
    def aligner(self) -> InputAligner:
        return self.replay.aligner

    @property
    def state(self) -> StateCache:
        return self.replay.states

    async def learn_bounds(self) -> None:
        """Ask the broker where the partitions met for the first time start and end."""
        unlearned = self.aligner.unlearned()
        if not unlearned or time.monotonic() < self._bounds_retry_at:
            return
        try:
            bounds = await asyncio.wait_for(self.bounds(unlearned), BOUNDS_TIMEOUT_S)
        except Exception as exc:  # the broker may be away: retry with the next batch
            log.warning("could not read the input partitions' end offsets (%s); events wait",
                        type(exc).__name__)
            self._bounds_retry_at = time.monotonic() + BOUNDS_RETRY_S
            return
        for (topic, partition), (start, end) in bounds.items():
            self.aligner.learn(topic, partition, start, end)

    def _encode(self, outcome: BatchOutcome) -> None:
        """The step's alerts, risk changes and dead letters as records for their topics."""
        outputs = outcome.outputs
        for alert, record in outcome.alerts:  # a network alert's record is not the customer's
            outputs.append(Output("alert", self.send_alert, alert.customer_id.encode(),
                                  alert.model_dump_json().encode(), record))
        for change, record in outcome.risk_changes:
            outputs.append(Output("risk change", self.send_risk_change, record.key,
                                  change.model_dump_json().encode(), record))
        for record, rejected in outcome.rejected:
            letter = dead_letter(record, rejected.kind, rejected.reasons,
                                 self.max_original_bytes)
            outputs.append(Output("dead letter", self.send_dead_letter,
                                  _dead_letter_key(record), letter.model_dump_json().encode(),
                                  record))

    async def publish(self, outcome: BatchOutcome) -> list[Awaitable[Any]]:
        """Hand the batch's outputs to the producer, in order; their deliveries are awaited by
        the checkpoint (the loop goes on with the next batch meanwhile)."""
        deliveries = []
        for output in outcome.outputs:
            try:
                delivery = await output.send(output.key, output.value)
            except RECORD_REJECTIONS as exc:  # refused before sending (its size)
                deliveries.append(asyncio.ensure_future(self._replace_refused(output, exc)))
                continue
            deliveries.append(asyncio.ensure_future(self._confirm(delivery, output)))
        self.checkpoint.sent(deliveries)
        for alert, _ in outcome.alerts:
            metrics.ALERTS.labels(alert.rule_id, alert.severity.value).inc()
        for _, rejected in outcome.rejected:
            metrics.DEAD_LETTERS.labels(rejected.kind.value).inc()
        for change, _ in outcome.risk_changes:
            metrics.RISK_CHANGES.labels(change.level.value).inc()
        return deliveries

    async def _confirm(self, delivery: Awaitable[Any], output: Output) -> None:
        try:
            await delivery
        except RECORD_REJECTIONS as exc:  # refused by the broker
            await self._replace_refused(output, exc)

    async def _replace_refused(self, output: Output, exc: BaseException) -> None:
        """A small dead letter of the input in place of the output the broker refused."""
        message = output.source
        reason = (f"the broker refused the {output.kind} this input produced "
                  f"({type(exc).__name__}, {len(output.value)} bytes)")
        letter = dead_letter(message, ErrorKind.OUTPUT_REJECTED, [reason],
                             REJECTED_OUTPUT_ORIGINAL_BYTES)
        log.error("%s of %s/%d offset %d refused by the broker (%s); dead-lettered instead",
                  output.kind, message.topic, message.partition, message.offset,
                  type(exc).__name__)
        metrics.DEAD_LETTERS.labels(ErrorKind.OUTPUT_REJECTED.value).inc()
        try:
            await (await self.send_dead_letter(_dead_letter_key(message),
                                               letter.model_dump_json().encode()))
        except RECORD_REJECTIONS as again:
            log.critical("the dead letter replacing a refused %s was refused too (%s): "
                         "%s/%d offset %d has no output", output.kind, type(again).__name__,
                         message.topic, message.partition, message.offset)
            metrics.OUTPUTS_LOST.labels(output.kind.replace(" ", "_")).inc()

    def _count(self, outcome: BatchOutcome) -> None:
        for (topic, result), count in outcome.consumed.items():
            metrics.EVENTS_CONSUMED.labels(topic, result).inc(count)
        for topic, count in outcome.replayed.items():
            metrics.EVENTS_REPLAYED.labels(topic).inc(count)
        if outcome.late:
            metrics.EVENTS_LATE.inc(outcome.late)
        metrics.EVENTS_HELD.set(len(self.aligner))
        metrics.INPUT_PARTITIONS_PAUSED.set(len(self.aligner.paused))

    def _back_pressure(self) -> None:
        """Stop fetching partitions too far ahead of the other input; resume drained ones."""
        to_pause = self.aligner.to_pause()
        if to_pause:
            self.pause(to_pause)
        to_resume = self.aligner.to_resume()
        if to_resume:
            self.resume(to_resume)

    async def process(self, messages: Sequence[Any]) -> BatchOutcome:
        """Take a batch of input messages (one fetch; empty from the timer), apply what the
        aligner releases, publish its outputs, and checkpoint when one is due."""
        self.checkpoint.raise_if_failed()
        async with self._lock:
            started = time.perf_counter()
            outcome = BatchOutcome()
            now_s = time.time()
            lag = LagObserver(now_s, self.rules.config.allowed_lateness_s)
            network = self.network
            if network is not None:
                network.meet_partitions(messages)
                messages, legs, flows = network.split(messages)
                network.admit(legs, flows, outcome)
            self.replay.admit(messages, outcome,
                              on_event=lag.observe,
                              fetched_ms=now_s * 1000)
            lag.report()
            await self.learn_bounds()
            applied = self.replay.apply_released(outcome)
            if network is not None:
                applied += network.apply_released(outcome)
                network.screen(outcome)
            self._back_pressure()
            self._encode(outcome)
            # Outputs before state: a crash in between re-applies the events on restart and
            # re-sends the same alerts (same ids), rather than skipping them as applied.
            deliveries = await self.publish(outcome)
            if network is not None:
                internal = await network.send(outcome)
                self.checkpoint.sent(internal)
                # Promises only once the records they cover are on the broker.
                network.sent(deliveries + internal)
                self.checkpoint.sent(await network.send_markers())
            self.checkpoint.applied(outcome.done)
            self.checkpoint.maybe_cut()
            self._count(outcome)
            if applied:
                metrics.BATCH_DURATION.observe(time.perf_counter() - started)
                metrics.BATCH_SIZE.observe(applied)
            return outcome

    async def flush(self) -> None:
        """Write and acknowledge everything applied so far; return when it is done."""
        await self.checkpoint.flush()

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
            paused = self.aligner.drop(partitions)
            if paused:
                self.resume(paused)
            if self.network is not None:
                self.network.revoked(partitions)
                self.network.counterparty.states.forget()
                self.network.flow.states.forget()
