"""Faust's transport, extended so the input topics reach the agent in batches.

Why: stock Faust moves every record on its own. The consumer's drain loop awaits each message
through ``asyncio.wait`` (the callback raced against the flow-suspension event), the conductor
takes a lock per message, decodes it through the schema registry (even raw bytes) and queues
one ``Event``; the stream then sets a context variable, calls sensors and acks it, again per
message. That is ~190 µs of CPU per event: a Faust worker stops near 5,000 events/s whatever
its settings, while a plain aiokafka loop reads the same records at 200,000/s.

What changes, and only for the topics named in ``BatchConductor.batch_topics`` (the two input
topics); every other topic (table changelogs during recovery, the rules topic's own consumer is
separate) keeps Faust's per-message path untouched:

- ``BatchConsumer._drain_messages`` takes each fetch (``getmany``) whole: the read-offset and
  gap bookkeeping Faust does per message is done in one pass per partition, and the records of
  batch topics go to the conductor in one call;
- ``BatchConductor.on_batch`` tracks each message as unacknowledged (as the stream would),
  gives it one reference per subscribed channel, and queues one ``InputBatch`` per channel;
- the agent's stream yields that ``InputBatch`` as a plain value (Faust streams pass non-Event
  values through), and ``BatchProcessor`` acknowledges each message itself, after its effects
  are durable.

- ``BatchConsumerThread`` shortens the broker's fetch wait (``FETCH_MAX_WAIT_MS``) and has a
  fetch wait for some data first (``FETCH_MIN_BYTES``).

What stays Faust's: the consumer group and its rebalancing, flow control (a batch is queued
only while flow is active; stale generations are dropped by the agent), offset tracking and
commits (``Consumer.ack`` per message, the same bookkeeping as a stream's ack), tables, their
changelogs and recovery.

This module is also the one door to Faust's, mode's and aiokafka's private names: no other
module of the project reads, calls or overrides one (``tests/agents/test_faust_internals.py``
holds them to it). Those used elsewhere go through the functions at the end
(``committed_offset``, ``reading_from``, ``raw_producer``, ``current_event_of``,
``partition_databases``).
``INTERNALS`` lists every one with what it is used for, and ``check()``, run at the worker's
start-up, stops it with a one-line message naming the installed and the tested versions when
one is gone. ``pyproject.toml`` bounds those libraries to the tested versions and
``requirements.lock`` pins them.
"""

import functools
import hashlib
import importlib
import importlib.metadata
import inspect
import re
import weakref
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

import faust
from faust.streams import _current_event
from faust.transport.conductor import Conductor
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, Message

FETCH_MAX_WAIT_MS = 20
"""Longest the broker holds a fetch that finds no new data. Why short: while the agent holds
the event loop longer than aiokafka's prefetch back-off (0.1 s), aiokafka sends a fetch for
the broker's other partitions only (it skips those with undrained records); that fetch parks at
the broker until data comes to one of them or the wait ends, and meanwhile no fetch for the
input partitions may go to that broker. With Faust's 1.5 s, inputs arrived in ~0.6 s bursts at
5,000 events/s (event-to-alert p50 0.8 s); with 20 ms, p50 0.2 s. The cost: an idle worker
asks the broker ~50 times a second."""

FETCH_MIN_BYTES = 64 * 1024
"""Data a fetch waits for (up to ``FETCH_MAX_WAIT_MS``) before the broker answers. Why: with
aiokafka's 1 byte, under a steady load every fetch comes back with the few records written
since the last one: hundreds of small fetches a second, each costing the worker a batch and the
broker (here on the same two cores) a request. Waiting for 64 KB or 20 ms makes ~50 larger
ones. At 5,000 events/s with 100,000 customers: p50/p99 event-to-alert 139 / 352 ms with
1 byte, 88 / 289 ms with 64 KB (two runs; this machine is noisy). The cost: at most 20 ms more
per event."""


@dataclass(frozen=True, slots=True)
class InputBatch:
    """Records of one fetch from the input topics, in offset order within each partition."""
    messages: Sequence[Message]
    generation_id: int | None
    """The consumer group generation they were fetched in; after a rebalance they are stale."""


