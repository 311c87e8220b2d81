"""``amlstream backtest``: what a rule set would have raised on past events, and how two rule
sets, or the values of one threshold, compare. The events go through the worker's own replay
path (``streams.replay``) in memory; nothing is read from or written to Kafka."""

import asyncio
import gc
import signal
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import click
import orjson

from agents import broker_wait, kafka_clients
from agents.cli_common import Arg, Command, UserError, broker_option
from agents.settings import Settings
from schemas.alerts import Alert
from streams.backtest import (
    INPUT_KINDS,
    BacktestResult,
    NetworkTiming,
    place,
    run_network_stages,
    run_records,
)
from streams.jsonl import Line, read_events
from streams.replay import InputRecord
from streams.ruleset import RuleSetError, load_rules
from streams.summary import (
    SweepPoint,
    diff,
    render_diff,
    render_summary,
    render_sweep,
    summarize,
)

PROGRESS_EVERY_S = 2.0
DEFAULT_TIMING = NetworkTiming()
TOPIC_WAIT_MS = 5000


@dataclass(frozen=True)
class Job:
    """What each process of a run needs besides its records."""
    rules_path: Path
    overrides: tuple[tuple[str, str], ...]
    partitions: int
    network: NetworkTiming | None = DEFAULT_TIMING
    """The network stages' timing (None: S1 alone, as ``AMLSTREAM_NETWORK=off``)."""


def _event_time_option(ctx: click.Context, param: click.Parameter,
                       value: str | None) -> datetime | None:
    return None if value is None else _event_time(value)


@click.command(
    cls=Command, short_help="Run a rule set over past events (JSON Lines) and summarise.",
    help="Run a rule set over past events and summarise what it would have raised; compare "
    "two rule sets (--compare), or the values of one setting (--sweep). The events go "
    "through the worker's own replay path in memory: nothing is read from or written to "
    "Kafka, except with --topics or --compare-topics.")
@click.argument("events", cls=Arg, nargs=-1, type=click.Path(path_type=Path),
                help='JSON Lines files of events, one {"topic": ..., "event": {...}} a line.')
@click.option("--topics", is_flag=True,
              help="Instead of files: the input topics on the broker (AMLSTREAM_BROKER), read "
              "whole without joining any group.")
@click.option("--since", default=None, metavar="TIME", callback=_event_time_option,
              help="With --topics: events at or after this event time (ISO-8601).")
@click.option("--until", default=None, metavar="TIME", callback=_event_time_option,
              help="With --topics: events before this event time (ISO-8601).")
@click.option("--compare-topics", nargs=2, default=None, metavar="A B",
              help="Instead of events: the diff of two alert topics on the broker, e.g. "
              "alerts and a shadow run's NAME-alerts (AMLSTREAM_BROKER).")
@click.option("--rules", type=click.Path(path_type=Path), default=None, metavar="FILE",
              help="Rule file (default: AMLSTREAM_RULES_PATH, config/rules.yaml).")
@click.option("--compare", type=click.Path(path_type=Path), default=None, metavar="FILE2",
              help="A second rule file: the same events under both, and the diff.")
@click.option("--sweep", default=None, metavar="SETTING=V1,V2,...",
              help="Alert and customer counts for each value of one setting, e.g. "
              "structuring.margin_pct=5,10,15 or tiers.1.large_transfer_usd=5000,10000.")
@click.option("--out", type=click.Path(path_type=Path), default=None, metavar="DIR",
              help="Write alerts, risk changes and dead letters as JSON Lines here.")
@click.option("--report", type=click.Path(path_type=Path), default=None, metavar="FILE.html",
              help="Write a self-contained HTML report with plots.")
@click.option("--partitions", type=int, default=None, metavar="N",
              help="Input partitions, as in production (default: AMLSTREAM_PARTITIONS).")
@click.option("--jobs", type=int, default=None, metavar="N",
              help="Processes, each taking some partitions (default: the cores, at most the "
              "partitions); the same alerts as one.")
@click.option("--network-lateness-s", type=int, default=None, metavar="S",
              help="As the worker's AMLSTREAM_NETWORK_LATENESS_S (default: it).")
@click.option("--network-hop-delay-s", type=int, default=None, metavar="S",
              help="As the worker's AMLSTREAM_NETWORK_HOP_DELAY_S (default: it).")
@broker_option
def backtest(**options: Any) -> int:
    return run(SimpleNamespace(**options))


