"""The composition root: ``create_app(settings)`` builds the Faust app, topics, table, agent."""

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any, cast

import faust
from faust.types import TP

from agents import gc_policy, kafka_clients, metrics, rules_feed, shutdown
from agents.checkpoint import Checkpointer
from agents.fast_path import (
    BatchApp,
    BatchConductor,
    BatchConsumer,
    InputBatch,
    committed_offset,
    last_poll_ms,
    raw_producer,
    reading_from,
    track_output_topics,
)
from agents.intel_feed import IntelFeed
from agents.network_stages import ListingRef, NetworkStages
from agents.pipeline import BatchProcessor, Bounds
from agents.settings import Settings
from agents.state_table import StateTable
from agents.topics import COUNTERPARTY_TABLE, FLOW_TABLE, STATE_TABLE, internal_topics
from agents.web_view import Health
from agents.web_view import install as install_web_view
from streams.network.counterparty import CounterpartyState
from streams.network.emit import CP_LEGS, FLOWS, Emitter
from streams.network.flow import FlowState
from streams.network.internal_order import InternalAligner
from streams.network.stage import COUNTERPARTY, FLOW, StageReplay
from streams.ordering import InputAligner, TopicPartition
from streams.replay import Replay
from streams.ruleset import CompiledRules, load_rules

log = logging.getLogger(__name__)

INPUT_BATCHES_QUEUED = 4
PRODUCER_LINGER_MS = 5
CONSUMER_METADATA_MAX_AGE_MS = 30_000
PRODUCER_BATCH_BYTES = 512 * 1024
STORE_OPTIONS = {
    "write_buffer_size": 8 * 1024 * 1024,
    "max_write_buffer_number": 2,
    "block_cache_size": 16 * 1024 * 1024,
}
"""RocksDB memory per state partition, at most ~32 MB. Faust's defaults (64 MB write buffers,
up to 3 of them, and a 2 GB block cache, per partition) let a worker with 8 partitions grow
past 900 MB under a stream of state writes, while the whole state of 100,000 customers is
~55 MB (``make bench``)."""
RELEASE_INTERVAL_S = 0.05
"""How often events held for ordering are re-examined when no new batch arrives."""
CONSUMER_LAG_INTERVAL_S = 5.0
"""How often amlstream_consumer_lag_records is brought up to date."""


@dataclass
class AmlApp:
    faust: faust.App
    settings: Settings
    rules: CompiledRules
    inputs: Any
    state: StateTable
    processor: BatchProcessor
    monitor: Any
    """The Faust agent that consumes the onboarding and transactions topics."""
    intel: IntelFeed
    """Address intelligence: its index is every rule set's ``intel``; set ``on_listing``."""


def _raw_topic(app: faust.App, *names: str, partitions: int | None = None) -> Any:
    return app.topic(*names, key_type=bytes, value_type=bytes, key_serializer="raw",
                     value_serializer="raw", partitions=partitions)


def _sender(app: faust.App, topic: str) -> Any:
    """Produce straight through Faust's producer: ``Topic.send`` adds a per-record future,
    callbacks and sensors that cost more than the record (partitioned by key either way)."""
    async def send(key: bytes | None, value: bytes) -> Any:
        return await app.producer.send(topic, key, value, None, None, None)
    return send


def _bulk_sender(app: faust.App, topic: str) -> Any:
    """Produce many records to one partition as whole producer batches (aiokafka's
    ``create_batch``/``send_batch``; Faust's producer has no bulk send): measured ~2 µs of CPU
    per record against ~13 µs through ``send``. Faust's commit still flushes them (it flushes
    the producer); its recovery reads them like any changelog record."""
    async def send_records(partition: int, records: list[tuple[bytes, bytes]]) -> list[Any]:
        producer = raw_producer(app)
        sent = []
        batch = producer.create_batch()
        for key, value in records:
            if batch.append(key=key, value=value, timestamp=None) is None:  # no room left
                if batch.record_count():
                    sent.append(await _send_batch(producer, batch, topic, partition))
                    batch = producer.create_batch()
                if batch.append(key=key, value=value, timestamp=None) is None:
                    raise ValueError(f"a state of {len(value)} bytes exceeds a producer batch")
        if batch.record_count():
            sent.append(await _send_batch(producer, batch, topic, partition))
        return sent
    return send_records


async def _send_batch(producer: Any, batch: Any, topic: str, partition: int) -> Any:
    """Queue ``batch``; the returned future resolves to the offset of its last record."""
    last = batch.record_count() - 1
    delivered = await producer.send_batch(batch, topic, partition=partition)

    async def last_offset() -> int:
        metadata = await delivered
        return int(metadata.offset) + last
    return asyncio.ensure_future(last_offset())