class BatchConductor(Conductor):
    batch_topics: frozenset[str] = frozenset()
    """Topics delivered in batches; set by ``create_app``."""

    async def on_batch(self, messages_by_tp: dict[TP, list[Message]],
                       generation_id: int | None) -> None:
        """Queue the fetched records as one ``InputBatch`` per subscribed channel, stamped
        with the consumer group generation they were fetched in; records of a generation
        that ended while they waited for the flow are dropped (read again from the committed
        offset, as every fetched record of a revoked partition is)."""
        await self.app.flow_control.acquire()
        if generation_id != self.app.consumer_generation_id:
            return
        consumer = self.app.consumer
        by_channel: dict[Any, list[Message]] = {}
        for tp, messages in messages_by_tp.items():
            channels = self._tp_index.get(tp)
            if not channels:
                continue
            for message in messages:
                message.incref(len(channels))
                message.tracked = True
                consumer.track_message(message)
            for channel in channels:
                by_channel.setdefault(channel, []).extend(messages)
        for channel, messages in by_channel.items():
            # Awaits while the channel's queue is full: back-pressure on the fetch loop.
            await channel.queue.put(InputBatch(messages, generation_id))


class BatchConsumer(faust_aiokafka.Consumer):
    held_back: frozenset[TP] = frozenset()
    first_read_offset: dict[TP, int]
    """The first offset read of each partition since it was assigned (``_head_done``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.first_read_offset = {}
        self.committed_when_revoked: dict[TP, int | None] = {}
        """Committed offsets of the partitions being revoked (``on_partitions_revoked``)."""
        self.reading_from: dict[TP, int | None] = {}
        """Where reading of each assigned partition started at the last seek to the committed
        offsets (``perform_seek``): the committed offset, or None for the reset policy's."""

    """Input partitions not fetched for now (``streams.ordering``: too far ahead of the other
    input topic). Faust's own ``pause_partitions`` is not used: it takes them out of the
    active set, and the drain loop then drops records of theirs already fetched."""

    def hold_back(self, tps: set[TP]) -> None:
        self.held_back = self.held_back | tps

    def release_hold(self, tps: set[TP]) -> None:
        self.held_back = self.held_back - tps

    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return BatchConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def _drain_messages(self, fetcher: Any) -> None:  # pragma: no cover - needs a broker
        """Faust's drain loop (``faust.transport.consumer.Consumer._drain_messages``), one
        fetch at a time instead of one message at a time, for the conductor's batch topics."""
        conductor = cast(BatchConductor, self.app.topics)
        consumer_stopped = self._stopped.is_set
        fetcher_stopped = fetcher._stopped.is_set
        try:
            while not (consumer_stopped() or fetcher_stopped()):
                self.diag.set_flag(CONSUMER_FETCHING)
                generation_id = self.app.consumer_generation_id
                records, active = await self._wait_next_records(1.0)
                await self.sleep(0)
                if records is None or self.should_stop:
                    continue
                if not self.flow_active:
                    await self._seek_back_after_flow_stop()
                    continue
                if generation_id != self.app.consumer_generation_id:
                    await self._drop_stale_inputs(records, conductor.batch_topics)
                batched, single = await self._take_new(records, active,
                                                       conductor.batch_topics)
                if batched:
                    await self.wait_first(conductor.on_batch(batched, generation_id),
                                          self.suspend_flow.wait())
                for message in single:  # Faust's own path: changelogs, other topics
                    await self.wait_first(self.callback(message), self.suspend_flow.wait())
                await self._maybe_commit()
                self.diag.unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                return
            raise
        finally:
            self.diag.unset_flag(CONSUMER_FETCHING)

    async def _getmany(self, active_partitions: set[TP] | None, timeout: float) -> Any:
        """Also drain, and drop, records of the table's changelog partitions outside the active
        set: this worker wrote them itself. aiokafka fetches every assigned partition and sends
        no new fetch to a broker while any of them holds undrained records, so leaving them
        (as stock Faust does) stalls the inputs in ~1 s cycles (measured: event-to-alert p50
        1.4 s at 5,000 events/s). During recovery the changelog partitions are active and
        reach the per-message path as usual."""
        if active_partitions is None:
            return await super()._getmany(active_partitions, timeout)
        if self.held_back:
            active_partitions = active_partitions - self.held_back
        own_writes = {tp for tp in self.assignment()
                      if tp not in active_partitions and self._is_changelog_tp(tp)}
        records = await super()._getmany(active_partitions | own_writes, timeout)
        for tp in own_writes:
            records.pop(tp, None)
        return records

    def _new_offset(self, tp: TP) -> int | None:
        """Faust's next offset to commit, from a list of acknowledged offsets that holds each
        offset once and none below the committed one. Why: an offset acknowledged twice (a
        record delivered again after a rebalance, acknowledged while Faust's index of it had
        been cleared by a commit in flight) left duplicates in Faust's list, and Faust's
        ``consecutive_numbers`` then stops each run at the first duplicate: the committed
        offset crept forward by one a commit, thousands behind the end, after a failover."""
        acked = self._acked[tp]
        if acked:
            committed = self._committed_offset.get(tp)
            if committed is None:
                committed = self.committed_when_revoked.get(tp)
            kept = sorted({offset for offset in acked if committed is None or offset >= committed})
            if len(kept) != len(acked):
                acked[:] = kept
                self._acked_index[tp] = set(kept)
            batch_topics = getattr(self.app.topics, "batch_topics", frozenset())
            if (tp.topic in batch_topics and committed is None
                    and tp not in self.first_read_offset):
                return None  # the head is unknown (see _head_done): inputs alike
            acked_by_key = getattr(self.app, "acked_by_key", frozenset())
            if tp.topic in acked_by_key and not self._head_done(tp, committed):
                return None
        offset: int | None = super()._new_offset(tp)
        return offset

    def _head_done(self, tp: TP, committed: int | None) -> bool:
        """The record a commit would move past first is acknowledged (or in a gap).

        Why: Faust skips this check when nothing was committed yet (or 0), and lets the record
        at the committed offset itself be unacknowledged (``min(acked) - committed > 1``,
        which also lets a transaction marker of an input topic pass). The network stages
        acknowledge their internal topics out of offset order (by order key), so Faust
        committed past legs still held, and a failover lost them. Those topics are written
        by our own producer, without transactions: every offset is a record.

        Neither a committed offset nor a first offset read known: no commit. That is the
        partition after a revocation, before the new assignment's seek: the acknowledgements
        the revocation's flush made are still in Faust's list, without the ones committed
        before them; the run they form started past a record still held, and a commit in that
        window skipped it (a failover lost a flow alert's leg)."""
        first = self.first_read_offset.get(tp)
        head = committed if committed is not None else first
        if head is None:
            return False
        if first is not None and head < first:
            head = first  # the records below the first one read are gone (retention)
        return head in self._acked_index[tp] or bool(self._gap[tp].overlaps(head))

    async def perform_seek(self) -> None:
        """Faust's seek of every assigned partition to its committed offset, noting where
        reading starts (``reading_from``). Faust resumes the flow before it seeks after a
        rebalance, and forgets the committed offsets at the revocation: the start read from
        its bookkeeping in between was the earliest offset, a partition read to its end was
        never caught up, and the network stages' records waiting on it were held for good."""
        await super().perform_seek()
        self.reading_from = {tp: self._read_offset.get(tp) or None
                             for tp in self.assignment()}

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        """Faust forgets each revoked partition's committed offset and acknowledgements
        first, then runs the app's revocation, which acknowledges what the agent flushes and
        commits. Without the committed offset, no head check ran on that commit: it moved
        past every internal record dropped while held (seen in a failover: 1,700 legs of a
        partition the worker kept). So the committed offsets, and the first offsets read,
        stay known to the head check until the revocation is over."""
        self.committed_when_revoked = {tp: self._committed_offset.get(tp) for tp in revoked}
        for tp in revoked:
            self.reading_from.pop(tp, None)
        try:
            await super().on_partitions_revoked(revoked)
        finally:
            self.committed_when_revoked = {}
            for tp in revoked:
                self.first_read_offset.pop(tp, None)

    async def _drop_stale_inputs(self, records: dict[TP, list[Any]],
                                 batch_topics: Iterable[str]) -> None:
        """A rebalance ended while this fetch ran in the consumer's thread: its input records
        may predate the rebalance's seek to the committed offsets (taken as read, the same
        records would be skipped when they come again: ``_read_offset``), or follow it. They
        are dropped, and each input partition still ours sought back to the first of them or
        the committed offset, whichever is lower, so none is lost. With no committed offset
        known (none yet, or the rebalance's seek still to come, which then seeks only to a
        commit), reading starts again from the beginning under the earliest reset policy: a
        seek to the first dropped record skipped everything before it (seen: a network
        stage's partition never committed, its first records never read in a failover).
        Other records (a table's changelog during recovery) go on as Faust has them."""
        assigned = self.assignment()
        earliest = self.app.conf.consumer_auto_offset_reset == "earliest"
        for tp in [tp for tp in records if tp.topic in batch_topics]:
            dropped = records.pop(tp)
            if dropped and tp in assigned:
                committed = self._read_offset.get(tp)  # the rebalance's seek set it, if done
                first = dropped[0].offset
                if committed is None:
                    committed = 0 if earliest else first
                await self.seek(tp, min(first, committed))

    async def _seek_back_after_flow_stop(self) -> None:
        try:
            await self.perform_seek()
        except Exception as exc:
            self.log.warning("seek after flow stop failed: %r", exc)

    async def _maybe_commit(self) -> None:
        if self._commit_every is not None and self._n_acked >= self._commit_every:
            self._n_acked = 0
            await self.commit()

    async def _take_new(self, records: dict[TP, list[Any]], active: set[TP] | None,
                        batch_topics: Iterable[str]) -> tuple[dict[TP, list[Message]],
                                                              list[Message]]:
        """Messages not read before, split into batch topics and the rest; read offsets and
        gaps updated as Faust's per-message loop does."""
        batched: dict[TP, list[Message]] = {}
        single: list[Message] = []
        for tp, tp_records in records.items():
            if active is not None and tp not in active and tp not in self._buffered_partitions:
                continue
            messages = await self._new_messages(tp, tp_records)
            self.app.monitor.track_tp_end_offset(tp, self.highwater(tp))
            if tp.topic in batch_topics:
                batched[tp] = messages
            else:
                single.extend(messages)
        return batched, single

    async def _new_messages(self, tp: TP, tp_records: list[Any]) -> list[Message]:
        to_message = self._to_message
        read = self._read_offset[tp]
        acks_enabled = self.app.topics.acks_enabled_for(tp.topic)
        messages = []
        for record in tp_records:
            offset = record.offset
            if read is not None and offset < read:
                continue  # read before (Faust drops these too)
            if read and offset - read > 1 and acks_enabled:
                await self._add_gap(tp, read + 1, offset)
            messages.append(to_message(tp, record))
            read = offset
        self._read_offset[tp] = read
        if messages:
            self.first_read_offset.setdefault(tp, messages[0].offset)
        return messages


class BatchConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        """Faust's consumer, with a short fetch wait (``FETCH_MAX_WAIT_MS``) for a minimum of
        data (``FETCH_MIN_BYTES``)."""
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # Faust hard-codes 1,500 ms
        consumer._fetch_min_bytes = FETCH_MIN_BYTES
        return consumer


class BoundedRequestProducer(faust_aiokafka.Producer):
    """Faust's producer, whose requests to the broker give up after
    ``BatchApp.producer_client_timeout_s`` while its outputs may wait
    ``producer_request_timeout`` to be delivered.

    aiokafka has one setting for both (``request_timeout_ms``). Under Faust's 1,200 s, one
    metadata request lost across a broker restart held the producer, and so the worker, for
    20 minutes; set short, an outage longer than it stopped the worker. The client's own
    request timeout is set apart: a lost request is retried on a new connection soon, and an
    output is given up (the worker stops, losing nothing) only after the longer one. (The
    consumer keeps Faust's ``broker_request_timeout``, above its rebalance timeout: a group
    join may wait at the broker that long.)"""

    def _new_producer(self, transactional_id: str | None = None) -> Any:
        producer = super()._new_producer(transactional_id)
        timeout_s = getattr(self.app, "producer_client_timeout_s", None)
        if timeout_s is not None:
            producer.client._request_timeout_ms = int(timeout_s * 1000)
        return producer


