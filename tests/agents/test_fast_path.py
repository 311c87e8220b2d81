"""The batch extensions of Faust's consumer and conductor (``agents.fast_path``), without a broker.

On a real broker they are exercised by every integration test (the worker uses them), including
the kill-and-recover test in ``tests/integration/test_pipeline.py``.
"""

import asyncio
from types import SimpleNamespace

from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from agents.app import _bounds_of, create_app
from agents.fast_path import (
    FETCH_MAX_WAIT_MS,
    FETCH_MIN_BYTES,
    BatchConductor,
    BatchConsumer,
    BatchConsumerThread,
    InputBatch,
    reading_from,
)
from agents.settings import Settings


def _subscribed(tmp_path):
    """An app whose conductor knows the input topics as subscribed, as once the agent runs."""
    aml = create_app(Settings(store="memory://", data_dir=tmp_path))
    aml.faust.topics._acking_topics.update({"onboarding", "transactions"})
    return aml


def _records(topic: str, partition: int, offsets: list[int]) -> list[SimpleNamespace]:
    return [SimpleNamespace(topic=topic, partition=partition, offset=offset, timestamp=0,
                            timestamp_type=0, headers=[], key=b"k", value=b"{}", checksum=None,
                            serialized_key_size=1, serialized_value_size=2)
            for offset in offsets]


class _Channel:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[object] = asyncio.Queue()


async def test_the_app_runs_on_the_batch_consumer_and_conductor(tmp_path):
    aml = create_app(Settings(store="memory://", data_dir=tmp_path))
    assert isinstance(aml.faust.topics, BatchConductor)
    assert isinstance(aml.faust.consumer, BatchConsumer)
    assert aml.faust.topics.batch_topics == {
        "onboarding", "transactions", "alert-decisions", "amlstream-cp-legs-repartition",
        "amlstream-flows-repartition"}


async def test_a_fetch_reaches_each_channel_as_one_batch_of_tracked_messages(tmp_path):
    aml = _subscribed(tmp_path)
    app = aml.faust
    consumer = app.consumer
    tps = TP("transactions", 0), TP("onboarding", 0)
    channel = _Channel()
    for tp in tps:
        app.topics._tp_index[tp] = {channel}
    fetched = {tp: [consumer._to_message(tp, r) for r in _records(tp.topic, 0, [0, 1, 2])]
               for tp in tps}
    app.flow_control.resume()

    await app.topics.on_batch(fetched, app.consumer_generation_id)

    assert channel.queue.qsize() == 1
    batch = channel.queue.get_nowait()
    assert isinstance(batch, InputBatch)
    assert batch.generation_id == app.consumer_generation_id
    assert [(m.topic, m.offset) for m in batch.messages] == [
        (tp.topic, offset) for tp in tps for offset in (0, 1, 2)]
    # One reference each, released by the processor's ack after the flush; until then the
    # consumer counts them as unacknowledged (nothing to commit).
    assert all(m.refcount == 1 and m.tracked for m in batch.messages)
    assert set(batch.messages) <= set(consumer.unacked)
    for message in batch.messages:
        message.ack(consumer)
    assert consumer._acked[tps[0]] == [0, 1, 2]


async def test_a_fetch_of_a_generation_that_ended_is_dropped_untracked(tmp_path):
    """Fetched before a rebalance, queued after it: stamped with the new generation it would
    be applied twice (and before records it follows); it is dropped instead."""
    aml = _subscribed(tmp_path)
    app = aml.faust
    consumer = app.consumer
    tp = TP("transactions", 0)
    channel = _Channel()
    app.topics._tp_index[tp] = {channel}
    fetched = {tp: [consumer._to_message(tp, r) for r in _records(tp.topic, 0, [0, 1])]}
    app.flow_control.resume()
    fetched_in = app.consumer_generation_id
    app.consumer_generation_id = (fetched_in or 0) + 1  # a rebalance while it waited

    await app.topics.on_batch(fetched, fetched_in)

    assert channel.queue.qsize() == 0
    assert not set(fetched[tp]) & set(consumer.unacked)