def network_timing(settings: Settings, args: Any) -> NetworkTiming | None:
    """The worker's network settings, or the options that override them."""
    if not settings.network:
        return None
    lateness_s = args.network_lateness_s
    hop_delay_s = args.network_hop_delay_s
    return NetworkTiming(settings.network_lateness_s if lateness_s is None else lateness_s,
                         settings.network_hop_delay_s if hop_delay_s is None else hop_delay_s)


def run(args: Any) -> int:
    try:
        return _run(args)
    except UserError as exc:
        print(f"amlstream backtest: {exc}", file=sys.stderr)
        return 2


def _read(paths: list[Path]) -> list[tuple[Path, Line]]:
    lines = []
    for path in paths:
        try:
            lines += [(path, line) for line in read_events(path)]
        except OSError as exc:
            raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
    return lines


def _check_rules(path: Path, overrides: tuple[tuple[str, str], ...] = ()) -> str:
    try:
        return load_rules(path, dict(overrides) or None).version
    except RuleSetError as exc:
        raise UserError(f"{path}: {exc}") from None


def _run(args: Any) -> int:
    settings = Settings()
    if args.compare_topics is not None or args.topics:
        broker_wait.wait_for_broker(settings)
    if args.compare_topics is not None:
        topic_a, topic_b = args.compare_topics
        alerts_a, alerts_b = asyncio.run(read_alert_topics(settings, [topic_a, topic_b]))
        print(f"{topic_a}: {len(alerts_a):,} alerts; {topic_b}: {len(alerts_b):,} alerts")
        print(render_diff(diff(alerts_a, alerts_b), topic_a, topic_b))
        return 0
    if not args.events and not args.topics:
        raise UserError("give JSON Lines files of events, --topics, or --compare-topics A B")
    partitions = args.partitions or settings.partitions
    if partitions < 1 or (args.jobs is not None and args.jobs < 1):
        raise UserError("--partitions and --jobs must be at least 1")
    jobs = min(args.jobs or _cores(), partitions)
    rules_a = args.rules or settings.rules_path
    lines: list[tuple[Path, Line]] | None = None
    if args.topics:
        records, partitions = asyncio.run(read_input_topics(settings, args.since, args.until))
        jobs = min(jobs, partitions)
        source = f"{settings.onboarding_topic} and {settings.transactions_topic}"
    else:
        lines = _read(args.events)
        records = place([(topic, key, value) for _, (_, topic, key, value) in lines],
                        partitions)
        source = ", ".join(str(p) for p in args.events)
    print(f"amlstream backtest: {len(records):,} events from {source}; {partitions} "
          f"partitions, {jobs} job{'s' if jobs > 1 else ''}", file=sys.stderr)
    timing = network_timing(settings, args)
    runs = [(_check_rules(rules_a), Job(rules_a, (), partitions, timing))]
    if args.compare is not None:
        runs.append((_check_rules(args.compare), Job(args.compare, (), partitions, timing)))
    results = []
    for label, job in runs:
        result = run_jobs(records, job, jobs, label)
        results.append((label, result))
        print(render_summary(summarize(label, result)))
        if args.out is not None:
            _write_out(args.out / _slug(label), result, records, lines)
        if result.interrupted:
            print("interrupted: the summary covers the events read so far", file=sys.stderr)
            return 130
    if len(results) == 2:
        (label_a, a), (label_b, b) = results
        print(render_diff(diff(a.alerts, b.alerts), label_a, label_b))
    sweep = None
    if args.sweep is not None:
        sweep = _sweep(args.sweep, records, rules_a, partitions, jobs, timing)
        print(render_sweep(*sweep))
    if args.report is not None:
        _report(args.report, results, sweep)
    return 0


def run_jobs(records: list[InputRecord], job: Job, jobs: int, label: str) -> BacktestResult:
    """S1 over the records, in ``jobs`` processes, then the network stages over what S1 sent
    them (in this process: they join all partitions)."""
    result = _s1_jobs(records, job, jobs, label)
    if job.network is not None and not result.interrupted:
        rules = load_rules(job.rules_path, dict(job.overrides) or None)
        run_network_stages(result, rules, job.partitions, job.network)
        result.alerts.sort(key=lambda alert: (alert.triggered_at, alert.alert_id))
    return result