class BatchTransport(faust_aiokafka.Transport):
    Consumer = BatchConsumer
    Conductor = BatchConductor
    Producer = BoundedRequestProducer


class BatchApp(faust.App):
    """A Faust app whose consumer and conductor are the batch ones above."""

    acked_by_key: frozenset[str] = frozenset()
    """Topics whose records are acknowledged out of offset order (the network stages'
    internal topics, by order key: ``BatchConsumer._head_done``); set by ``create_app``."""
    producer_client_timeout_s: float | None = None
    """The producer's request timeout, apart from its delivery timeout (``BoundedRequestProducer``);
    set by ``create_app``."""
    before_wait_empty: Callable[[], Awaitable[None]] | None = None
    """Called when partitions are being revoked, once the flow is suspended and the queued
    batches are cleared, before Faust waits for every tracked message to be acknowledged;
    set by ``create_app`` (see ``_consumer_wait_empty``)."""

    def _new_transport(self) -> Any:
        return BatchTransport(self.conf.broker_consumer, self)

    async def _consumer_wait_empty(self, consumer: Any, logger: Any) -> None:
        """Let the agent give up what it holds before Faust's ``Consumer.wait_empty``.

        Why: on a revocation Faust suspends the flow, then waits (``stream_wait_empty``, no
        time limit) until every message tracked by ``track_message`` is acknowledged, and only
        then sends ``on_partitions_revoked``. A per-message stream acknowledges what it was
        given; our agent holds events for ordering (``streams.ordering``) that may wait for the
        other input topic's partition, known to be behind, whose records cannot come while
        the flow is suspended. So the revocation never ended: the surviving worker of a
        failover hung in ``wait_empty`` ("Waiting for tasks ...") with its whole assignment
        held, and nothing more was committed (issue 12 item 4). The hook flushes what was
        applied and drops what is held (its new owner reads it again from the committed
        offset), before the wait rather than after it."""
        if self.before_wait_empty is not None:
            await self.before_wait_empty()
        await super()._consumer_wait_empty(consumer, logger)