async def test_inputs_fetched_across_a_rebalance_are_dropped_and_sought_back(tmp_path,
                                                                            monkeypatch):
    """The fetch ran while a rebalance ended: its input records go, each input partition
    still ours is sought back to the lower of their first offset and the committed one, and
    a changelog's records (recovery) stay for Faust's path."""
    aml = _subscribed(tmp_path)
    consumer = aml.faust.consumer
    ours, gone = TP("transactions", 1), TP("onboarding", 2)
    changelog = TP(aml.state.table.changelog_topic.get_topic_name(), 1)
    sought: list[tuple[TP, int]] = []

    async def seek(tp, offset):
        sought.append((tp, offset))
    monkeypatch.setattr(consumer, "seek", seek)
    monkeypatch.setattr(type(consumer), "assignment", lambda self: {ours, changelog})
    consumer._read_offset[ours] = 5  # the committed offset, set by the rebalance's seek
    records = {ours: _records(ours.topic, 1, [9, 10]), gone: _records(gone.topic, 2, [3]),
               changelog: _records(changelog.topic, 1, [0, 1])}

    await consumer._drop_stale_inputs(records, {"transactions", "onboarding"})

    assert set(records) == {changelog}
    assert sought == [(ours, 5)]

    # No committed offset known: from the start (the earliest policy), not from offset 9.
    del consumer._read_offset[ours]
    records = {ours: _records(ours.topic, 1, [9, 10])}
    await consumer._drop_stale_inputs(records, {"transactions", "onboarding"})
    assert sought[1:] == [(ours, 0)]


async def test_an_offset_acknowledged_twice_does_not_stall_the_commit(tmp_path):
    """Duplicates (and offsets below the committed one) in Faust's acknowledged list made
    each commit advance by one; the whole run of acknowledged offsets is committed."""
    aml = _subscribed(tmp_path)
    consumer = aml.faust.consumer
    tp = TP("transactions", 0)
    consumer._committed_offset[tp] = 71
    consumer._acked[tp] = [70, 71, 71, 72, 72, 73, 74, 74, 75]
    consumer._acked_index[tp] = {71, 72, 73}

    assert consumer._new_offset(tp) == 76
    assert consumer._acked[tp] == []


async def test_no_commit_moves_past_a_record_not_acknowledged(tmp_path):
    """The network stages acknowledge their internal topics by order key, not offset: Faust
    committed past held records when nothing was committed yet, or when only the record at
    the committed offset was missing; a failover then lost them."""
    consumer = _subscribed(tmp_path).faust.consumer
    consumer.app.acked_by_key = frozenset({"flows"})
    fresh, tp = TP("flows", 0), TP("flows", 1)
    await consumer._new_messages(fresh, _records(fresh.topic, 0, [0, 1, 2, 3, 4, 5]))
    consumer._acked[fresh], consumer._acked_index[fresh] = [3, 4, 5], {3, 4, 5}
    assert consumer._new_offset(fresh) is None  # 0 to 2 still held
    consumer._acked[fresh] = [0, 1, 2, 3, 4, 5]
    consumer._acked_index[fresh] = set(consumer._acked[fresh])
    assert consumer._new_offset(fresh) == 6

    consumer._committed_offset[tp] = 10
    consumer._acked[tp], consumer._acked_index[tp] = [11, 12], {11, 12}
    assert consumer._new_offset(tp) is None  # offset 10 itself is held
    await consumer._add_gap(tp, 9, 10)  # ... unless it was never there (Faust: from 11)
    consumer._gap[tp].addi(10, 11)
    assert consumer._new_offset(tp) == 13

    await consumer.on_partitions_revoked({fresh, tp})
    assert not consumer.first_read_offset


