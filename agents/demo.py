"""``amlstream demo``: a fresh local broker, a worker, a synthetic stream, alerts as they come.

Everything it starts lives under ``$AMLSTREAM_CACHE`` (default ``~/.cache/amlstream``) and is
wiped at the start of each demo, so every run shows the same alerts.
"""

import asyncio
import logging
import signal
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agents import kafka_clients
from agents.alert_tail import alert_line
from agents.settings import Settings
from agents.topics import ensure_topics, wait_for_leaders
from agents.web_pages import customer_href
from agents.worker_process import WorkerProcess
from schemas.alerts import Alert
from streams.jsonl import message_line
from streams.rules import RULE_IDS
from streams.synthetic import (
    Message,
    Scenario,
    background_scenarios,
    bad_messages,
    planted_scenarios,
    to_messages,
)
from streams.synthetic_network import NETWORK_PLANTED, network_scenarios

DEMO_PORT = 19092
METRICS_PORT = 9464
WEB_PORT = 6066
SETTLE_TIMEOUT_S = 180.0


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


async def _feed(settings: Settings, messages: list[Message]) -> None:
    producer = kafka_clients.producer(settings, linger_ms=20, acks="all")
    await kafka_clients.start(producer, settings)
    try:
        topic_names = {"onboarding": settings.onboarding_topic,
                       "transactions": settings.transactions_topic}
        step = max(len(messages) // 10, 1)
        for n, message in enumerate(messages, 1):
            await producer.send(topic_names[message.topic], message.value, key=message.key)
            next_topic = messages[n].topic if n < len(messages) else None
            # Like upstream systems, finish writing onboarding before the transactions that
            # depend on it: batches to different topics are otherwise written in any order.
            if n % step == 0 or next_topic != message.topic:
                await producer.flush()
                say(f"  fed {n:,}/{len(messages):,} events")
    finally:
        await producer.stop()


async def _watch_alerts(settings: Settings, expected_rules: set[str],
                        timeout_s: float) -> tuple[Counter[str], set[tuple[str, str]]]:
    consumer = kafka_clients.consumer(settings, settings.alerts_topic,
                                      auto_offset_reset="earliest", enable_auto_commit=False)
    await kafka_clients.start(consumer, settings)
    by_rule: Counter[str] = Counter()
    seen: set[tuple[str, str]] = set()
    deadline = time.monotonic() + timeout_s
    quiet_since = time.monotonic()
    try:
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    alert = Alert.model_validate_json(record.value)
                    by_rule[alert.rule_id] += 1
                    seen.add((alert.customer_id, alert.rule_id))
                    print(alert_line(alert), flush=True)
                    quiet_since = time.monotonic()
            if expected_rules <= set(by_rule) and time.monotonic() - quiet_since > 5:
                break
    finally:
        await consumer.stop()
    return by_rule, seen


def typology_lines(seen: set[tuple[str, str]]) -> tuple[list[str], bool]:
    """One line per planted network typology: which of its rules alerted, for whom."""
    lines, complete = [], True
    for name, (customers, rules) in NETWORK_PLANTED.items():
        found = []
        for rule in rules:
            who = [c.removeprefix(f"{name}-") for c in customers if (c, rule) in seen]
            found.append(f"{rule} {'(' + ', '.join(who) + ')' if who else 'MISSING'}")
            complete &= bool(who)
        lines.append(f"  {name.removeprefix('planted-'):<16} {'; '.join(found)}")
    return lines, complete


def _metric_lines(port: int) -> list[str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    wanted = ("amlstream_events_consumed_total{", "amlstream_dead_letters_total{",
              "amlstream_risk_changes_total{", "amlstream_customers_in_state ",
              "amlstream_network_records_total{", "amlstream_network_late_total{")
    return [line for line in text.splitlines() if line.startswith(wanted)]


def demo_stream(customers: int, end: datetime) -> tuple[list[Scenario], list[Message]]:
    """The planted scenarios (each rule of one customer, and the network typologies) and every
    message the demo feeds, in order."""
    planted = planted_scenarios(end) + network_scenarios(end)
    messages = to_messages(planted + background_scenarios(customers, end))
    return planted, messages + [message for message, _ in bad_messages(end)]


def write_jsonl(customers: int, path: Path) -> int:
    """The demo's stream as JSON Lines (``streams.jsonl``), for ``amlstream backtest``."""
    _, messages = demo_stream(customers, datetime.now(UTC))
    try:
        with path.open("wb") as out:
            out.writelines(message_line(m.topic, m.key, m.value) for m in messages)
    except OSError as exc:
        say(f"amlstream demo: cannot write {path}: {exc.strerror or exc}")
        return 2
    say(f"amlstream demo: {len(messages):,} events written to {path}; try "
        f"amlstream backtest {path}")
    return 0


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def run_demo(customers: int, keep_running: bool, jsonl: Path | None = None) -> int:
    from agents.local_broker import LocalBroker

    if jsonl is not None:
        return write_jsonl(customers, jsonl)
    # A stop by SIGTERM (a service manager, kill) ends like Ctrl-C: worker and broker stopped.
    signal.signal(signal.SIGTERM, _interrupt)

    broker = LocalBroker(port=DEMO_PORT)
    work_dir = Path(tempfile.mkdtemp(prefix="amlstream-demo-"))
    settings = Settings(broker=f"kafka://{broker.bootstrap}", data_dir=work_dir / "state",
                        metrics_port=METRICS_PORT)
    worker = WorkerProcess(
        {"AMLSTREAM_BROKER": settings.broker, "AMLSTREAM_DATA_DIR": str(settings.data_dir),
         "AMLSTREAM_METRICS_PORT": str(METRICS_PORT), "AMLSTREAM_WEB_PORT": str(WEB_PORT)},
        work_dir / "worker.log")
    planted, messages = demo_stream(customers, datetime.now(UTC))
    bad = len(bad_messages(datetime.now(UTC)))
    say(f"amlstream demo: {customers:,} ordinary customers, {len(planted)} with planted "
        f"behaviour ({len(NETWORK_PLANTED)} network typologies among them), "
        f"{len(messages) - bad:,} events, {bad} malformed messages")
    say(f"starting a fresh local Kafka broker on {broker.bootstrap} ...")
    broker.wipe()
    broker.start()
    try:
        asyncio.run(ensure_topics(settings))
        asyncio.run(wait_for_leaders(settings, [*settings.input_topics, settings.alerts_topic]))
        say(f"starting the worker (log: {worker.log_path}) ...")
        worker.start()
        say(f"metrics: http://127.0.0.1:{METRICS_PORT}/metrics")
        say("feeding onboarding, then transactions, then malformed messages ...")
        # A broker that has just created its topics answers the first produce requests with
        # NotLeaderForPartition for a moment; the producer retries them. Only errors show.
        logging.getLogger("aiokafka").setLevel(logging.ERROR)
        asyncio.run(_feed(settings, messages))
        say("alerts as they arrive (severity, event time, rule, customer, summary):")
        expected = {rule for scenario in planted for rule in scenario.expected_rules}
        expected |= {rule for _, rules in NETWORK_PLANTED.values() for rule in rules}
        by_rule, seen = asyncio.run(_watch_alerts(settings, expected, SETTLE_TIMEOUT_S))
        if not worker.running:
            say("the worker stopped unexpectedly:\n" + worker.log_tail())
            return 1
        say(f"\n{sum(by_rule.values())} alerts: " +
            ", ".join(f"{rule} {count}" for rule, count in sorted(by_rule.items())))
        lines, complete = typology_lines(seen)
        say("network typologies planted, and who they alerted (customers a, b, ...):\n" +
            "\n".join(lines))
        say("from /metrics:\n  " + "\n  ".join(_metric_lines(METRICS_PORT)))
        missing = expected - set(by_rule)
        if missing or not complete:
            say(f"missing alerts for: {', '.join(sorted(missing)) or 'a network typology'}")
            return 1
        # A customer alerted by its own rules: the view lists those alerts (the network
        # rules' are on the alerts topic and in the case file).
        alerted = sorted(customer for customer, rule in seen
                         if customer.startswith("planted-") and rule in RULE_IDS)
        example = alerted[0] if alerted else sorted(seen)[0][0]
        view = f"http://127.0.0.1:{WEB_PORT}{customer_href(example)}"
        say("where to look next:\n"
            f"  the investigators' view of a customer: {view}\n"
            f"  (any customer: http://127.0.0.1:{WEB_PORT}/ ; JSON: /api/customers/ID)\n"
            f"  other commands against this broker: add --broker {broker.bootstrap}, e.g.\n"
            f"    amlstream alerts --broker {broker.bootstrap} --from-beginning "
            f"--customer {example}\n"
            f"    amlstream case {example} --broker {broker.bootstrap}\n"
            "  the same stream through the backtest, with an HTML report:\n"
            "    amlstream demo --jsonl demo.jsonl && amlstream backtest demo.jsonl "
            "--report report.html\n"
            "  README.md: Rules, Network rules (how each typology is found), Investigators' "
            "view, Operations")
        if keep_running or sys.stdin.isatty():
            say(f"the worker and the broker keep running (the view above, metrics at "
                f"http://127.0.0.1:{METRICS_PORT}/metrics); Ctrl-C stops them.")
            while worker.running:
                time.sleep(1)
        else:
            say("(not a terminal: stopping now; amlstream demo --keep-running keeps the view "
                "up)")
        return 0
    except KeyboardInterrupt:
        return 130
    finally:
        worker.stop()
        broker.stop()