# The one door: Faust's, mode's and aiokafka's private names used by the project -------------

TESTED_VERSIONS = {"faust-streaming": "0.15.3", "mode-streaming": "0.7.1", "aiokafka": "0.14.0"}
"""The versions this module was written and tested against; ``requirements.lock`` pins the
same (``tests/agents/test_faust_internals.py`` holds them equal)."""


@dataclass(frozen=True, slots=True)
class Internal:
    """A private name of a library class (or module) that the project relies on."""
    owner: str
    """``module:Class``, or ``module`` for a module-level name."""
    name: str
    use: str
    instance: bool = False
    """Set on each instance (by ``__init__``), not on the class: looked for in its source."""
    params: tuple[str, ...] | None = None
    """For a method called or overridden: its parameters after ``self``, as used here."""

    @property
    def label(self) -> str:
        owner = self.owner.rpartition(":")[2] or self.owner
        call = f"({', '.join(self.params)})" if self.params is not None else ""
        return f"{owner}.{self.name}{call}"


_CONSUMER = "faust.transport.drivers.aiokafka:Consumer"
_CONSUMER_THREAD = "faust.transport.drivers.aiokafka:AIOKafkaConsumerThread"

INTERNALS: tuple[Internal, ...] = (
    Internal(_CONSUMER, "_drain_messages", "overridden: the fetch loop (BatchConsumer)",
             params=("fetcher",)),
    Internal(_CONSUMER, "_wait_next_records", "called by the fetch loop", params=("timeout",)),
    Internal(_CONSUMER, "_getmany", "overridden and called: drain own changelog records",
             params=("active_partitions", "timeout")),
    Internal(_CONSUMER, "_is_changelog_tp", "own changelog partitions", params=("tp",)),
    Internal(_CONSUMER, "_to_message", "record -> Message", params=("tp", "record")),
    Internal(_CONSUMER, "_add_gap", "gap bookkeeping", params=("tp", "offset_from", "offset_to")),
    Internal(_CONSUMER, "_new_consumer_thread", "overridden: BatchConsumerThread", params=()),
    Internal("faust.transport.consumer:ThreadDelegateConsumer", "_thread",
             "last_poll_ms(): aiokafka's consumer", instance=True),
    Internal(_CONSUMER_THREAD, "_ensure_consumer", "last_poll_ms(): aiokafka's consumer",
             params=()),
    Internal(_CONSUMER, "_read_offset", "read-offset bookkeeping", instance=True),
    Internal(_CONSUMER, "_committed_offset",
             "the head check of a commit (_new_offset), committed_offset() for the lag metric",
             instance=True),
    Internal(_CONSUMER, "_buffered_partitions", "partitions paused by a full buffer",
             instance=True),
    Internal(_CONSUMER, "_commit_every", "commit after N acks (broker_commit_every)",
             instance=True),
    Internal(_CONSUMER, "_n_acked", "commit after N acks", instance=True),
    Internal(_CONSUMER, "_acked", "acknowledged offsets, made unique before a commit",
             instance=True),
    Internal(_CONSUMER, "_acked_index", "their index, kept equal", instance=True),
    Internal(_CONSUMER, "_gap", "offsets never read, taken as acknowledged", instance=True),
    Internal(_CONSUMER, "_new_offset", "overridden: duplicates and stale offsets out",
             params=("tp",)),
    Internal("mode.services:Service", "_stopped", "the fetch loop's stop condition",
             instance=True),
    Internal("faust.transport.conductor:Conductor", "_tp_index", "partition -> channels",
             instance=True),
    Internal(_CONSUMER_THREAD, "_create_worker_consumer", "overridden: fetch wait and size",
             params=("transport",)),
    Internal("aiokafka:AIOKafkaConsumer", "_fetch_max_wait_ms", "FETCH_MAX_WAIT_MS",
             instance=True),
    Internal("aiokafka:AIOKafkaConsumer", "_fetch_min_bytes", "FETCH_MIN_BYTES", instance=True),
    Internal("faust:App", "_new_transport", "overridden: BatchTransport", params=()),
    Internal("faust:App", "_consumer_wait_empty", "overridden: give up held events first",
             params=("consumer", "logger")),
    Internal("faust.transport.drivers.aiokafka:Producer", "_new_producer",
             "overridden: a request timeout apart from the delivery timeout",
             params=("transactional_id",)),
    Internal("aiokafka.client:AIOKafkaClient", "_request_timeout_ms",
             "the producer's request timeout (BoundedRequestProducer)", instance=True),
    Internal("faust.transport.drivers.aiokafka:Producer", "_ensure_producer",
             "raw_producer(): bulk changelog batches", params=()),
    Internal("faust.streams", "_current_event", "current_event_of(): the store's partition"),
    Internal("faust.stores.rocksdb:Store", "_dbs", "partition_databases(): customer count",
             instance=True),
    Internal("mode.worker:Worker", "_on_sigterm", "graceful_stop(): bounded stop",
             params=()),
    Internal("mode.worker:Worker", "_on_sigint", "graceful_stop(): bounded stop", params=()),
)

