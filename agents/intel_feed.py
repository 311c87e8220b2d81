"""Address intelligence on the compacted ``address-intel`` topic: publish entries, read the
whole topic, follow it live.

Every worker reads the whole topic itself, outside the consumer group, as ``rules_feed`` reads
the rules topic: a listing must reach every worker, whatever partitions it owns. Each entry is
applied to the worker's ``IntelIndex`` (shared by every rule set it compiles); an invalid one
is logged and counted (``amlstream_intel_rejected_total``) and the others apply. A listing new
or changed after start-up is handed to ``on_listing`` (the network stage's retroactive
screening).
"""

import logging
from collections.abc import Callable, Iterable

from aiokafka import AIOKafkaConsumer, TopicPartition

from agents import kafka_clients, metrics
from agents.settings import Settings
from streams.intel import IntelError, IntelIndex, Listing, parse_listing

log = logging.getLogger(__name__)

FETCH_TIMEOUT_MS = 1000


async def _consumer_at(settings: Settings,
                       position: int | None) -> tuple[AIOKafkaConsumer, TopicPartition]:
    """A consumer of the topic outside any group, at ``position`` (None: the beginning)."""
    consumer = kafka_clients.consumer(settings, enable_auto_commit=False, group_id=None)
    await kafka_clients.start(consumer, settings)
    partition = TopicPartition(settings.address_intel_topic, 0)
    consumer.assign([partition])
    if position is None:
        await consumer.seek_to_beginning(partition)
    else:
        consumer.seek(partition, position)
    return consumer, partition


class IntelFeed:
    """The topic read into ``index``. ``load`` reads it up to its end at the call; ``follow``
    (the worker's task) goes on from there for ever, calling ``on_listing``."""

    def __init__(self, settings: Settings, index: IntelIndex | None = None,
                 on_listing: Callable[[Listing], None] | None = None) -> None:
        self.settings = settings
        self.index = index if index is not None else IntelIndex(settings.intel_max_entries)
        self.on_listing = on_listing
        """Called with each listing new or changed after start-up (not for removals); while
        it runs, ``position - 1`` is the listing's offset. An exception it raises stops
        ``follow``."""
        self.position: int | None = None
        """The next offset to read; None until the topic has been read to its end once."""

    def accept(self, key: bytes | None, value: bytes | None) -> Listing | None:
        """Apply one message to the index: the listing if it is new or changed; None for a
        removal, an entry already known, or an invalid one (logged and counted)."""
        try:
            text_key, listing = parse_listing(key, value)
            changed = self.index.apply(text_key, listing)
        except IntelError as exc:
            log.warning("address-intel entry rejected (%s): %s", exc.reason, exc)
            metrics.INTEL_REJECTED.labels(exc.reason).inc()
            return None
        metrics.INTEL_ENTRIES.set(len(self.index))
        return listing if changed else None

    async def load(self) -> int:
        """Read from where the feed is (the beginning at first) to the topic's end now,
        without calling ``on_listing``; returns the messages read."""
        consumer, partition = await _consumer_at(self.settings, self.position)
        read = 0
        try:
            end = (await consumer.end_offsets([partition]))[partition]
            while await consumer.position(partition) < end:
                batch = await consumer.getmany(partition, timeout_ms=FETCH_TIMEOUT_MS)
                for record in batch.get(partition, []):
                    self.accept(record.key, record.value)
                    read += 1
            self.position = await consumer.position(partition)
        finally:
            await consumer.stop()
        log.info("address intelligence: %d listings in force (%d messages read)",
                 len(self.index), read)
        return read

    async def follow(self) -> None:
        """Run for ever (the worker's task): load first if not done, then apply each new
        message and hand what it lists anew to ``on_listing``."""
        if self.position is None:
            await self.load()
        consumer, partition = await _consumer_at(self.settings, self.position)
        try:
            while True:
                batch = await consumer.getmany(partition, timeout_ms=FETCH_TIMEOUT_MS)
                for record in batch.get(partition, []):
                    listing = self.accept(record.key, record.value)
                    self.position = record.offset + 1
                    if listing is not None and self.on_listing is not None:
                        self.on_listing(listing)
        finally:
            await consumer.stop()


async def read_all(settings: Settings) -> list[tuple[bytes | None, bytes | None]]:
    """Every message of the topic, from its beginning to its end now, in offset order
    (compaction keeps the newest per key; not-yet-compacted older ones come too)."""
    consumer, partition = await _consumer_at(settings, None)
    records: list[tuple[bytes | None, bytes | None]] = []
    try:
        end = (await consumer.end_offsets([partition]))[partition]
        while await consumer.position(partition) < end:
            batch = await consumer.getmany(partition, timeout_ms=FETCH_TIMEOUT_MS)
            records.extend((r.key, r.value) for r in batch.get(partition, []))
    finally:
        await consumer.stop()
    return records


async def publish(settings: Settings, records: Iterable[tuple[bytes, bytes | None]]) -> int:
    """Send ``(key, value)`` records (a None value removes the key's entry) to the topic's one
    partition, in order; returns how many the broker acknowledged."""
    producer = kafka_clients.producer(settings, acks="all", linger_ms=5)
    await kafka_clients.start(producer, settings)
    try:
        sent = [await producer.send(settings.address_intel_topic, value, key=key, partition=0)
                for key, value in records]
        for delivery in sent:
            await delivery
        return len(sent)
    finally:
        await producer.stop()