async def test_the_commit_during_a_revocation_does_not_move_past_held_records(tmp_path):
    """Faust forgets a revoked partition's committed offset and acknowledgements, then the
    app's revocation acknowledges what the agent flushes (here the markers at 15 to 20; legs
    4 to 14 were held and are dropped) and commits. That commit moved to 21, and the new
    generation never read 4 to 14 again: a failover lost the alerts of a whole partition."""
    consumer = _subscribed(tmp_path).faust.consumer
    consumer.app.acked_by_key = frozenset({"cp-legs"})
    tp = TP("cp-legs", 2)
    consumer._committed_offset[tp] = 4
    await consumer._new_messages(tp, _records(tp.topic, 2, list(range(4, 21))))
    commits = []

    async def revocation(revoked, acked=range(15, 21)):
        consumer._acked[tp] = list(acked)
        consumer._acked_index[tp] = set(acked)
        commits.append(consumer._new_offset(tp))

    consumer._on_partitions_revoked = revocation
    await consumer.on_partitions_revoked({tp})
    assert commits == [None]
    assert not consumer.committed_when_revoked and not consumer.first_read_offset

    # After the revocation, before the new assignment's seek: nothing known of the head,
    # and the revocation's acknowledgements still there. A commit then moved to 21 too.
    revocation_acks = list(range(15, 21))
    consumer._acked[tp], consumer._acked_index[tp] = revocation_acks, set(revocation_acks)
    assert consumer._new_offset(tp) is None

    consumer._committed_offset[tp] = 4  # assigned again; now everything was applied
    await consumer._new_messages(tp, _records(tp.topic, 2, list(range(4, 21))))
    consumer._on_partitions_revoked = lambda revoked: revocation(revoked, range(4, 21))
    await consumer.on_partitions_revoked({tp})
    assert commits == [None, 21]


async def test_reading_starts_where_the_seek_put_it_and_is_unknown_until_then(tmp_path,
                                                                           monkeypatch):
    """Faust resumes the flow before it seeks after a rebalance: the input aligner learned
    the earliest offset as a partition's start, and a partition already read to its end
    then never counted as caught up (the network stages' records waiting on it held for
    good, 4 alerts missing in a failover). Bounds are now learned only after the seek."""
    aml = _subscribed(tmp_path)
    app, consumer = aml.faust, aml.faust.consumer
    sought, fresh, zero = TP("transactions", 0), TP("transactions", 1), TP("onboarding", 0)
    monkeypatch.setattr(consumer, "assignment", lambda: {sought, fresh, zero})

    async def seek_to_committed():
        return {sought: 41, fresh: None, zero: 0}

    async def highwaters(*tps):
        return {tp: 50 for tp in tps}

    async def earliest_offsets(*tps):
        return {tp: 3 for tp in tps}

    monkeypatch.setattr(consumer, "seek_to_committed", seek_to_committed)
    monkeypatch.setattr(consumer, "highwaters", highwaters)
    monkeypatch.setattr(consumer, "earliest_offsets", earliest_offsets)
    bounds = _bounds_of(app)
    asked = [(tp.topic, tp.partition) for tp in (sought, fresh, zero)]
    assert reading_from(app) == {} and await bounds(asked) == {}

    await consumer.perform_seek()
    assert reading_from(app) == {sought: 41, fresh: None, zero: None}
    assert await bounds(asked) == {("transactions", 0): (41, 50), ("transactions", 1): (3, 50),
                                   ("onboarding", 0): (3, 50)}

    async def revocation(revoked):
        assert sought not in reading_from(app)  # before the app's revocation runs

    consumer._on_partitions_revoked = revocation
    await consumer.on_partitions_revoked({sought})
    assert await bounds(asked[:1]) == {}