COPIED_FROM_FAUST = {
    "faust.transport.consumer:Consumer._drain_messages":
        "44a2500309e83c630493f6828af50166ec8d96a0b3e4fb2bab735f704ae93417",
    "faust.transport.conductor:ConductorCompiler.build":
        "837cf521368c1ee4b22c235a2b137f665eca03d0e3e01b5ddedb65232ee73bf2",
}
"""SHA-256 of the source of the Faust code that ``BatchConsumer._drain_messages`` (the drain
loop) and ``BatchConductor.on_batch`` (the per-message handler) redo in bulk, as copied. A test
compares them with the installed Faust, so an upgrade that changes either is flagged."""


class FaustInternalsError(RuntimeError):
    """The installed Faust, mode or aiokafka lacks a private name the worker relies on."""


def _resolve(path: str) -> Any:
    module, _, qualname = path.partition(":")
    obj: Any = importlib.import_module(module)
    for part in filter(None, qualname.split(".")):
        obj = getattr(obj, part)
    return obj


def _set_by_source(cls: type, name: str) -> bool:
    """``self.<name>`` is assigned in the source file of ``cls`` or of a class it derives from
    (a file is read once: ``inspect.getsource`` of a class parses its whole module each time)."""
    assigned = re.compile(rf"\bself\.{re.escape(name)}\s*(?::[^=\n]*)?=[^=]")
    return any(assigned.search(_source_of(klass)) for klass in cls.__mro__)


