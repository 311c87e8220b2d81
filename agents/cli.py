"""``amlstream``: worker, demo, alerts, schemas."""

import argparse
import asyncio
import json
import logging
import os
import sys
import traceback
from pathlib import Path

from aiokafka.errors import KafkaConnectionError
from pydantic import ValidationError

from agents import cli_backtest, cli_evaluate, cli_intel, cli_rules
from agents.kafka_clients import KafkaSecurityError
from agents.settings import Settings


def _worker(args: argparse.Namespace) -> int:
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
    if args.shadow is not None:
        if args.rules is None:
            print("amlstream worker: --shadow needs --rules FILE (the candidate rule set)",
                  file=sys.stderr)
            return 2
        settings = settings.shadow(args.shadow, args.rules, args.start)
    logging.basicConfig(level=settings.log_level.upper())
    asyncio.run(ensure_topics(settings))
    published = None if args.shadow is not None else asyncio.run(read_latest(settings))
    intel = IntelFeed(settings)
    asyncio.run(intel.load())  # the listings in force before the first event
    aml = create_app(settings, published, intel)
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


def _schemas(args: argparse.Namespace) -> int:
    from schemas.alerts import Alert
    from schemas.dead_letters import DeadLetter
    from schemas.decisions import AlertDecision
    from schemas.events import OnboardingEvent, TransactionEvent
    from schemas.intel import AddressIntel
    from schemas.risk import RiskChange
    from schemas.rules import RuleSet

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, model in (("transaction-event", TransactionEvent),
                        ("onboarding-event", OnboardingEvent), ("alert", Alert),
                        ("dead-letter", DeadLetter), ("risk-change", RiskChange),
                        ("rule-set", RuleSet), ("address-intel", AddressIntel),
                        ("alert-decision", AlertDecision)):
        path = out / f"{name}.schema.json"
        path.write_text(json.dumps(model.model_json_schema(), indent=2) + "\n", encoding="utf-8")
        print(path)
    return 0


def _alerts(args: argparse.Namespace) -> int:
    from agents.alert_tail import AlertFilter, tail_alerts
    from schemas.alerts import Severity

    wanted = AlertFilter(args.customer, args.rule,
                         None if args.severity is None else Severity(args.severity))
    return asyncio.run(tail_alerts(Settings(), from_beginning=args.from_beginning,
                                   limit=args.limit, idle_exit_s=args.idle_exit_s,
                                   wanted=wanted, as_json=args.json))


def _demo(args: argparse.Namespace) -> int:
    from agents.demo import run_demo

    return run_demo(customers=args.customers, keep_running=args.keep_running, jsonl=args.jsonl)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="amlstream", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    worker = commands.add_parser("worker", help="run the monitoring worker (settings from "
                                 "AMLSTREAM_*)")
    worker.add_argument("--shadow", default=None, metavar="NAME",
                        help="a shadow run: the same inputs, a candidate rule set (--rules), "
                        "its own consumer group, state and topics NAME-alerts, "
                        "NAME-customer-risk, NAME-dead-letters; production is not touched")
    worker.add_argument("--rules", type=Path, default=None, metavar="FILE",
                        help="with --shadow: the candidate rule file")
    worker.add_argument("--start", choices=("earliest", "latest"), default="earliest",
                        help="with --shadow: read the inputs from their start (a backtest over "
                        "what the topics keep) or only what comes next")
    demo = commands.add_parser("demo", help="local broker + worker + synthetic stream; "
                               "prints alerts as they arrive")
    demo.add_argument("--customers", type=int, default=3000, help="background customers")
    demo.add_argument("--keep-running", action="store_true",
                      help="leave worker and broker running at the end (Ctrl-C stops)")
    demo.add_argument("--jsonl", type=Path, default=None, metavar="FILE",
                      help="only write the demo's stream to FILE as JSON Lines (no broker), "
                      "for amlstream backtest")
    alerts = commands.add_parser("alerts", help="tail the alerts topic, one line per alert")
    alerts.add_argument("--from-beginning", action="store_true",
                        help="read the topic from its start (default: only new alerts)")
    alerts.add_argument("--limit", type=int, default=None,
                        help="stop after exactly this many alerts (after the filters)")
    alerts.add_argument("--customer", default=None, metavar="ID",
                        help="only this customer's alerts")
    alerts.add_argument("--rule", default=None, metavar="RULE_ID", help="only this rule's alerts")
    alerts.add_argument("--severity", default=None,
                        choices=("low", "medium", "high", "critical"),
                        help="only alerts of this severity or a higher one")
    alerts.add_argument("--json", action="store_true",
                        help="print each alert as JSON, evidence included (one per line)")
    alerts.add_argument("--idle-exit-s", type=float, default=None,
                        help="stop after this many seconds without a new alert")
    schemas = commands.add_parser("schemas", help="write the JSON Schema of every wire model")
    schemas.add_argument("--out", default="schemas/json", help="output directory")
    cli_rules.add_commands(commands)
    cli_intel.add_commands(commands)
    cli_backtest.add_commands(commands)
    cli_evaluate.add_commands(commands)
    args = parser.parse_args(argv)
    handlers = {"worker": _worker, "schemas": _schemas, "alerts": _alerts, "demo": _demo}
    try:
        if hasattr(args, "handler"):
            return int(args.handler(args))
        return handlers[args.command](args)
    except KafkaSecurityError as exc:
        print(f"amlstream: {exc}", file=sys.stderr, flush=True)
        return 2
    except KafkaConnectionError:
        if os.environ.get("AMLSTREAM_LOG_LEVEL", "").lower() == "debug":
            traceback.print_exc()
        from agents.demo import DEMO_PORT
        print(f"amlstream: cannot reach the Kafka broker at {Settings().bootstrap} "
              "(AMLSTREAM_BROKER): start it, or set AMLSTREAM_BROKER to a running one (the "
              f"demo's, while it runs: kafka://127.0.0.1:{DEMO_PORT})", file=sys.stderr,
              flush=True)
        return 2
    except ValidationError as exc:
        if exc.title != Settings.__name__:
            raise
        print(f"amlstream: invalid settings: {_settings_errors(exc)}", file=sys.stderr, flush=True)
        return 2


def _settings_errors(exc: ValidationError) -> str:
    """One line: each invalid setting named by its environment variable (never its value)."""
    parts = []
    for error in exc.errors(include_input=False, include_url=False):
        message = error["msg"].removeprefix("Value error, ")
        names = [str(part) for part in error["loc"]]
        parts.append(f"AMLSTREAM_{names[0].upper()}: {message}" if names else message)
    return "; ".join(parts)


if __name__ == "__main__":
    sys.exit(main())
