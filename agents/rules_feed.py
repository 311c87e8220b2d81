"""Rule sets on the compacted ``rules`` topic: publish, read the newest, follow changes live.

Every worker reads the whole topic itself, outside the consumer group (a rule set must reach
every worker, whatever partitions it owns). A rule set that does not validate is rejected
with its reasons in the log and a metric; the one in force stays. List files named in a
published rule set are resolved against the directory of the worker's own rule file.
"""

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from agents import kafka_clients, metrics
from agents.settings import Settings
from schemas.rules import RuleSet
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


async def publish(settings: Settings, rule_set: RuleSet) -> None:
    producer = kafka_clients.producer(settings, acks="all")
    await kafka_clients.start(producer, settings)
    try:
        await producer.send_and_wait(settings.rules_topic, encode_rule_set(rule_set),
                                     key=RULE_SET_KEY, partition=0)
    finally:
        await producer.stop()