def _s1_jobs(records: list[InputRecord], job: Job, jobs: int, label: str) -> BacktestResult:
    progress = _Progress(label)
    if jobs == 1:
        return _job(records, job, progress)
    # Each process takes the records of its partitions (partition % jobs): forked, it finds
    # them in memory (nothing is pickled but its results); spawned (where fork is missing),
    # they are sent to it.
    global _RECORDS
    _RECORDS = records
    shares = [[i for i, record in enumerate(records) if record.partition % jobs == n]
              for n in range(jobs)]
    fork = "fork" in get_all_start_methods()
    context = get_context("fork" if fork else "spawn")
    # Ctrl-C: the processes ignore it (wherever it would find them, it could kill one); this
    # one sets ``stop``, which each job checks between two steps and then ends early with what
    # it did (``interrupted``), and waits for them.
    stop = context.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        with ProcessPoolExecutor(max_workers=jobs, mp_context=context,
                                 initializer=_in_job_process, initargs=(stop,)) as pool:
            futures = [pool.submit(_share_job, n if fork else [records[i] for i in share],
                                   jobs, job, f"{label}, job {n + 1}/{jobs}")
                       for n, share in enumerate(shares)]
            parts = [future.result() for future in futures]
    finally:
        signal.signal(signal.SIGINT, previous)
        _RECORDS = []
    merged = BacktestResult()
    for share, part in zip(shares, parts, strict=True):
        merged.alerts += part.alerts
        merged.risk_changes += part.risk_changes
        merged.rejected += [(share[position], why) for position, why in part.rejected]
        merged.consumed.update(part.consumed)
        merged.events_applied += part.events_applied
        merged.interrupted |= part.interrupted
        merged.internal.update(part.internal)  # each job's own partitions
        merged.clocks.update(part.clocks)
    merged.alerts.sort(key=lambda alert: (alert.triggered_at, alert.alert_id))
    merged.rejected.sort(key=lambda rejected: rejected[0])
    progress.done(len(records))
    return merged


_RECORDS: list[InputRecord] = []
"""The records of a parallel run, for its forked processes."""
_STOP: Any = None
"""Set by the parent process on Ctrl-C (in a job's process)."""


def _in_job_process(stop: Any) -> None:
    global _STOP
    _STOP = stop
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _share_job(share: int | list[InputRecord], jobs: int, job: Job,
               label: str) -> BacktestResult:
    if isinstance(share, int):
        share = [record for record in _RECORDS if record.partition % jobs == share]
    return _job(share, job, _Progress(label, _STOP))


def _job(records: list[InputRecord], job: Job, progress: Any = None) -> BacktestResult:
    rules = load_rules(job.rules_path, dict(job.overrides) or None)
    collecting = gc.isenabled()
    gc.disable()  # as in the worker (agents.gc_policy): young collections find nothing here
    try:
        result = run_records(records, rules, job.partitions, progress=progress,
                             network=job.network)
    finally:
        if collecting:
            gc.enable()
    result.states = {}  # not needed here, and costly to send between processes
    return result


def _sweep(spec: str, records: list[InputRecord], rules_path: Path,
           partitions: int, jobs: int, timing: NetworkTiming | None
           ) -> tuple[str, list[SweepPoint]]:
    setting, _, values = spec.partition("=")
    if not setting or not values:
        raise UserError(f"--sweep {spec!r}: write SETTING=V1,V2,... "
                        f"(e.g. structuring.margin_pct=5,10,15)")
    points = []
    for value in values.split(","):
        overrides = ((setting, value.strip()),)
        label = _check_rules(rules_path, overrides)
        result = run_jobs(records, Job(rules_path, overrides, partitions, timing), jobs, label)
        points.append(SweepPoint(value.strip(), len(result.alerts),
                                 len({a.customer_id for a in result.alerts})))
    return setting, points