def _bounds_of(app: faust.App) -> Bounds:
    """Where reading each topic partition started (the group's committed offset, else the
    reset policy's: the earliest or the end) and where it ends now (a request to the
    broker). A partition the consumer has not sought since its assignment is left out (asked
    again with the next batch)."""
    async def bounds(tps: list[TopicPartition]) -> dict[TopicPartition, tuple[int, int]]:
        sought = reading_from(app)
        partitions = [tp for tp in (TP(topic, partition) for topic, partition in tps)
                      if tp in sought]
        if not partitions:
            return {}
        ends = await app.consumer.highwaters(*partitions)
        starts = {tp: sought[tp] for tp in partitions if sought[tp] is not None}
        uncommitted = [tp for tp in partitions if tp not in starts]
        if uncommitted and app.conf.consumer_auto_offset_reset == "latest":
            starts.update({tp: ends[tp] for tp in uncommitted})
        elif uncommitted:
            starts.update(await app.consumer.earliest_offsets(*uncommitted))
        return {(tp.topic, tp.partition): (starts[tp], ends[tp]) for tp in partitions}
    return bounds


def _fetch_pauser(app: faust.App, hold: bool) -> Any:
    def apply(tps: set[TopicPartition]) -> None:
        consumer = cast(BatchConsumer, app.consumer)
        partitions = {TP(topic, partition) for topic, partition in tps}
        if hold:
            consumer.hold_back(partitions)
        else:
            consumer.release_hold(partitions)
    return apply


def _highwater_of(app: faust.App) -> Callable[[str, int], int | None]:
    def highwater(topic: str, partition: int) -> int | None:
        try:  # as of the consumer's last fetch response; no request to the broker
            offset: int | None = app.consumer.highwater(TP(topic, partition))
        except Exception:  # consumer not started, partition not assigned: unknown
            return None
        return offset
    return highwater


def consumer_lag(app: faust.App, topics: Iterable[str]) -> dict[tuple[str, int], int]:
    """Per input partition this worker owns: its end offset at the last fetch less the
    group's committed offset (0 before any commit); partitions with no fetch yet left out."""
    try:
        assignment = app.consumer.assignment()
    except Exception:  # consumer not started: nothing owned
        return {}
    lag = {}
    for tp in assignment:
        if tp.topic not in topics:
            continue
        end = _highwater_of(app)(tp.topic, tp.partition)
        if end is not None:
            lag[(tp.topic, tp.partition)] = max(0, end - (committed_offset(app, tp) or 0))
    return lag


def _polled_ms_of(app: faust.App) -> Callable[[str, int], float | None]:
    def polled_ms(topic: str, partition: int) -> float | None:
        try:  # when the consumer's last fetch response for it came (epoch ms)
            return last_poll_ms(app, TP(topic, partition))
        except Exception:  # consumer not started, partition not assigned: unknown
            return None
    return polled_ms


def _current(app: faust.App, batch: InputBatch) -> bool:
    return app.flow_control.is_active() and batch.generation_id == app.consumer_generation_id


def _network_stages(app: faust.App, settings: Settings, rules: CompiledRules,
                    customers: StateTable, inputs: InputAligner) -> NetworkStages:
    """S2 and S3 with their tables (``agents.network_stages``)."""
    def table(name: str, decode: Callable[[bytes], Any]) -> StateTable:
        faust_table = app.Table(name, key_type=bytes, value_type=bytes,
                                partitions=settings.partitions, options=dict(STORE_OPTIONS))
        return StateTable(faust_table,
                          _bulk_sender(app, faust_table.changelog_topic.get_topic_name()),
                          max_cached=settings.state_cache_customers, decode=decode)

    def stage(kind: str, states: StateTable) -> StageReplay:
        aligner = InternalAligner(kind, settings.partitions,
                                  hop_delay_s=settings.network_hop_delay_s,
                                  max_held=settings.network_max_held_per_partition)
        return StageReplay(kind, rules, states, aligner, settings.network_hop_delay_s)

    flow_table = table(FLOW_TABLE, FlowState.from_bytes)

    bulk = {topic: _bulk_sender(app, topic)
            for topic in (settings.cp_legs_topic, settings.flows_topic)}

    async def send_records(topic: str, partition: int,
                           records: list[tuple[bytes | None, bytes]]) -> Any:
        return await bulk[topic](partition, records)

    def assigned() -> set[int]:
        if not app.flow_control.is_active():
            return set()  # rebalancing: what is assigned is about to change
        try:
            assignment = app.consumer.assignment()
        except Exception:  # consumer not started (yet): nothing assigned
            return set()
        return {tp.partition for tp in assignment if tp.topic == settings.transactions_topic}

    return NetworkStages(
        {CP_LEGS: settings.cp_legs_topic, FLOWS: settings.flows_topic},
        Emitter(settings.partitions, settings.network_lateness_s), inputs,
        stage(COUNTERPARTY, table(COUNTERPARTY_TABLE, CounterpartyState.from_bytes)),
        stage(FLOW, flow_table), customers, flow_table, send_records, assigned,
        settings.network_marker_interval_s, settings.network_idle_after_s)


