"""``amlstream evaluate``: run a rule set over labelled events and score its alerts.

``--amlsim DIR`` converts an IBM AMLSim sample (``streams.amlsim``); ``--events FILE.jsonl
--labels FILE.csv`` reads events as JSON Lines (``streams.jsonl``) and labels as CSV
(``streams.labels``). The events go through the in-memory backtest (the same decoding and rules
as the worker); the alerts are scored per customer (``streams.evaluation``).
"""

import json
import sys
import time
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import click

from agents.cli_common import Command
from agents.settings import Settings
from streams.amlsim import AmlsimError, AmlsimOptions, events, read_sample
from streams.backtest import run_backtest
from streams.evaluation import as_json, render
from streams.evaluation import evaluate as score
from streams.jsonl import read_events
from streams.labels import Label, LabelError, read_labels
from streams.ruleset import RuleSetError, load_rules

PROG = "amlstream evaluate"


class _Fail(Exception):
    """One line for stderr; exit 2."""


def _start(text: str) -> datetime:
    try:
        start = datetime.fromisoformat(text)
    except ValueError:
        raise _Fail(f"--start {text!r}: not an ISO-8601 time") from None
    if start.tzinfo is None:
        raise _Fail(f"--start {text!r}: give a timezone, e.g. 2026-01-01T00:00:00Z")
    return start


def _jsonl(path: Path, line_of: list[int]) -> Iterator[tuple[str, bytes | None, bytes]]:
    """The backtest's inputs; records each input's line number in ``line_of``."""
    try:
        for line, topic, key, raw in read_events(path):
            line_of.append(line)
            yield topic, key, raw
    except OSError as exc:
        raise _Fail(f"{path}: cannot read events: {exc.strerror or exc}") from None


def _progress(inputs: Iterable[tuple[str, bytes | None, bytes]],
              every: int = 50_000) -> Iterator[tuple[str, bytes | None, bytes]]:
    """Pass ``inputs`` through, counting them on stderr when it is a terminal."""
    if not sys.stderr.isatty():
        yield from inputs
        return
    count = 0
    for count, item in enumerate(inputs, start=1):
        if count % every == 0:
            print(f"\r{PROG}: {count} events ...", end="", file=sys.stderr, flush=True)
        yield item
    print(f"\r{PROG}: {count} events    ", file=sys.stderr, flush=True)


def _inputs(args: Any, line_of: list[int]) -> tuple[
        str, Iterable[tuple[str, bytes | None, bytes]], dict[str, Label]]:
    if args.amlsim:
        if args.labels:
            raise _Fail("--labels goes with --events; an AMLSim sample's labels are in nodes.csv")
        options = AmlsimOptions(start=_start(args.start), step_s=args.step_s,
                                kyc_tier=args.kyc_tier, country=args.country.upper())
        sample = read_sample(Path(args.amlsim))
        return f"AMLSim sample {args.amlsim}", events(sample, options), sample.labels()
    if not args.labels:
        raise _Fail("--events needs --labels FILE.csv (customer_id,label[,typology])")
    labels = read_labels(Path(args.labels))
    events_path = Path(args.events)
    if not events_path.is_file():
        raise _Fail(f"{events_path}: no such file")
    return f"events {args.events}, labels {args.labels}", _jsonl(events_path, line_of), labels


def _run(args: Any) -> dict[str, Any]:
    rules_path = Path(args.rules) if args.rules else Settings().rules_path
    try:
        rules = load_rules(rules_path)
    except RuleSetError as exc:
        raise _Fail(str(exc) if str(rules_path) in str(exc) else f"{rules_path}: {exc}") from None
    started = time.perf_counter()
    line_of: list[int] = []
    source, inputs, labels = _inputs(args, line_of)
    result = run_backtest(_progress(inputs), rules)
    enabled = [name for name, config in rules.config.rules if config.enabled]
    evaluation = score(result.alerts, labels, enabled)
    rejected = [f"{'line ' + str(line_of[p]) if line_of else 'input ' + str(p + 1)}: {why}"
                for p, why in result.rejected[:3]]
    return {"source": source, "rules": str(rules_path), "rule_set_version": rules.version,
            "customers_labelled": len(labels), "events_applied": result.events_applied,
            "events_rejected": len(result.rejected), "first_rejected": rejected,
            "alerts": len(result.alerts), "runtime_s": round(time.perf_counter() - started, 1),
            "evaluation": evaluation}


def run(args: Any) -> int:
    try:
        report = _run(args)
    except (_Fail, AmlsimError, LabelError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    evaluation = report.pop("evaluation")
    if args.json:
        print(json.dumps({**report, **as_json(evaluation)}, indent=2))
        return 0
    print(f"{report['source']}; rule set {report['rule_set_version']} ({report['rules']})")
    print(f"{report['customers_labelled']} labelled customers, {report['events_applied']} "
          f"events applied, {report['events_rejected']} rejected, {report['alerts']} alerts, "
          f"{report['runtime_s']} s")
    for line in report["first_rejected"]:
        print(f"  rejected {line}")
    print()
    print(render(evaluation), end="")
    return 0


@click.command(
    cls=Command, short_help="Run the rules over labelled events; recall, false positives.",
    help="Run a rule set over labelled events and score its alerts per customer: recall, "
    "false positives and hits per rule. The events are an IBM AMLSim sample (--amlsim DIR) "
    "or JSON Lines with a CSV of labels (--events FILE.jsonl --labels FILE.csv).")
@click.option("--amlsim", default=None, metavar="DIR",
              help="An IBM AMLSim sample folder (nodes.csv, transactions.csv).")
@click.option("--events", default=None, metavar="FILE.jsonl",
              help='JSON Lines of {"topic": ..., "event": {...}} (needs --labels).')
@click.option("--labels", default=None, metavar="FILE.csv",
              help="customer_id,label[,typology]; label suspicious or normal.")
@click.option("--rules", default=None, metavar="FILE",
              help="Rule file (default: AMLSTREAM_RULES_PATH).")
@click.option("--step-s", type=int, default=86_400, show_default=True,
              help="AMLSim: seconds per time step (1 day).")
@click.option("--start", default="2026-01-01T00:00:00Z", show_default=True,
              help="AMLSim: onboarding time and start of step 0.")
@click.option("--kyc-tier", type=click.IntRange(0, 3), default=1, show_default=True,
              help="AMLSim: KYC tier of every customer.")
@click.option("--country", default="US", show_default=True,
              help="AMLSim: country of every customer.")
@click.option("--json", "json_output", is_flag=True, help="Machine-readable output (JSON).")
def evaluate(**options: Any) -> int:
    if (options["amlsim"] is None) == (options["events"] is None):
        raise click.UsageError("give one of --amlsim DIR and --events FILE.jsonl")
    options["json"] = options.pop("json_output")
    return run(SimpleNamespace(**options))
