"""``amlstream case``'s reading and writing: one customer's records from the topics, the rules
history, and the case file (``streams.case``) written as JSON and HTML.

Every keyed topic (onboarding, transactions, alerts, customer-risk, alert-decisions) is keyed
by customer id and placed by the default partitioner (murmur2 of the key; the worker's
producer is aiokafka's ``DefaultPartitioner`` through Faust, upstream producers Kafka's own):
only the customer's partition is read, from its first offset to its end offset at the time of
reading. The rules history is read whole. Nothing is written to Kafka, no consumer group is
joined, no topic is created (a missing topic is reported as such).
"""

from dataclasses import dataclass
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import TypeVar

from aiokafka import TopicPartition
from pydantic import BaseModel

from agents import kafka_clients
from agents.rules_feed import read_history_from
from agents.settings import Settings
from schemas.alerts import Alert
from schemas.case import CaseFile, TopicRead
from schemas.decisions import AlertDecision
from schemas.events import OnboardingEvent, TransactionEvent
from schemas.risk import RiskChange
from streams.case import (
    CaseRecords,
    build_case,
    case_file_stem,
    customer_records,
    render_html,
    render_json,
)
from streams.partitioning import partition_of

_Record = TypeVar("_Record", bound=BaseModel)


class UnknownCustomerError(LookupError):
    """No record of the customer on any of its topics."""


@dataclass(frozen=True)
class CaseOutput:
    case: CaseFile
    json_path: Path
    html_path: Path


def keyed_topics(settings: Settings) -> list[str]:
    """The topics keyed by customer id that the case reads."""
    return [settings.onboarding_topic, settings.transactions_topic, settings.alerts_topic,
            settings.risk_topic, settings.decisions_topic]


def amlstream_version() -> str:
    try:
        return metadata.version("amlstream")
    except metadata.PackageNotFoundError:
        return "unknown"


async def read_records(settings: Settings, customer_id: str) -> CaseRecords:
    """The customer's records from its partition of each keyed topic, and the rules history."""
    topics = keyed_topics(settings)
    admin = kafka_clients.admin(settings)
    await kafka_clients.start(admin, settings)
    try:
        counts = await kafka_clients.partition_counts(admin, topics)
    finally:
        await admin.close()
    key = customer_id.encode()
    wanted = {topic: TopicPartition(topic, partition_of(key, count))
              for topic, count in counts.items()}
    consumer = kafka_clients.consumer(settings, enable_auto_commit=False, group_id=None)
    await kafka_clients.start(consumer, settings)
    try:
        read = await kafka_clients.read_to_end(consumer, list(wanted.values()))
    finally:
        await consumer.stop()
    sources: list[TopicRead] = []

    def take(topic: str, model: type[_Record]) -> list[_Record]:
        """The customer's records on ``topic``; what was read noted in ``sources``."""
        if topic not in wanted:
            sources.append(TopicRead(topic=topic, partition=None))
            return []
        part = read[wanted[topic]]
        records, unreadable = customer_records(
            customer_id, model, ((r.key, r.value) for r in part.records))
        sources.append(TopicRead(
            topic=topic, partition=wanted[topic].partition, partitions=counts[topic],
            start_offset=part.start, end_offset=part.end, records=len(part.records),
            customer_records=len(records), unreadable=unreadable))
        return records

    onboarding = take(settings.onboarding_topic, OnboardingEvent)
    transactions = take(settings.transactions_topic, TransactionEvent)
    alerts = take(settings.alerts_topic, Alert)
    risk_changes = take(settings.risk_topic, RiskChange)
    decisions = take(settings.decisions_topic, AlertDecision)
    history, history_read = await read_history_from(settings)
    return CaseRecords(customer_id=customer_id, onboarding=onboarding,
                       transactions=transactions, alerts=alerts, risk_changes=risk_changes,
                       decisions=decisions, history=history, sources=[*sources, history_read])


def write_case(case: CaseFile, out_dir: Path) -> CaseOutput:
    """``<out_dir>/case-<customer>-<yyyymmddThhmmss>.json`` and ``.html``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = case_file_stem(case.customer_id, case.generated_at)
    json_path, html_path = out_dir / f"{stem}.json", out_dir / f"{stem}.html"
    json_path.write_bytes(render_json(case))
    html_path.write_text(render_html(case), encoding="utf-8")
    return CaseOutput(case, json_path, html_path)


async def make_case(settings: Settings, customer_id: str, out_dir: Path,
                    generated_at: datetime) -> CaseOutput:
    """Read, build and write the case of ``customer_id``; ``UnknownCustomerError`` if none of
    its topics holds a record of it."""
    records = await read_records(settings, customer_id)
    if records.empty:
        raise UnknownCustomerError(customer_id)
    return write_case(build_case(records, generated_at, amlstream_version()), out_dir)
