"""``amlstream case CUSTOMER_ID``: the case file of one customer, as JSON and HTML."""

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn

import click
from aiokafka.errors import KafkaConnectionError
from pydantic import ValidationError

from agents.case_file import UnknownCustomerError, keyed_topics, make_case
from agents.kafka_clients import KafkaSecurityError
from agents.settings import Settings


def _fail(message: str) -> NoReturn:
    """One line on stderr, exit status 2."""
    click.echo(f"amlstream case: {message}", err=True)
    raise click.exceptions.Exit(2)


@click.command("case")
@click.argument("customer_id")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("cases"),
              show_default=True, metavar="DIR",
              help="Directory to write the case file to (created if missing).")
@click.option("--broker", default=None, metavar="URL",
              help="Kafka bootstrap, kafka://host:port (default: AMLSTREAM_BROKER).")
def case(customer_id: str, out: Path, broker: str | None) -> None:
    """Write the case file of CUSTOMER_ID (the customer id, as on the topics' keys): its
    profile and onboarding steps, risk history, alerts with their evidence and decisions,
    the transactions in the alerted windows and the rule-set versions the alerts name, as
    <DIR>/case-<customer>-<yyyymmddThhmmss>.json and .html. Reads the customer's partition of
    each topic and the rules history; writes nothing to Kafka."""
    customer_id = customer_id.strip()
    if not customer_id:
        raise click.BadParameter("the customer id is empty", param_hint="CUSTOMER_ID")
    try:
        settings = Settings() if broker is None else Settings(broker=broker)
    except ValidationError as exc:
        _fail("invalid settings: " + "; ".join(
            f"AMLSTREAM_{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}"
            for e in exc.errors(include_input=False, include_url=False)))
    try:
        written = asyncio.run(make_case(settings, customer_id, out, datetime.now(UTC)))
    except UnknownCustomerError:
        _fail(f"no record of customer {customer_id!r} on "
              f"{', '.join(keyed_topics(settings))} (is the id right?)")
    except (KafkaSecurityError, TimeoutError) as exc:
        _fail(str(exc))
    except KafkaConnectionError:
        _fail(f"cannot reach the Kafka broker at {settings.bootstrap} (--broker or "
              "AMLSTREAM_BROKER)")
    summary = written.case.summary
    click.echo(written.json_path)
    click.echo(written.html_path)
    click.echo(f"{written.case.customer_id}: {summary.alerts} alerts "
               f"({summary.undecided_alerts} without a decision), {summary.decisions} "
               f"decisions, {summary.transactions} transactions in the alerted windows, "
               f"risk {summary.risk_level}")
