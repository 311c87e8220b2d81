"""Benchmark on a real local broker: baseline consumer, the worker, the core alone, latency.

    python -m bench [--events 1000000] [--customers 100000] [--partitions 8] [--rate 5000]

Prints one table. The baseline is a plain aiokafka consumer that only decodes the same
messages (the ceiling); the worker is ``amlstream worker`` with every rule on and state in
RocksDB with its changelog; the core is decode + apply from memory (the backtest path). The
latency run then produces, at a steady rate, transactions of the same customers with the same
skew (every 50th a large transfer, which the rules alert on), and samples the worker's memory
once a second: ``--latency-seconds 900`` makes it a long run.
"""

import argparse
import asyncio
import gc
import logging
import os
import random
import statistics
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import orjson

from agents import gc_policy, kafka_clients
from agents.cli_backtest import Job, run_jobs
from agents.fast_path import FETCH_MAX_WAIT_MS, FETCH_MIN_BYTES
from agents.local_broker import LocalBroker, free_port_pair
from agents.settings import Settings
from agents.topics import ensure_topics, wait_for_leaders
from agents.worker_process import WorkerProcess
from bench.workload import Workload, activity_weights, build, customer_key, transaction
from schemas.alerts import Alert
from streams.backtest import ONBOARDING, TRANSACTIONS, place, run_backtest
from streams.ruleset import load_rules


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


async def produce(settings: Settings, workload: Workload) -> None:
    producer = kafka_clients.producer(settings, linger_ms=50, max_batch_size=512 * 1024,
                                      acks=1)
    await producer.start()
    try:
        for topic, records in ((settings.onboarding_topic, workload.onboarding),
                               (settings.transactions_topic, workload.transactions)):
            for n, (key, value) in enumerate(records, 1):
                await producer.send(topic, value, key=key)
                if n % 200_000 == 0:
                    say(f"  {topic}: {n:,}/{len(records):,}")
            await producer.flush()
    finally:
        await producer.stop()


async def baseline(settings: Settings, total: int) -> float:
    """Events/s of a plain consumer that only decodes."""
    consumer = kafka_clients.consumer(settings, settings.onboarding_topic,
                                      settings.transactions_topic,
                                      group_id=f"bench-baseline-{uuid.uuid4().hex[:6]}",
                                      auto_offset_reset="earliest", max_poll_records=10_000,
                                      fetch_max_bytes=64 * 1024 * 1024)
    await consumer.start()
    seen = 0
    started = None
    try:
        while seen < total:
            batch = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            if started is None and batch:
                started = time.perf_counter()
            for records in batch.values():
                for record in records:
                    orjson.loads(record.value)
                seen += len(records)
    finally:
        await consumer.stop()
    return total / (time.perf_counter() - (started or time.perf_counter()))


def _inputs(workload: Workload) -> list[tuple[str, bytes | None, bytes]]:
    return [*((ONBOARDING, key, raw) for key, raw in workload.onboarding),
            *((TRANSACTIONS, key, raw) for key, raw in workload.transactions)]


@dataclass
class Core:
    rate: float
    """Events/s of the replay path, network stages included."""
    customer_bytes: float
    counterparty_bytes: list[int]
    flow_bytes: list[int]
    internal: dict[str, int]
    """Internal records by topic (provenance apart), from the in-memory stages."""


def core(workload: Workload, rules_path: Path, partitions: int) -> Core:
    """The replay path (decode, order, apply: ``streams.backtest``, one process, the network
    stages after S1) from memory: its rate, and the state bytes per customer, counterparty
    and flow customer."""
    rules = load_rules(rules_path)
    inputs = _inputs(workload)
    gc_policy.tune()  # as in the worker
    try:
        started = time.perf_counter()
        result = run_backtest(inputs, rules, partitions)
        elapsed = time.perf_counter() - started
    finally:
        gc.enable()  # this process goes on (and the test suite runs it in-process)
    network = result.network
    assert network is not None
    return Core(workload.total / elapsed,
                statistics.mean(len(s.to_bytes()) for s in result.states.values()),
                sorted(len(s.to_bytes()) for s in network.states["counterparty"].values()),
                sorted(len(s.to_bytes()) for s in network.states["flow"].values()),
                dict(network.records))