async def test_records_already_read_are_dropped_and_gaps_are_recorded(tmp_path):
    aml = _subscribed(tmp_path)
    consumer = aml.faust.consumer
    tp = TP("transactions", 3)
    consumer._read_offset[tp] = 5

    messages = await consumer._new_messages(tp, _records(tp.topic, 3, [3, 4, 5, 6, 9]))

    assert [m.offset for m in messages] == [5, 6, 9]  # Faust's rule: offset >= last read
    assert consumer._read_offset[tp] == 9
    assert {offset for interval in consumer._gap[tp] for offset in
            range(interval.begin, interval.end)} >= {7, 8}


async def test_own_changelog_records_are_drained_from_the_client_and_dropped(tmp_path,
                                                                           monkeypatch):
    """Left in aiokafka's buffer they would block every further fetch (see ``_getmany``)."""
    aml = _subscribed(tmp_path)
    consumer = aml.faust.consumer
    changelog = TP(aml.state.table.changelog_topic.get_topic_name(), 1)
    inputs = {TP("transactions", 1), TP("onboarding", 1)}
    asked: list[set[TP]] = []

    async def client_getmany(self, active_partitions, timeout):
        asked.append(set(active_partitions))
        return {tp: ["record"] for tp in active_partitions}

    monkeypatch.setattr(faust_aiokafka.Consumer, "_getmany", client_getmany)
    monkeypatch.setattr(type(consumer), "assignment", lambda self: inputs | {changelog})

    records = await consumer._getmany(inputs, 1.0)

    assert asked == [inputs | {changelog}]
    assert set(records) == inputs


async def test_held_back_partitions_are_not_fetched_until_released(tmp_path, monkeypatch):
    """Back-pressure of the ordering step: held back, a partition is left out of the fetch
    (its records stay in the client); the others, and Faust's active set, are untouched."""
    aml = _subscribed(tmp_path)
    consumer = aml.faust.consumer
    ahead, behind = TP("transactions", 1), TP("onboarding", 1)
    asked: list[set[TP]] = []

    async def client_getmany(self, active_partitions, timeout):
        asked.append(set(active_partitions))
        return {tp: ["record"] for tp in active_partitions}

    monkeypatch.setattr(faust_aiokafka.Consumer, "_getmany", client_getmany)
    monkeypatch.setattr(type(consumer), "assignment", lambda self: {ahead, behind})
    active = {ahead, behind}

    consumer.hold_back({ahead})
    held = await consumer._getmany(active, 1.0)
    consumer.release_hold({ahead})
    released = await consumer._getmany(active, 1.0)

    assert asked == [{behind}, {ahead, behind}]
    assert set(held) == {behind} and set(released) == {ahead, behind}
    assert active == {ahead, behind}


async def test_the_worker_consumer_fetches_some_data_at_once_but_waits_only_briefly(tmp_path):
    aml = create_app(Settings(store="memory://", data_dir=tmp_path))
    thread = aml.faust.consumer._new_consumer_thread()
    assert isinstance(thread, BatchConsumerThread)
    kafka_consumer = thread._create_worker_consumer(aml.faust.transport)
    try:
        assert kafka_consumer._fetch_max_wait_ms == FETCH_MAX_WAIT_MS <= 50
        assert kafka_consumer._fetch_min_bytes == FETCH_MIN_BYTES > 1
    finally:
        await kafka_consumer.stop()  # never started: closes its client only


async def test_an_input_partition_with_an_unknown_head_is_not_committed(tmp_path):
    """After a revocation and before the new assignment's seek, an input partition's
    committed offset is forgotten and nothing was read since: acknowledgements left from the
    revocation's flush (a rejected record is acknowledged at once, ahead of the events still
    held before it) must not be committed; once read again, the run is committed."""
    consumer = _subscribed(tmp_path).faust.consumer
    tp = TP("transactions", 3)
    consumer._acked[tp], consumer._acked_index[tp] = [7, 8], {7, 8}
    assert consumer._new_offset(tp) is None

    await consumer._new_messages(tp, _records(tp.topic, 3, [7, 8]))
    assert consumer._new_offset(tp) == 9
