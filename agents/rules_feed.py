"""Rule sets on the compacted ``rules`` topic: publish, read the newest, follow changes live;
and every rule set ever published on the ``rules-history`` topic, for audit.

Every worker reads the whole topic itself, outside the consumer group (a rule set must reach
every worker, whatever partitions it owns). A rule set that does not validate is rejected
with its reasons in the log and a metric; the one in force stays. List files named in a
published rule set are resolved against the directory of the worker's own rule file.

The history (one partition, compacted, keyed by version) keeps one record per version for as
long as the topic exists: what an alert's ``rule_set_version`` meant. ``publish`` writes it
there first, then to the rules topic; ``read_history`` reads it whole.
"""

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from agents import kafka_clients, metrics, topics
from agents.settings import Settings
from schemas.case import TopicRead
from schemas.rules import PublishedRuleSet, RuleSet
from streams.ruleset import CompiledRules, RuleSetError, compile_rules, parse_rule_set

log = logging.getLogger(__name__)

RULE_SET_KEY = b"rule-set"
"""One key: compaction keeps the newest rule set."""


def encode_rule_set(rule_set: RuleSet) -> bytes:
    return orjson.dumps(rule_set.model_dump(mode="json"))


def decode_rule_set(raw: bytes, base_dir: Path) -> CompiledRules:
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise RuleSetError(f"rule set is not JSON: {exc}") from exc
    return compile_rules(parse_rule_set(document), base_dir)


async def _from_the_beginning(settings: Settings) -> tuple[AIOKafkaConsumer, TopicPartition]:
    """A consumer of the whole rules topic, outside any group (every worker reads it all)."""
    consumer = kafka_clients.consumer(settings, enable_auto_commit=False, group_id=None)
    await kafka_clients.start(consumer, settings)
    partition = TopicPartition(settings.rules_topic, 0)
    consumer.assign([partition])
    await consumer.seek_to_beginning(partition)
    return consumer, partition


async def read_latest(settings: Settings) -> CompiledRules | None:
    """The newest valid rule set on the topic, or None if there is none."""
    consumer, partition = await _from_the_beginning(settings)
    try:
        end = (await consumer.end_offsets([partition]))[partition]
        latest: CompiledRules | None = None
        while await consumer.position(partition) < end:
            batch = await consumer.getmany(partition, timeout_ms=1000)
            for record in batch.get(partition, []):
                latest = _accept(record.value, settings, latest) or latest
        return latest
    finally:
        await consumer.stop()


def _accept(raw: bytes | None, settings: Settings,
            current: CompiledRules | None) -> CompiledRules | None:
    """The rule set in ``raw`` if valid and new; None (and a logged reason) otherwise."""
    if raw is None:
        return None
    try:
        rules = decode_rule_set(raw, settings.rules_path.resolve().parent)
    except RuleSetError as exc:
        log.error("rule set rejected, the one in force stays: %s", exc)
        metrics.RULE_SETS_REJECTED.inc()
        return None
    if current is not None and rules.version == current.version:
        return None
    return rules


async def follow(settings: Settings, current: Callable[[], CompiledRules],
                 apply: Callable[[CompiledRules], None]) -> None:
    """Run forever: every new valid rule set on the topic is handed to ``apply``."""
    consumer, partition = await _from_the_beginning(settings)
    try:
        while True:
            batch = await consumer.getmany(partition, timeout_ms=1000)
            for record in batch.get(partition, []):
                rules = _accept(record.value, settings, current())
                if rules is not None:
                    log.warning("rule set %s in force (was %s)", rules.version, current().version)
                    apply(rules)
    except asyncio.CancelledError:
        raise
    finally:
        await consumer.stop()


class VersionConflictError(RuleSetError):
    """The version is in the rules history with another rule set."""


async def publish(settings: Settings, rule_set: RuleSet) -> None:
    """Publish ``rule_set``: to the rules history (keyed by its version) first, then to the
    rules topic, where workers pick it up. In that order, so that no rule set is in force
    without its record in the history.

    A version already in the history is not written there again: with the same rule set (a
    rollback to it) its first record stays, and its publish time; with another rule set,
    ``VersionConflictError`` is raised and nothing is published: the alerts that name the
    version must keep meaning the rule set that produced them."""
    await topics.ensure_rules_history(settings)
    value = encode_rule_set(rule_set)
    earlier = (await read_history(settings)).get(rule_set.version)
    if earlier is not None and earlier.config != orjson.loads(value):
        raise VersionConflictError(
            f"version {rule_set.version} was published on {earlier.published_at:%Y-%m-%d} "
            "with another rule set: give this one a new version")
    producer = kafka_clients.producer(settings, acks="all")
    await kafka_clients.start(producer, settings)
    try:
        if earlier is None:
            await producer.send_and_wait(settings.rules_history_topic, value,
                                         key=rule_set.version.encode(), partition=0)
        await producer.send_and_wait(settings.rules_topic, value, key=RULE_SET_KEY, partition=0)
    finally:
        await producer.stop()


async def read_history(settings: Settings) -> dict[str, PublishedRuleSet]:
    """Every version on the rules-history topic: version -> the rule set as published (its
    JSON document, not validated again: an older format stays readable) and when. Empty if
    the topic does not exist."""
    return (await read_history_from(settings))[0]


async def read_history_from(settings: Settings) -> tuple[dict[str, PublishedRuleSet], TopicRead]:
    """``read_history``, and what was read (offsets, records) for a reader that reports it."""
    topic = settings.rules_history_topic
    admin = kafka_clients.admin(settings)
    await kafka_clients.start(admin, settings)
    try:
        exists = topic in await kafka_clients.partition_counts(admin, [topic])
    finally:
        await admin.close()
    if not exists:
        return {}, TopicRead(topic=topic, partition=None)
    consumer = kafka_clients.consumer(settings, enable_auto_commit=False, group_id=None)
    await kafka_clients.start(consumer, settings)
    partition = TopicPartition(topic, 0)
    try:
        read = (await kafka_clients.read_to_end(consumer, [partition]))[partition]
    finally:
        await consumer.stop()
    versions: dict[str, PublishedRuleSet] = {}
    for record in read.records:
        version = (record.key or b"").decode("utf-8", "replace")
        if record.value is None:  # a tombstone: the version was removed
            versions.pop(version, None)
            continue
        try:
            document = orjson.loads(record.value)
        except orjson.JSONDecodeError:
            document = None
        if not isinstance(document, dict) or not version:
            log.warning("rules history: the record at offset %d is not a rule set; left out",
                        record.offset)
            continue
        versions[version] = PublishedRuleSet(
            version=version, offset=record.offset, config=document,
            published_at=datetime.fromtimestamp(record.timestamp / 1000, UTC))
    return versions, TopicRead(topic=topic, partition=0, partitions=1, start_offset=read.start,
                               end_offset=read.end, records=len(read.records),
                               customer_records=len(versions))
