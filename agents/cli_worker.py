"""``amlstream worker``: the monitoring worker (a shadow run with ``--shadow``)."""

import asyncio
import logging
import sys
from pathlib import Path

import click

from agents.cli_common import (
    Command,
    UserError,
    broker_option,
    kafka_settings,
    rule_file_problem,
    settings_epilog,
)
from agents.settings import Settings
from streams.ruleset import CompiledRules, RuleSetError, load_rules


def _rule_file(path: Path, named: str) -> CompiledRules:
    """The rule file ``named`` (the setting or option that gave ``path``), or a UserError
    saying what is wrong and where."""
    try:
        return load_rules(path)
    except RuleSetError as exc:
        raise UserError(f"{named}: {rule_file_problem(path, exc)}; fix it (amlstream rules "
                        f"validate FILE names each problem) or set {named} to another "
                        "file") from None


@click.command(
    cls=Command, short_help="Run the monitoring worker (settings from AMLSTREAM_*).",
    help="Run the monitoring worker: read the input topics, apply the rules, write alerts, "
    "risk changes and dead letters. Settings come from the AMLSTREAM_* environment variables "
    "listed below; the rule set is the newest one published on the rules topic (amlstream "
    "rules publish), else the file AMLSTREAM_RULES_PATH.",
    epilog=settings_epilog())
@click.option("--shadow", default=None, metavar="NAME",
              help="A shadow run: the same inputs, a candidate rule set (--rules), its own "
              "consumer group, state and topics NAME-alerts, NAME-customer-risk, "
              "NAME-dead-letters; production is not touched.")
@click.option("--rules", type=click.Path(path_type=Path), default=None, metavar="FILE",
              help="With --shadow: the candidate rule file.")
@click.option("--start", type=click.Choice(["earliest", "latest"]), default="earliest",
              show_default=True, help="With --shadow: read the inputs from their start (a "
              "backtest over what the topics keep) or only what comes next.")
@broker_option
def worker(shadow: str | None, rules: Path | None, start: str) -> int:
    from agents import gc_policy, metrics, shutdown
    from agents.app import create_app
    from agents.fast_path import FaustInternalsError, check
    from agents.intel_feed import IntelFeed
    from agents.rules_feed import read_latest
    from agents.topics import ensure_topics

    try:  # before anything starts: Faust's and aiokafka's internals the worker relies on
        check()
    except FaustInternalsError as exc:
        print(f"amlstream worker: {exc}", file=sys.stderr, flush=True)
        return 2
    settings = Settings()
    candidate = None
    if shadow is not None:
        if rules is None:
            raise click.UsageError("--shadow needs --rules FILE (the candidate rule set)")
        settings = settings.shadow(shadow, rules, start)
        candidate = _rule_file(rules, "--rules")  # before anything reaches for the broker
    logging.basicConfig(level=settings.log_level.upper())
    kafka_settings(settings)
    asyncio.run(ensure_topics(settings))
    in_force = candidate if shadow is not None else asyncio.run(read_latest(settings))
    if in_force is None:  # none published: the file's
        in_force = _rule_file(settings.rules_path, "AMLSTREAM_RULES_PATH")
    intel = IntelFeed(settings)
    asyncio.run(intel.load())  # the listings in force before the first event
    aml = create_app(settings, in_force, intel)
    metrics.serve(settings.metrics_port, settings.metrics_host)
    gc_policy.tune()
    print(f"amlstream worker: rule set {aml.rules.version}, metrics on "
          f"http://127.0.0.1:{settings.metrics_port}/metrics", file=sys.stderr, flush=True)
    worker = shutdown.BoundedWorker(aml.faust, loglevel=settings.log_level, quiet=True)
    worker.timeout_s = settings.shutdown_timeout_s
    # Faust's terminal spinner, at log levels above INFO, sets the root logger to DEBUG so that
    # every debug call (aiokafka logs one per record sent) builds a record it then drops:
    # ~5% of the worker's CPU. A service has no terminal to spin on.
    worker.spinner = None
    worker.execute_from_commandline()
    return 0
