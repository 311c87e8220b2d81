"""``amlstream alerts``: tail the alerts topic (``agents.alert_tail``)."""

import asyncio

import click

from agents.cli_common import Command, broker_option, kafka_settings


@click.command(cls=Command, short_help="Tail the alerts topic, one line per alert.",
               help="Print the alerts on the alerts topic as they come, one line each (or "
               "JSON), filtered by customer, rule or severity.")
@click.option("--from-beginning", is_flag=True,
              help="Read the topic from its start (default: only new alerts).")
@click.option("--limit", type=int, default=None, metavar="N",
              help="Stop after exactly this many alerts (after the filters).")
@click.option("--customer", default=None, metavar="ID", help="Only this customer's alerts.")
@click.option("--rule", default=None, metavar="RULE_ID", help="Only this rule's alerts.")
@click.option("--severity", type=click.Choice(["low", "medium", "high", "critical"]),
              default=None, help="Only alerts of this severity or a higher one.")
@click.option("--json", "as_json", is_flag=True,
              help="Print each alert as JSON, evidence included (one per line).")
@click.option("--idle-exit-s", type=float, default=None, metavar="S",
              help="Stop after this many seconds without a new alert.")
@broker_option
def alerts(from_beginning: bool, limit: int | None, customer: str | None, rule: str | None,
           severity: str | None, as_json: bool, idle_exit_s: float | None) -> int:
    from agents import alert_tail
    from schemas.alerts import Severity

    wanted = alert_tail.AlertFilter(customer, rule,
                                    None if severity is None else Severity(severity))
    settings = kafka_settings()
    return asyncio.run(alert_tail.tail_alerts(settings, from_beginning=from_beginning,
                                              limit=limit, idle_exit_s=idle_exit_s,
                                              wanted=wanted, as_json=as_json))