@functools.cache
def _source_file(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as file:
            return file.read()
    except OSError:
        return ""


def _source_of(klass: type) -> str:
    try:
        path = inspect.getsourcefile(klass)
    except TypeError:  # a built-in class
        return ""
    return _source_file(path) if path else ""


def _problem(internal: Internal) -> str | None:
    try:
        owner = _resolve(internal.owner)
    except (ImportError, AttributeError):
        return f"{internal.owner.replace(':', '.')} (for {internal.label})"
    if internal.instance:
        return None if _set_by_source(owner, internal.name) else internal.label
    if not hasattr(owner, internal.name):
        return internal.label
    if internal.params is not None:
        try:
            found = tuple(inspect.signature(getattr(owner, internal.name)).parameters)[1:]
        except (TypeError, ValueError):
            return internal.label
        if found != internal.params:
            return f"{internal.label} (it has ({', '.join(found)}))"
    return None


_OUR_SUBCLASSES: tuple[tuple[type, str], ...] = ()  # filled below: (ours, Faust's it extends)
_INTENDED_OVERRIDES = ({"Consumer", "Conductor", "Producer", "on_partitions_revoked",
                        "perform_seek"}
                       | {i.name for i in INTERNALS})
_SET_ON_EVERY_SUBCLASS = {"_abc_impl", "logger"}  # by ABCMeta and by mode's Service


def _collisions() -> list[str]:
    """Names our subclasses add that the installed Faust class now defines itself."""
    found = []
    for ours, base_path in _OUR_SUBCLASSES:
        base = _resolve(base_path)
        for name in vars(ours):
            if (not name.startswith("__") and name not in _INTENDED_OVERRIDES
                    and name not in _SET_ON_EVERY_SUBCLASS and hasattr(base, name)):
                found.append(f"{ours.__name__}.{name} now overrides {base.__name__}.{name}")
    return found


def installed_versions() -> dict[str, str]:
    versions = {}
    for dist in TESTED_VERSIONS:
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = "(not installed)"
    return versions


def problems() -> list[str]:
    """What the installed libraries lack, or now define, that this module relies on."""
    missing = [p for p in map(_problem, INTERNALS) if p is not None]
    return missing + _collisions()


def check() -> None:
    """Raise ``FaustInternalsError`` with a one-line message if ``problems()`` finds any."""
    found = problems()
    if not found:
        return
    tested = ", ".join(f"{dist} {version}" for dist, version in TESTED_VERSIONS.items())
    installed = ", ".join(f"{dist} {version}" for dist, version in installed_versions().items())
    try:
        ours = importlib.metadata.version("amlstream")
    except importlib.metadata.PackageNotFoundError:
        ours = "(source tree)"
    raise FaustInternalsError(
        f"amlstream {ours} was tested with {tested}; installed {installed} lacks "
        f"{'; '.join(found)}: install the pinned versions (make install, or pip install "
        f"--require-hashes -r requirements.lock)")


def source_sha256(path: str) -> str:
    """SHA-256 of the source of ``module:Qual.name`` (see ``COPIED_FROM_FAUST``)."""
    return hashlib.sha256(inspect.getsource(_resolve(path)).encode()).hexdigest()


def committed_offset(app: faust.App, tp: TP) -> int | None:
    """The group's committed offset of ``tp`` as the consumer last knew it (no request to the
    broker); Faust has no public getter."""
    offset: int | None = app.consumer._committed_offset.get(tp)  # type: ignore[attr-defined]
    return offset


def reading_from(app: faust.App) -> dict[TP, int | None]:
    """Where reading of each assigned partition started: its committed offset, or None for
    the reset policy's offset; a partition is missing until the consumer has sought it after
    its assignment (``BatchConsumer.perform_seek``)."""
    return cast(BatchConsumer, app.consumer).reading_from


def raw_producer(app: faust.App) -> Any:
    """The aiokafka producer under Faust's (started with it): for ``create_batch``/
    ``send_batch``, which Faust's producer does not offer."""
    return app.producer._ensure_producer()  # type: ignore[attr-defined]


def last_poll_ms(app: faust.App, tp: Any) -> float | None:
    """When the consumer's last successful fetch response for ``tp`` came (epoch ms: the time
    its highwater was read), from aiokafka's consumer under Faust's consumer thread."""
    consumer = app.consumer._thread._ensure_consumer()  # type: ignore[attr-defined]
    polled = consumer.last_poll_timestamp(tp)
    return None if polled is None else float(polled)


def track_output_topics(app: faust.App, topics: Iterable[str]) -> None:
    """Have the (started) producer's metadata always cover ``topics``: every topic the worker
    writes.

    Why: aiokafka's client refreshes the metadata of the topics it tracks, all of them while it
    tracks none; a topic is tracked once a send finds it unknown. The worker's first sends
    found most topics known (from the first, whole refresh) and tracked only those created
    later (the network stages' changelogs). After a broker restart the refresh covered those
    alone: the other topics' partitions had no known leader any more, their queued records
    waited for one that never came, and the worker hung silent (broker-restart fault case)."""
    track_topics(raw_producer(app).client, topics)


def track_topics(client: Any, topics: Iterable[str]) -> None:
    """``client`` (aiokafka's) refreshes the metadata of ``topics`` from now on."""
    for topic in topics:
        client.add_topic(topic)


class _EventOf:
    """Stands in for the Faust event of ``message``: the store reads ``.message.partition``."""
    __slots__ = ("__weakref__", "message")

    def __init__(self, message: Any) -> None:
        self.message = message


@contextmanager
def current_event_of(message: Any) -> Iterator[None]:
    """Make ``message`` the current event for a table's store within the block: Faust picks a
    table's partition database from the current event, and has no public setter for it."""
    event = _EventOf(message)  # held here for the block: Faust keeps only a weak reference
    token = _current_event.set(weakref.ref(event))  # type: ignore[arg-type]
    try:
        yield
    finally:
        _current_event.reset(token)


def partition_databases(store: Any) -> dict[int, Any] | None:
    """The RocksDB database of each partition of a Faust store (None for other stores)."""
    databases: dict[int, Any] | None = getattr(store, "_dbs", None)
    return databases


_OUR_SUBCLASSES = (
    (BatchConductor, "faust.transport.conductor:Conductor"),
    (BatchConsumer, _CONSUMER),
    (BatchConsumerThread, _CONSUMER_THREAD),
    (BatchTransport, "faust.transport.drivers.aiokafka:Transport"),
    (BoundedRequestProducer, "faust.transport.drivers.aiokafka:Producer"),
    (BatchApp, "faust:App"),
)


def graceful_stop(worker: Any, signal_name: str) -> Any:
    """The handler mode's worker installs for SIGTERM or SIGINT (a graceful stop), so that
    ``agents.cli`` can install its own that arms the shutdown timer first."""
    return worker._on_sigterm if signal_name == "SIGTERM" else worker._on_sigint