def parallel_backtest(workload: Workload, rules_path: Path, partitions: int,
                      jobs: int) -> float:
    """Events/s of ``amlstream backtest --jobs N`` over the same events (process start-up and
    the records' transfer to the processes included)."""
    records = place(_inputs(workload), partitions)
    started = time.perf_counter()
    run_jobs(records, Job(rules_path, (), partitions), jobs, "backtest")
    return len(records) / (time.perf_counter() - started)


def metric_sum(metrics_port: int, prefix: str, having: tuple[str, ...] = ()) -> float:
    """The sum of a metric's samples whose line starts with ``prefix`` (and holds one of
    ``having``, if given)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics",
                                    timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return 0.0
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(prefix) and (not having or any(h in line for h in having)))


def processed(metrics_port: int, inputs: tuple[str, ...]) -> float:
    """Input events processed or dead-lettered (the internal topics' records apart)."""
    return metric_sum(metrics_port, "amlstream_events_consumed_total{",
                      tuple(f'topic="{topic}"' for topic in inputs))


def drain(worker: WorkerProcess, metrics_port: int, total: int, timeout_s: float,
          inputs: tuple[str, ...]) -> float:
    """Events/s from the first processed event until all are processed."""
    deadline = time.monotonic() + timeout_s
    started = None
    called = time.perf_counter()
    while time.monotonic() < deadline:
        done = processed(metrics_port, inputs)
        if started is None and done > 0:
            started, first = time.perf_counter(), done
        if done >= total and started is not None:
            if done == first:  # all done by the first look (a tiny run): count from the call
                return total / (time.perf_counter() - called)
            return (total - first) / (time.perf_counter() - started)
        if not worker.running:
            raise RuntimeError("worker died:\n" + worker.log_tail())
        time.sleep(0.5)  # scraping /metrics costs the worker CPU: not too often
    raise RuntimeError(f"worker processed {processed(metrics_port, inputs):,.0f} of {total:,} "
                       "in time")


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Steady:
    """What the steady-rate run measured."""
    alert_ms: list[float]
    """occurred_at -> alert on the alerts topic, per alert."""
    in_worker_ms: list[float]
    """occurred_at -> the worker's send of the alert (the record's create time), per alert."""
    transport_ms: list[float]
    """produce -> a plain consumer of the transactions topic, per event."""
    rss_mb: list[float]
    """The worker's resident memory, once a second."""
    warm_up_ms: list[float] = field(default_factory=list)
    """occurred_at -> alert, for events of the warm-up (kept out of ``alert_ms``)."""
    measured_from_ms: float = float("inf")
    """Events that occurred (were produced) from then on are measured; earlier: warm-up."""


async def latency(settings: Settings, workload: Workload, rate: int, seconds: float,
                  warm_up_s: float, worker_pid: int) -> Steady:
    """At a steady produce rate, transactions of the preloaded customers (same skew; every
    50th a large transfer, which the rules alert on): occurred_at -> alert on the alerts topic;
    the same events' produce -> a plain consumer (the broker's and the clients' share); and the
    worker's memory over the run. Events of the first ``warm_up_s`` are measured apart: the
    worker has just drained the preload, and its first second at the steady rate was seen to
    carry the tail of that (p50 175 ms, up to 570 ms, then ~40-90 ms)."""
    consumer = kafka_clients.consumer(settings, settings.alerts_topic,
                                      auto_offset_reset="latest")
    plain = kafka_clients.consumer(settings, settings.transactions_topic,
                                   auto_offset_reset="latest",
                                   fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
                                   fetch_min_bytes=FETCH_MIN_BYTES)  # fetches as the worker's
    await consumer.start()
    await plain.start()
    await asyncio.sleep(1)
    # Sent every 5 ms with a 5 ms linger, as an upstream producer batches (Kafka's own default
    # linger): one produce request per record would cost the shared broker a core's share.
    producer = kafka_clients.producer(settings, linger_ms=5)
    await producer.start()
    steady = Steady([], [], [], [])

    async def collect() -> None:
        while True:
            batch = await consumer.getmany(timeout_ms=100)
            now = time.time()
            for records in batch.values():
                for record in records:
                    alert = Alert.model_validate_json(record.value)
                    if alert.rule_id != "large_transfer":
                        continue  # e.g. network alerts of the preload, completed now
                    occurred_ms = alert.triggered_at.timestamp() * 1000
                    if occurred_ms < steady.measured_from_ms:
                        steady.warm_up_ms.append(now * 1000 - occurred_ms)
                        continue
                    steady.alert_ms.append(now * 1000 - occurred_ms)
                    steady.in_worker_ms.append(record.timestamp - occurred_ms)

    async def collect_plain() -> None:
        while True:
            batch = await plain.getmany(timeout_ms=100)
            now = time.time()
            steady.transport_ms.extend(
                now * 1000 - record.timestamp for records in batch.values()
                for record in records if record.timestamp >= steady.measured_from_ms)

    async def sample_memory() -> None:
        while True:
            steady.rss_mb.append(rss_mb(worker_pid))
            await asyncio.sleep(1)

    tasks = [asyncio.create_task(job()) for job in (collect, collect_plain, sample_memory)]
    rng = random.Random(2)
    customers = rng.choices(range(workload.customers),
                            weights=activity_weights(workload.customers), k=rate * 4)
    sent = 0
    started = time.perf_counter()
    steady.measured_from_ms = (time.time() + warm_up_s) * 1000
    while time.perf_counter() - started < seconds:
        due = int((time.perf_counter() - started) * rate)
        for _ in range(due - sent):
            customer = customers[sent % len(customers)]
            usd = "300000.00" if sent % 50 == 0 else f"{rng.uniform(5, 900):.2f}"
            await producer.send(settings.transactions_topic, transaction(
                f"lat-{sent}", customer, datetime.now(UTC), usd, out=sent % 2 == 0),
                key=customer_key(customer))
            sent += 1
        await asyncio.sleep(0.005)
    await producer.stop()
    await asyncio.sleep(3)
    for task in tasks:
        task.cancel()
    await consumer.stop()
    await plain.stop()
    if not steady.alert_ms or not steady.transport_ms:
        raise RuntimeError("no alert arrived during the latency run")
    return steady


def percentiles(values: list[float]) -> str:
    if len(values) < 2:
        return f"{len(values)} value(s): too few for percentiles"
    q = statistics.quantiles(values, n=100)
    return f"p50 {q[49]:,.0f} ms, p99 {q[98]:,.0f} ms"


class BenchWorker(WorkerProcess):
    metrics_port: int


def _worker(settings: Settings, work: Path, group: str, network: bool) -> BenchWorker:
    """A worker of its own consumer group (``group``) over the preloaded inputs."""
    metrics_port = free_port_pair()
    worker = BenchWorker({
        "AMLSTREAM_BROKER": settings.broker, "AMLSTREAM_APP_ID": group,
        "AMLSTREAM_PARTITIONS": str(settings.partitions),
        "AMLSTREAM_ONBOARDING_TOPIC": settings.onboarding_topic,
        "AMLSTREAM_TRANSACTIONS_TOPIC": settings.transactions_topic,
        "AMLSTREAM_DECISIONS_TOPIC": settings.decisions_topic,
        "AMLSTREAM_ALERTS_TOPIC": settings.alerts_topic,
        "AMLSTREAM_DEAD_LETTER_TOPIC": settings.dead_letter_topic,
        "AMLSTREAM_RISK_TOPIC": settings.risk_topic,
        "AMLSTREAM_RULES_TOPIC": settings.rules_topic,
        "AMLSTREAM_ADDRESS_INTEL_TOPIC": settings.address_intel_topic,
        "AMLSTREAM_NETWORK": "true" if network else "false",
        "AMLSTREAM_DATA_DIR": str(work / f"state-{group}"),
        "AMLSTREAM_METRICS_PORT": str(metrics_port), "AMLSTREAM_LOG_LEVEL": "warning",
    }, work / f"worker-{group}.log")
    worker.metrics_port = metrics_port
    return worker


def _internal_rows(metrics_port: int, transactions: int) -> list[tuple[str, str]]:
    """Internal records the worker sent, per input transaction."""
    sent = {topic: metric_sum(metrics_port, "amlstream_network_records_total{",
                              (f'topic="{topic}"',)) for topic in ("cp-legs", "flows")}
    markers = metric_sum(metrics_port, "amlstream_network_markers_total")
    return [("internal records per input transaction",
             f"cp-legs {sent['cp-legs'] / transactions:.2f}, flows "
             f"{sent['flows'] / transactions:.2f} (legs and provenance), markers "
             f"{markers / transactions:.3f}")]


def _sizes(sizes: list[int]) -> str:
    if not sizes:
        return "(none)"
    p99 = sizes[min(len(sizes) - 1, len(sizes) * 99 // 100)]
    return (f"mean {statistics.mean(sizes):,.0f} bytes, p99 {p99:,} bytes, "
            f"max {sizes[-1]:,} bytes ({len(sizes):,} of them)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--rate", type=int, default=5000, help="events/s in the latency run")
    parser.add_argument("--latency-seconds", type=float, default=20.0)
    parser.add_argument("--warm-up-seconds", type=float, default=2.0,
                        help="the start of the latency run, measured apart")
    parser.add_argument("--timeout-s", type=float, default=1800.0)
    parser.add_argument("--record", type=Path, default=None, metavar="FILE",
                        help="also add the run's table, dated and with its command, at the top "
                        "of the measurement history FILE (make bench: docs/performance.md)")
    args = parser.parse_args(argv)
    if not 0 <= args.warm_up_seconds < args.latency_seconds:
        parser.error("--warm-up-seconds must be at least 0 and less than --latency-seconds")

    work = Path(tempfile.mkdtemp(prefix="amlstream-bench-"))
    broker = LocalBroker(port=free_port_pair(), data_dir=work / "broker")
    name = f"bench-{uuid.uuid4().hex[:6]}"
    settings = Settings(broker=f"kafka://{broker.bootstrap}", app_id=name,
                        partitions=args.partitions, onboarding_topic=f"{name}-onboarding",
                        transactions_topic=f"{name}-transactions", alerts_topic=f"{name}-alerts",
                        decisions_topic=f"{name}-decisions",
                        dead_letter_topic=f"{name}-dead-letters", risk_topic=f"{name}-risk",
                        rules_topic=f"{name}-rules",
                        address_intel_topic=f"{name}-address-intel")
    say(f"building {args.events:,} transactions over {args.customers:,} customers ...")
    workload = build(args.events, args.customers, datetime.now(UTC))
    say("starting a local broker ...")
    broker.start()
    rows: list[tuple[str, str]] = []
    try:
        asyncio.run(ensure_topics(settings))
        asyncio.run(wait_for_leaders(settings, list(settings.input_topics)))
        # the producer retries a fresh topic's NotLeaderForPartition itself: only errors show
        logging.getLogger("aiokafka").setLevel(logging.ERROR)
        say(f"preloading {workload.total:,} events into {args.partitions} partitions ...")
        asyncio.run(produce(settings, workload))
        say("baseline: plain aiokafka consumer, decode only ...")
        ceiling = asyncio.run(baseline(settings, workload.total))
        rows.append(("baseline (aiokafka getmany + orjson.loads)", f"{ceiling:,.0f} events/s"))
        say("core alone: decode + apply from memory ...")
        measured = core(workload, settings.rules_path, args.partitions)
        core_rate = measured.rate
        rows.append(("core alone = backtest, 1 job (decode, order, apply; network stages)",
                     f"{core_rate:,.0f} events/s"))
        jobs = min(len(os.sched_getaffinity(0)), args.partitions)
        say(f"backtest with {jobs} jobs ...")
        rate = parallel_backtest(workload, settings.rules_path, args.partitions, jobs)
        rows.append((f"backtest, {jobs} jobs (same events)",
                     f"{rate:,.0f} events/s = {rate / core_rate:.2f} x 1 job"))
        inputs = (settings.onboarding_topic, settings.transactions_topic)
        say("worker, network stages off: draining the preloaded events ...")
        off = _worker(settings, work, f"{name}-off", network=False)
        off.start()
        try:
            off_rate = drain(off, off.metrics_port, workload.total, args.timeout_s, inputs)
        finally:
            off.stop()
        rows.append(("worker, network stages off (S1: all rules, RocksDB + changelog)",
                     f"{off_rate:,.0f} events/s = {off_rate / ceiling:.1%} of baseline"))
        say("worker, network stages on: draining the preloaded events ...")
        worker = _worker(settings, work, f"{name}-on", network=True)
        worker.start()
        try:
            worker_rate = drain(worker, worker.metrics_port, workload.total, args.timeout_s,
                                inputs)
            rows.append(("worker (all rules), network stages on",
                         f"{worker_rate:,.0f} events/s = {worker_rate / off_rate:.1%} of off, "
                         f"{worker_rate / ceiling:.1%} of baseline"))
            rows.extend(_internal_rows(worker.metrics_port, len(workload.transactions)))
            say(f"latency at {args.rate:,} events/s for {args.latency_seconds:.0f} s ...")
            assert worker.process is not None
            steady = asyncio.run(latency(settings, workload, args.rate, args.latency_seconds,
                                         args.warm_up_seconds, worker.process.pid))
            rows.append((f"event-to-alert latency at {args.rate:,}/s "
                         f"({len(steady.alert_ms)} alerts)", percentiles(steady.alert_ms)))
            rows.append(("  event -> the worker's send of the alert",
                         percentiles(steady.in_worker_ms)))
            rows.append(("  produce -> plain consumer, same events",
                         percentiles(steady.transport_ms)))
            rows.append((f"  the first {args.warm_up_seconds:.0f} s, apart (warm-up)",
                         percentiles(steady.warm_up_ms)))
            rows.append(("worker peak RSS", f"{rss_mb(worker.process.pid, 'VmHWM'):,.0f} MB"))
            memory = steady.rss_mb
            rows.append((f"worker RSS over the {args.latency_seconds:.0f} s steady run",
                         f"{memory[0]:,.0f} MB at start, {max(memory):,.0f} MB at most, "
                         f"{memory[-1]:,.0f} MB at end"))
        finally:
            worker.stop()
        rows.append(("state per customer (encoded)", f"{measured.customer_bytes:,.0f} bytes"))
        rows.append(("state per counterparty (S2, encoded)", _sizes(measured.counterparty_bytes)))
        rows.append(("provenance state per network-active customer (S3)",
                     _sizes(measured.flow_bytes)))
    finally:
        broker.stop()
    width = max(len(label) for label, _ in rows)
    table = [f"  {label:<{width}}  {value}" for label, value in rows]
    print(f"\namlstream benchmark: {args.events:,} transactions + {args.customers:,} onboarding, "
          f"{args.customers:,} customers, {args.partitions} partitions")
    print("\n".join(table))
    if args.record is not None:
        command = " ".join(["python -m bench", *(argv if argv is not None else sys.argv[1:])])
        record_run(args.record, command, table)
        say(f"recorded at the top of {args.record}")
    return 0


def record_run(path: Path, command: str, table: list[str]) -> None:
    """Insert the run (UTC date, command, table) before the first section of ``path``, the
    measurement history: newest first, written by the bench itself."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Performance\n"
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = "\n".join([f"## {when}: `{command}`", "", "```", *table, "```", "", ""])
    lines = text.splitlines(keepends=True)
    first = next((n for n, line in enumerate(lines) if line.startswith("## ")), len(lines))
    head = "".join(lines[:first])
    if not head.endswith("\n\n"):
        head = head.rstrip("\n") + "\n\n"
    path.write_text(head + section + "".join(lines[first:]), encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
