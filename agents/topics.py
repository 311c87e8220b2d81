"""Create the topics amlstream reads and writes, with the configured partition count."""

import asyncio
import contextlib
import logging

from aiokafka.admin import NewTopic
from aiokafka.errors import KafkaConnectionError, TopicAlreadyExistsError

from agents import kafka_clients
from agents.settings import Settings

log = logging.getLogger(__name__)

INTERNAL_RETENTION_MS = 7 * 86400 * 1000
"""The internal topics need only cover a stage's catch-up: their state is in the changelogs."""


STATE_TABLE = "customer-state"
COUNTERPARTY_TABLE = "counterparty-state"
FLOW_TABLE = "flow-state"
"""The worker's Faust tables (S1's, S2's, S3's), each backed by ``<app id>-<name>-changelog``."""


class TopicPartitionsError(RuntimeError):
    """An existing topic whose partition count is not ``AMLSTREAM_PARTITIONS``; the message
    names the topic, both counts and what to do."""


def internal_topics(settings: Settings) -> list[str]:
    """The network stages' topics (none when they are off)."""
    return [settings.cp_legs_topic, settings.flows_topic] if settings.network else []


def changelog_topics(settings: Settings) -> list[str]:
    """The tables' changelog topics, as Faust names them."""
    tables = [STATE_TABLE, *((COUNTERPARTY_TABLE, FLOW_TABLE) if settings.network else ())]
    return [f"{settings.app_id}-{table}-changelog" for table in tables]


def compacted_topics(settings: Settings) -> list[str]:
    """The topics read whole, newest value per key: the rule set in force, every rule set
    published (one record per version, kept for audit: compaction never deletes a key's
    newest record, and no time limit applies), the address intelligence."""
    return [settings.rules_topic, settings.rules_history_topic, settings.address_intel_topic]


def _compacted(name: str) -> NewTopic:
    """One partition (read whole, in order), compacted."""
    return NewTopic(name, 1, 1, topic_configs={"cleanup.policy": "compact"})


async def ensure_rules_history(settings: Settings) -> None:
    """Create the rules-history topic if it is missing, as ``ensure_topics`` would: a rule set
    published before any worker created it would otherwise go to a topic the broker makes
    itself (auto.create.topics.enable), with the delete policy, and expire."""
    admin = kafka_clients.admin(settings)
    await kafka_clients.start(admin, settings)
    try:
        name = settings.rules_history_topic
        if name in await kafka_clients.partition_counts(admin, [name]):
            return
        response = await admin.create_topics([_compacted(name)])
        errors = [error[1] for error in response.topic_errors
                  if error[1] not in (0, TopicAlreadyExistsError.errno)]
        if errors:
            raise RuntimeError(f"could not create the topic {name} (Kafka error {errors[0]}): "
                               "create it compacted, with 1 partition")
        log.info("created topic %s", name)
    finally:
        await admin.close()


async def ensure_topics(settings: Settings, timeout_s: float = 60.0) -> None:
    """Create missing topics. Inputs and state must share a partition count (co-partitioning),
    so an existing input topic with another count is an error, not a warning."""
    names = [*settings.input_topics, settings.alerts_topic, settings.dead_letter_topic,
             settings.risk_topic]
    admin = kafka_clients.admin(settings, request_timeout_ms=int(timeout_s * 1000))
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        try:
            # A refused login or certificate raises KafkaSecurityError at once (no retry).
            await kafka_clients.start(admin, settings)
            break
        except KafkaConnectionError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(1)
    try:
        compacted = compacted_topics(settings)
        changelogs = changelog_topics(settings)
        partitions = await kafka_clients.partition_counts(
            admin, [*names, *compacted, *changelogs, *internal_topics(settings)])
        for name in settings.input_topics:
            if name in partitions and partitions[name] != settings.partitions:
                raise TopicPartitionsError(
                    f"topic {name} has {partitions[name]} partitions but AMLSTREAM_PARTITIONS "
                    f"is {settings.partitions}: the inputs and the state must match; set "
                    f"AMLSTREAM_PARTITIONS={partitions[name]}, the count the topic has")
        missing = [NewTopic(name, settings.partitions, 1) for name in names
                   if name not in partitions]
        for name in internal_topics(settings):
            if name in partitions and partitions[name] != settings.partitions:
                raise TopicPartitionsError(
                    f"internal topic {name} has {partitions[name]} partitions but "
                    f"AMLSTREAM_PARTITIONS is {settings.partitions}: the network stages need "
                    "the same count (changing it is a reset: delete the internal topics)")
            if name not in partitions:
                missing.append(NewTopic(name, settings.partitions, 1, topic_configs={
                    "retention.ms": str(INTERNAL_RETENTION_MS)}))
        missing += [_compacted(name) for name in compacted if name not in partitions]
        # Before Faust starts, as Faust would (compacted, a partition per input partition): a
        # changelog Faust created at start could be missing from a worker's first metadata,
        # and stay unassigned (so never recovered) until its next refresh, minutes later; a
        # failover then lost the taken-over partitions' counterparty states.
        missing += [NewTopic(name, settings.partitions, 1,
                             topic_configs={"cleanup.policy": "compact"})
                    for name in changelogs if name not in partitions]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # another worker was quicker
                await admin.create_topics(missing)
            log.info("created topics %s", ", ".join(t.name for t in missing))
    finally:
        await admin.close()


async def wait_for_leaders(settings: Settings, topics: list[str], timeout_s: float = 30.0) -> bool:
    """Wait until every partition of ``topics`` has a leader (a topic just created has none
    for a moment: a producer would log NotLeaderForPartition retries). False at the timeout."""
    admin = kafka_clients.admin(settings)
    await kafka_clients.start(admin, settings)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    try:
        while True:
            described = await admin.describe_topics(topics)
            if all(t["error_code"] == 0 and t["partitions"]
                   and all(p["leader"] >= 0 and p["error_code"] == 0 for p in t["partitions"])
                   for t in described):
                return True
            if loop.time() > deadline:
                return False
            await asyncio.sleep(0.2)
    finally:
        await admin.close()