def _event_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not an ISO-8601 time such as 2026-11-01T00:00:00Z") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _in_range(value: bytes, since: datetime | None, until: datetime | None) -> bool:
    """Whether an input's event time is in [since, until); an input whose time cannot be
    read is kept (the replay dead-letters it, as the worker did)."""
    if since is None and until is None:
        return True
    try:
        moment = datetime.fromisoformat(orjson.loads(value)["occurred_at"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return True
    if moment.tzinfo is None:
        return True
    return (since is None or moment >= since) and (until is None or moment < until)


async def read_to_end(settings: Settings, *topics: str) -> tuple[list[Any], int]:
    """Every record of ``topics`` from their start to their end offsets now, by partition in
    offset order, without joining any group or committing; and the partition count."""
    consumer = kafka_clients.consumer(settings, *topics, auto_offset_reset="earliest",
                                      enable_auto_commit=False)
    await kafka_clients.start(consumer, settings)
    records: list[Any] = []
    try:
        batch = await consumer.getmany(timeout_ms=TOPIC_WAIT_MS)
        tps = sorted(consumer.assignment())
        if not tps:
            raise UserError(f"no topic {' or '.join(topics)} on {settings.bootstrap}")
        ends = await consumer.end_offsets(tps)
        while True:
            for tp_records in batch.values():
                records += tp_records
            positions = [await consumer.position(tp) for tp in tps]
            if all(position >= ends[tp] for position, tp in zip(positions, tps, strict=True)):
                break
            batch = await consumer.getmany(timeout_ms=1000)
    finally:
        await consumer.stop()
    records.sort(key=lambda r: (r.topic, r.partition, r.offset))
    return records, max(tp.partition for tp in tps) + 1


async def read_input_topics(settings: Settings, since: datetime | None,
                            until: datetime | None) -> tuple[list[InputRecord], int]:
    """The input topics, read whole (``read_to_end``), the events in [since, until) kept."""
    kinds = dict(zip(settings.input_topics, INPUT_KINDS, strict=True))
    read, partitions = await read_to_end(settings, *kinds)
    return [InputRecord(kinds[r.topic], r.partition, r.offset, r.key, r.value or b"")
            for r in read if _in_range(r.value or b"", since, until)], partitions


async def read_alert_topics(settings: Settings, topics: list[str]) -> list[list[Alert]]:
    """Every alert on each topic, read whole (``read_to_end``)."""
    return [[Alert.model_validate_json(r.value) for r in (await read_to_end(settings, topic))[0]]
            for topic in topics]


def _write_out(directory: Path, result: BacktestResult, records: list[InputRecord],
               lines: list[tuple[Path, Line]] | None) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with (directory / "alerts.jsonl").open("wb") as out:
            out.writelines(alert.model_dump_json().encode() + b"\n" for alert in result.alerts)
        with (directory / "risk-changes.jsonl").open("wb") as out:
            out.writelines(change.model_dump_json().encode() + b"\n"
                           for change in result.risk_changes)
        with (directory / "dead-letters.jsonl").open("wb") as out:
            for position, rejected in result.rejected:
                record = records[position]
                where: dict[str, Any] = {"topic": record.topic, "partition": record.partition,
                                         "offset": record.offset}
                if lines is not None:
                    path, (number, _, _, _) = lines[position]
                    where = {"file": str(path), "line": number, "topic": record.topic}
                out.write(orjson.dumps({**where, "error_kind": rejected.kind.value,
                                        "reasons": rejected.reasons}) + b"\n")
    except OSError as exc:
        raise UserError(f"cannot write to {directory}: {exc.strerror or exc}") from None
    print(f"  written: {directory}/alerts.jsonl, risk-changes.jsonl, dead-letters.jsonl",
          file=sys.stderr)


def _report(path: Path, results: list[tuple[str, BacktestResult]],
            sweep: tuple[str, list[SweepPoint]] | None) -> None:
    from decimal import Decimal, InvalidOperation

    from agents.report import ReportRun, Sweep, render_report  # matplotlib: only here

    report_sweep = None
    if sweep is not None:
        setting, points = sweep
        group, _, parameter = setting.rpartition(".")
        try:
            values = [(Decimal(p.value), p.alerts, p.customers_alerted) for p in points]
        except InvalidOperation:
            raise UserError(f"--report plots a sweep of numbers; {setting} took "
                            f"{', '.join(p.value for p in points)}") from None
        report_sweep = Sweep(group or setting, parameter, values)
    runs = [ReportRun.from_backtest(label, result) for label, result in results]
    try:
        path.write_text(render_report("amlstream backtest", runs, report_sweep),
                        encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None
    print(f"  report: {path} (open it in a browser)", file=sys.stderr)


def _slug(label: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in label)


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1)


class _Progress:
    """Events/s and what is left, on the terminal every few seconds; in a job's process, the
    point where the parent's Ctrl-C (``stop``) ends the run."""

    def __init__(self, label: str, stop: Any = None) -> None:
        self.label = label
        self.stop = stop
        self.started = time.monotonic()
        self.shown = self.started

    def __call__(self, done: int, total: int) -> None:
        if self.stop is not None and self.stop.is_set():
            raise KeyboardInterrupt  # run_records ends early, with what it did
        now = time.monotonic()
        if now - self.shown < PROGRESS_EVERY_S and done < total:
            return
        self.shown = now
        rate = done / max(now - self.started, 1e-9)
        left_s = (total - done) / rate if rate else 0.0
        print(f"  {self.label}: {done:,}/{total:,} events, {rate:,.0f} events/s, "
              f"~{left_s:,.0f} s left", file=sys.stderr, flush=True)

    def done(self, total: int) -> None:
        self(total, total)
