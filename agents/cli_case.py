"""``amlstream case CUSTOMER_ID``: the case file of one customer, as JSON and HTML."""

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import click

from agents.cli_common import Arg, Command, UserError, broker_option, kafka_settings


@click.command(cls=Command, short_help="Write one customer's case file (JSON and HTML).",
               help="Write the case file of CUSTOMER_ID for a suspicious-activity report: its "
               "profile and onboarding steps, risk history, alerts with their evidence and "
               "decisions, the transactions in the alerted windows and the rule-set versions "
               "the alerts name, as DIR/case-<customer>-<yyyymmddThhmmss>.json and .html. "
               "Reads the customer's partition of each topic and the rules history; writes "
               "nothing to Kafka.")
@click.argument("customer_id", cls=Arg, help="The customer id, as on the topics' keys.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("cases"),
              show_default=True, metavar="DIR",
              help="Directory to write the case file to (created if missing).")
@broker_option
def case(customer_id: str, out: Path) -> None:
    from agents.case_file import UnknownCustomerError, keyed_topics, make_case

    customer_id = customer_id.strip()
    if not customer_id:
        raise click.BadParameter("the customer id is empty", param_hint="CUSTOMER_ID")
    settings = kafka_settings()
    try:
        written = asyncio.run(make_case(settings, customer_id, out, datetime.now(UTC)))
    except UnknownCustomerError:
        raise UserError(f"no record of customer {customer_id!r} on "
                        f"{', '.join(keyed_topics(settings))} (is the id right?)") from None
    except TimeoutError as exc:
        raise UserError(str(exc)) from None
    except OSError as exc:
        raise UserError(f"cannot write the case file to {out}: {exc.strerror or exc}") from None
    summary = written.case.summary
    click.echo(written.json_path)
    click.echo(written.html_path)
    click.echo(f"{written.case.customer_id}: {summary.alerts} alerts "
               f"({summary.undecided_alerts} without a decision), {summary.decisions} "
               f"decisions, {summary.transactions} transactions in the alerted windows, "
               f"risk {summary.risk_level}")
