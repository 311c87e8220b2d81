"""Customer state: a write-back cache of decoded states in front of a changelog-backed table.

Why a cache: with many customers nearly every event touches a customer not seen in the batch,
and a table write per event (one changelog record through Faust's per-record producer path)
caps the worker at a few thousand events/s. Here decoded states stay in memory
(``streams.state_cache``, shared with the backtest); each customer touched since the last flush
is written once per flush (every ``flush_interval_s``), and the batch's input offsets are
acknowledged only after that flush (``agents.checkpoint``), so a commit never runs ahead of the
state it depends on.

Where writes go: Faust picks the RocksDB partition database from the stream's *current
event* (its `.message.partition`); around every read and write of a customer we make a stand-in
for an event of that customer current.
The changelog record is produced directly, in bulk, to the partition of the customer's source
partition (the table is co-partitioned with the inputs), so Faust's recovery after a
rebalance restores it where it is needed. Keys and values are raw bytes: the key is the
message key (``customer_id``), the value ``CustomerState.to_bytes()``.
"""

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from faust.types import TP

from agents.fast_path import current_event_of, partition_databases
from streams.state_cache import Snapshot, StateCache

WRITE_SLICE = 200
"""Customers written between two yields of the event loop (~10 ms of work)."""

SendRecords = Callable[[int, list[tuple[bytes, bytes]]], Awaitable[list[Awaitable[int]]]]
"""Start producing (key, value) records, in order, to a partition of the changelog; each
awaitable returned resolves, once the broker has them, to the offset of the last record it
covers (``agents.app``: in bulk, one producer batch per awaitable)."""


@dataclass(frozen=True, slots=True)
class PartitionRef:
    """Stands for a record of ``partition`` where a table needs one (its meta records)."""

    topic: str
    partition: int


class StateTable(StateCache):
    """``streams.state_cache.StateCache`` over a Faust table: reads from the partition's
    RocksDB database, writes snapshots to it and, in bulk, to the changelog."""

    def __init__(self, table: Any, send_records: SendRecords, max_cached: int = 100_000,
                 decode: Callable[[bytes], Any] | None = None) -> None:
        if decode is None:
            super().__init__(self._stored, max_cached)
        else:
            super().__init__(self._stored, max_cached, decode)
        self.table = table
        self.send_records = send_records
        self.meta: dict[bytes, tuple[Any, bytes]] = {}
        """Partition records written with the next snapshot: key -> (a record of the
        partition, value). A partition's meta key must not be a possible entity key."""

    def read_meta(self, key: bytes, partition: int) -> bytes | None:
        return self._stored(key, PartitionRef(self.table.changelog_topic.get_topic_name(),
                                              partition))

    def put_meta(self, key: bytes, partition: int, raw: bytes) -> None:
        self.meta[key] = (PartitionRef(self.table.changelog_topic.get_topic_name(), partition),
                          raw)

    def snapshot(self) -> Snapshot:
        snapshot = super().snapshot()
        snapshot.extend((key, ref, raw) for key, (ref, raw) in self.meta.items())
        self.meta = {}
        return snapshot

    def _stored(self, key: bytes, message: Any) -> bytes | None:
        with current_event_of(message):
            raw: bytes | None = self.table.get(key)
        return raw

    async def write(self, snapshot: Snapshot) -> int:
        """Write a snapshot (store, then changelog, awaited); return how many customers.
        Events go on being applied meanwhile: every ``WRITE_SLICE`` customers, the event loop
        is let go."""
        by_partition: dict[int, list[tuple[bytes, bytes]]] = {}
        for n, (key, message, raw) in enumerate(snapshot, 1):
            with current_event_of(message):
                self.table.data[key] = raw  # the local store only: no per-record changelog
            by_partition.setdefault(message.partition, []).append((key, raw))
            if n % WRITE_SLICE == 0:
                await asyncio.sleep(0)
        sent = [(partition, await self.send_records(partition, records))
                for partition, records in by_partition.items()]
        topic = self.table.changelog_topic.get_topic_name()
        for partition, offsets in sent:
            newest = max(await asyncio.gather(*offsets))
            # What Faust does per record (``_on_changelog_sent``): the store keeps the changelog
            # offset it holds data up to, so recovery after a restart reads only what is newer.
            self.table.data.set_persisted_offset(TP(topic, partition), newest)
        self.evict()
        return len(snapshot)

    def customers(self) -> int:
        """Customers in this worker's store. For RocksDB, its own estimate per partition
        database: Faust's ``len(table)`` reads every key (a pause of the event loop growing with
        the customers) and counts only partitions its assignor lists, which left it at 0."""
        store = self.table.data
        databases = partition_databases(store)
        if databases is None:
            return len(store)
        return sum(db.property_int_value("rocksdb.estimate-num-keys") or 0
                   for db in databases.values())

