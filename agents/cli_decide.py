"""``amlstream decide``: record an analyst's decision on an alert (the alert-decisions topic)."""

import asyncio
import uuid
from datetime import UTC, datetime

import click
from pydantic import ValidationError

from agents.cli_common import Arg, Command, UserError, broker_option, kafka_settings
from agents.settings import Settings
from schemas.decisions import AlertDecision, DecisionKind


@click.command(cls=Command, short_help="Record a decision on an alert (false positive, ...).",
               help="Publish a decision on ALERT_ID to the alert-decisions topic, keyed by the "
               "customer: the worker applies it (a false positive takes the alert's points out "
               "of the risk score and whitelists its counterparty for that customer and rule) "
               "and the customer view shows it. Prints the decision as published.")
@click.argument("alert_id", cls=Arg, help="The alert's alert_id (in the view, the alert line "
                "of amlstream alerts --json, or the alerts topic).")
@click.option("--customer", required=True, metavar="ID", help="The alert's customer_id.")
@click.option("--rule", required=True, metavar="RULE_ID", help="The alert's rule_id.")
@click.option("--decision", required=True, type=click.Choice([k.value for k in DecisionKind]),
              help="What was decided.")
@click.option("--by", "decided_by", required=True, metavar="ANALYST",
              help="Who decided (an analyst's id), kept for audit.")
@click.option("--reason", required=True, metavar="TEXT", help="Why, kept for audit.")
@click.option("--counterparty", default=None, metavar="ADDRESS",
              help="false_positive: the address (or c:CUSTOMER) to whitelist; default: the "
              "counterparty of the alert's triggering transfer.")
@click.option("--whitelist-days", type=click.IntRange(0, 3650), default=None, metavar="DAYS",
              help="false_positive: how long the whitelist lasts (0: none); default: the rule "
              "set's decisions.whitelist_days.")
@broker_option
def decide(alert_id: str, customer: str, rule: str, decision: str, decided_by: str,
           reason: str, counterparty: str | None, whitelist_days: int | None) -> None:
    try:
        record = AlertDecision(
            event_id=f"decision-{uuid.uuid4().hex}", customer_id=customer,
            occurred_at=datetime.now(UTC).isoformat(), alert_id=alert_id, rule_id=rule,
            decision=DecisionKind(decision), decided_by=decided_by, reason=reason,
            counterparty=counterparty, whitelist_days=whitelist_days)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                             for e in exc.errors(include_input=False, include_url=False))
        raise UserError(f"decide: {problems}") from None
    settings = kafka_settings()
    asyncio.run(_publish(settings, record))
    click.echo(record.model_dump_json())


async def _publish(settings: Settings, record: AlertDecision) -> None:
    from agents import kafka_clients

    topic = settings.decisions_topic
    admin = kafka_clients.admin(settings)
    await kafka_clients.start(admin, settings)
    try:  # never created here: a broker's default partition count would not match the inputs
        exists = topic in await kafka_clients.partition_counts(admin, [topic])
    finally:
        await admin.close()
    if not exists:
        raise UserError(f"decide: topic {topic} (AMLSTREAM_DECISIONS_TOPIC) does not exist: "
                        "start the worker once (it creates it), or create it with "
                        "AMLSTREAM_PARTITIONS partitions")
    producer = kafka_clients.producer(settings, acks="all")
    await kafka_clients.start(producer, settings)
    try:
        await producer.send_and_wait(settings.decisions_topic, record.model_dump_json().encode(),
                                     key=record.customer_id.encode())
    finally:
        await producer.stop()