def create_app(settings: Settings, rules: CompiledRules | None = None,
               intel: IntelFeed | None = None) -> AmlApp:
    """``intel``: the address intelligence, loaded (``IntelFeed.load``) or not (its task
    loads it first, while events are processed)."""
    intel = intel if intel is not None else IntelFeed(settings)
    rules = replace(rules if rules is not None else load_rules(settings.rules_path),
                    intel=intel.index)
    app = BatchApp(
        settings.app_id,
        broker=settings.broker,
        broker_credentials=kafka_clients.faust_credentials(settings),
        store=settings.store,
        datadir=str(settings.data_dir),
        topic_partitions=settings.partitions,
        broker_commit_interval=settings.commit_interval_s,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.session_timeout_s / 3),
        # A topic missing from the consumer's metadata is not assigned: look again soon.
        consumer_metadata_max_age_ms=CONSUMER_METADATA_MAX_AGE_MS,
        # The producer's outputs may wait longer than its requests (BoundedRequestProducer).
        producer_request_timeout=settings.delivery_timeout_s,
        consumer_auto_offset_reset=settings.input_start,
        producer_acks=-1,
        producer_linger_ms=PRODUCER_LINGER_MS,  # records are awaited only at the flush
        producer_max_batch_size=PRODUCER_BATCH_BYTES,
        broker_max_poll_records=settings.batch_max_events,
        # The input topics' queue holds whole fetches (``agents.fast_path``): a few suffice.
        stream_buffer_maxsize=INPUT_BATCHES_QUEUED,
        web_enabled=True,
        web_port=settings.web_port,
        web_bind=settings.web_host,
        canonical_url=settings.canonical_web_url,
        # Faust's own pages (tables' raw values, graphs, stats) are not served.
        web_router_enabled=False,
        web_tables_enabled=False,
        web_graph_enabled=False,
        web_stats_enabled=False,
        web_metrics_enabled=False,
        table_cleanup_interval=3600.0,
    )
    cast(BatchApp, app).producer_client_timeout_s = settings.producer_request_timeout_s
    internal = internal_topics(settings)
    input_topics = settings.input_topics
    inputs = _raw_topic(app, *input_topics, *internal)
    cast(BatchConductor, app.topics).batch_topics = frozenset((*input_topics, *internal))
    cast(BatchApp, app).acked_by_key = frozenset(internal)
    # bytes in and out (serializer "raw"): the key is the message key itself, so the table and
    # the input topics partition a customer identically.
    table = app.Table(STATE_TABLE, key_type=bytes, value_type=bytes,
                      partitions=settings.partitions, options=dict(STORE_OPTIONS))
    state = StateTable(table, _bulk_sender(app, table.changelog_topic.get_topic_name()),
                       max_cached=settings.state_cache_customers)
    aligner = InputAligner(input_topics,
                           highwater=_highwater_of(app),
                           max_held=settings.ordering_max_held_per_partition,
                           polled_ms=_polled_ms_of(app))
    network = _network_stages(app, settings, rules, state, aligner) if internal else None
    tables = [state] if network is None else [state, network.counterparty.states,
                                              network.flow.states]
    checkpoint = Checkpointer(cast(list[StateTable], tables),
                              ack=lambda message: message.ack(app.consumer),
                              interval_s=settings.state_flush_interval_s, max_dirty=20_000,
                              before_cut=network.before_cut if network else lambda: None)
    emitter = None if network is None else network.emitter
    processor = BatchProcessor(Replay(rules, state, aligner, emitter),
                               send_alert=_sender(app, settings.alerts_topic),
                               send_dead_letter=_sender(app, settings.dead_letter_topic),
                               send_risk_change=_sender(app, settings.risk_topic),
                               checkpoint=checkpoint, bounds=_bounds_of(app),
                               pause=_fetch_pauser(app, hold=True),
                               resume=_fetch_pauser(app, hold=False),
                               max_original_bytes=settings.dead_letter_max_original_bytes,
                               network=network)
    metrics.RULE_SET.labels(rules.version).set(1)
    metrics.present_from_start(input_topics,
                               internal, rules)

    async def process_or_stop(messages: Any) -> None:
        try:
            await processor.process(messages)
        except Exception as exc:
            # A failure here (broker gone, a send refused) leaves events unacknowledged;
            # restarting only this agent would stall commits behind them. Stop the worker:
            # a restarted worker re-reads from the committed offsets and loses nothing.
            log.critical("batch failed, stopping the worker: %r", exc)
            shutdown.arm(settings.shutdown_timeout_s, f"fatal {type(exc).__name__}")
            await app.crash(exc)
            raise

    # concurrency stays 1: with more, Faust can commit past an unprocessed message.
    @app.agent(inputs, concurrency=1)
    async def monitor(stream: Any) -> None:
        async for batch in stream:  # InputBatch values, one per fetch (agents.fast_path)
            if not isinstance(batch, InputBatch) or not _current(app, batch):
                continue  # fetched before a rebalance: read again from the committed offset
            await process_or_stop(batch.messages)

    health = Health()
    def owns(partition: int) -> bool:
        if not app.flow_control.is_active():
            return False  # rebalancing: what is assigned is about to change
        try:
            return TP(settings.transactions_topic, partition) in app.consumer.assignment()
        except Exception:  # consumer not started: nothing owned
            return False

    install_web_view(app, state, lambda: processor.rules, settings.partitions, health, owns)

    @app.timer(RELEASE_INTERVAL_S)
    async def release_and_flush() -> None:
        """Events held for ordering, and states to flush, when no new batch comes."""
        health.tick()
        await process_or_stop(())

    inputs_names = {*input_topics, *internal}

    async def before_wait_empty() -> None:
        """Flush what was applied and drop every held event before Faust waits for all
        tracked messages to be acknowledged (``BatchApp._consumer_wait_empty``). Faust's
        rebalancing is eager: every assigned partition is revoked, and sought back to its
        committed offset once assigned again, so what is dropped here is read again."""
        await processor.on_revoked(processor.held_partitions())
        # Dropped events are no longer awaited: neither those held for ordering nor those of
        # a batch the agent has not taken (stale now). Faust's set of tracked messages holds
        # them weakly, but the agent may still refer to its last batch.
        unacked = app.consumer.unacked
        for message in [m for m in unacked if m.topic in inputs_names and not m.acked]:
            unacked.discard(message)

    cast(BatchApp, app).before_wait_empty = before_wait_empty

    @app.on_partitions_revoked.connect
    async def on_revoked(app: faust.App, revoked: Any, **kwargs: Any) -> None:
        await processor.on_revoked({tp.partition for tp in revoked if tp.topic in inputs_names})

    def use_rules(new: CompiledRules) -> None:
        metrics.RULE_SET.clear()
        metrics.RULE_SET.labels(new.version).set(1)
        processor.rules = replace(new, intel=intel.index)  # the listings read stay
        metrics.present_from_start((), (), new)  # its rules' alert series

    @app.task
    async def track_outputs() -> None:
        topics = [settings.alerts_topic, settings.dead_letter_topic, settings.risk_topic,
                  *internal, *(t.changelog_topic.get_topic_name() for t in app.tables.values())]
        track_output_topics(app, topics)

    @app.task
    async def follow_rules() -> None:
        await rules_feed.follow(settings, lambda: processor.rules, use_rules)

    if network is not None:
        def screen(listing: Any) -> None:
            offset = intel.position - 1
            network.listed(listing, ListingRef(settings.address_intel_topic, 0, offset,
                                               listing.key.encode(), b""))
        intel.on_listing = screen

    @app.task
    async def follow_intel() -> None:
        await intel.follow()

    @app.timer(CONSUMER_LAG_INTERVAL_S)
    async def report_consumer_lag() -> None:
        metrics.report_consumer_lag(
            consumer_lag(app, input_topics))

    @app.timer(gc_policy.FULL_COLLECTION_INTERVAL_S)
    async def collect_garbage() -> None:
        freed, seconds = gc_policy.collect_all()
        metrics.GC_CYCLE_OBJECTS_FREED.inc(freed)
        log.info("full garbage collection: %d objects freed in %.3f s", freed, seconds)

    return AmlApp(faust=app, settings=settings, rules=rules, inputs=inputs, state=state,
                  processor=processor, monitor=monitor, intel=intel)
