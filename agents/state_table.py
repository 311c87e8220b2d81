"""Customer state: a write-back cache of decoded states in front of a changelog-backed table.

Why a cache: with many customers nearly every event touches a customer not seen in the batch,
and a table write per event (one changelog record through Faust's per-record producer path)
caps the worker at a few thousand events/s. Here decoded states stay in memory; each customer
touched since the last flush is written once per flush (every ``flush_interval_s``), and the
batch's input offsets are acknowledged only after that flush, so a commit never runs ahead of
the state it depends on.

Where writes go: Faust picks the RocksDB partition database from the stream's *current
event* (its `.message.partition`); around every read and write of a customer we make a stand-in
for an event of that customer current.
The changelog record is produced directly, in bulk, to the partition of the customer's source
partition (the table is co-partitioned with the inputs), so Faust's recovery after a
rebalance restores it where it is needed. Keys and values are raw bytes: the key is the
message key (``customer_id``), the value ``CustomerState.to_bytes()``.
"""

import asyncio
import itertools
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from faust.types import TP

from agents.fast_path import current_event_of, partition_databases
from streams.state import CustomerState

WRITE_SLICE = 200
"""Customers written between two yields of the event loop (~10 ms of work)."""

Snapshot = list[tuple[bytes, Any, bytes]]
"""(key, one of the customer's input messages, encoded state) of each changed customer."""

SendRecords = Callable[[int, list[tuple[bytes, bytes]]], Awaitable[list[Awaitable[int]]]]
"""Start producing (key, value) records, in order, to a partition of the changelog; each
awaitable returned resolves, once the broker has them, to the offset of the last record it
covers (``agents.app``: in bulk, one producer batch per awaitable)."""


class StateTable:
    def __init__(self, table: Any, send_records: SendRecords, max_cached: int = 100_000) -> None:
        self.table = table
        self.send_records = send_records
        self.max_cached = max_cached
        self.cached: OrderedDict[bytes, CustomerState] = OrderedDict()
        self.dirty: dict[bytes, Any] = {}
        """Customers changed since the last flush -> one of their messages (for the partition)."""
        self.journal: dict[bytes, list[Any]] = {}
        """Customer -> what changed it since the last snapshot, in order (opaque here: the
        pipeline's events), so that ``durable`` plus these rebuilds the cached state."""
        self.latest_cut: dict[bytes, bytes] = {}
        """The encoded states of the latest snapshot: newer than the store until written."""

    def load(self, key: bytes, message: Any) -> CustomerState | None:
        """The state of ``key``; ``message`` is an input message of this customer."""
        state = self.cached.get(key)
        if state is not None:
            self.cached.move_to_end(key)
            return state
        with current_event_of(message):
            raw = self.table.get(key)
        if raw is None:
            return None
        state = CustomerState.from_bytes(raw)
        self.cached[key] = state
        return state

    def mark_changed(self, key: bytes, state: CustomerState, message: Any) -> None:
        """``state`` of ``key`` changed; called after ``load`` of the same key, which made it
        the most recently used (a new key is added last)."""
        self.cached[key] = state
        self.dirty[key] = message

    def note(self, key: bytes, change: Any) -> None:
        """``change`` was applied to ``key``'s cached state (see ``journal``)."""
        changes = self.journal.get(key)
        if changes is None:
            self.journal[key] = [change]
        else:
            changes.append(change)

    def durable(self, key: bytes, message: Any) -> CustomerState | None:
        """``key``'s state as of the latest snapshot (being written, or in the store): the
        cached one less the changes in ``journal[key]``. The cache is left as it is."""
        raw = self.latest_cut.get(key)
        if raw is None:
            with current_event_of(message):
                raw = self.table.get(key)
        return None if raw is None else CustomerState.from_bytes(raw)

    def replace(self, key: bytes, state: CustomerState | None, changes: list[Any]) -> None:
        """Put a rebuilt state (``durable`` plus ``changes``) in the cache in place of the
        current one; ``None`` leaves the customer to be loaded again from the store."""
        if state is None:
            self.cached.pop(key, None)
        else:
            self.cached[key] = state
        if changes:
            self.journal[key] = changes
        else:
            self.journal.pop(key, None)

    def snapshot(self) -> Snapshot:
        """Every customer changed since the last snapshot, encoded now; none is dirty after."""
        dirty, self.dirty = self.dirty, {}
        self.journal.clear()
        snapshot = [(key, message, self.cached[key].to_bytes())
                    for key, message in dirty.items()]
        self.latest_cut = {key: raw for key, _, raw in snapshot}
        return snapshot

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
        self._evict()
        return len(snapshot)

    def _evict(self) -> None:
        """Keep the cache to ``max_cached``, least recently used first; a customer changed
        since the last snapshot stays (its newest state is not in the store yet)."""
        excess = len(self.cached) - self.max_cached
        if excess <= 0:
            return
        for key in list(itertools.islice(self.cached, excess)):
            if key not in self.dirty:
                del self.cached[key]

    def forget(self) -> None:
        """Drop the cache (after a rebalance another worker may have moved a customer on)."""
        self.cached.clear()
        self.dirty.clear()
        self.journal.clear()
        self.latest_cut.clear()

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

