"""Shared pieces of the fault suite: stream builders, the oracle, producing with offsets,
reading a topic to its end, the consumer group's lag, and one verdict per case.

Every case compares the worker's output with the in-memory oracle (``run_backtest``) on the
same valid events, by alert id (deterministic: a hash of customer, rule and period or event):
0 missing, 0 unexpected (duplicates of one id are allowed: at-least-once), every bad input
dead-lettered at its source topic/partition/offset, and the committed offsets of the worker's
consumer group equal to the end offsets of the inputs.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import random
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError
from aiokafka.partitioner import murmur2
from aiokafka.structs import TopicPartition

from agents.settings import Settings
from agents.topics import internal_topics as worker_internal_topics
from streams.backtest import NetworkTiming, run_backtest
from streams.ruleset import load_rules
from streams.synthetic import (
    ONBOARDING,
    SANCTIONED_ETH_ADDRESS,
    TORNADO_ETH_POOL,
    TRANSACTIONS,
    Message,
    Scenario,
    ScenarioBuilder,
    background_scenarios,
    planted_scenarios,
)
from streams.synthetic_network import network_scenarios

PARTITIONS = Settings().partitions
INPUT_KINDS = (ONBOARDING, TRANSACTIONS)
# A fixed end of the event-time range: rules read event time only, so every run is the same.
END = datetime(2026, 11, 20, 18, 0, tzinfo=UTC)
MAX_VALUE_BYTES = 1_000_000
"""Just under the broker's default largest record batch (1,048,588 bytes)."""


# ---------------------------------------------------------------------------------------------
# Streams


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


_HIGH_RISK = ("IR", "KP", "VE", "SY", "MM", "NG", "PK")
_ORDINARY = ("DE", "FR", "US", "GB", "ES", "NL", "IT", "SE", "JP", "CA", "CH", "AU")
_PRICED = {"USDT": Decimal(1), "USDC": Decimal(1), "BTC": Decimal(90000), "ETH": Decimal(3000),
           "SOL": Decimal(150), "EUR": Decimal("1.08")}


def mixed_customers(count: int, end: datetime = END, seed: int = 1,
                    prefix: str = "mix") -> list[Scenario]:
    """Customers that trip every kind of rule at random: all KYC states and tiers, high-risk
    countries, PEPs, bursts, near-threshold amounts, shared and listed addresses, transfers
    priced from the price table, profile changes between transfers.

    Each customer's first onboarding event comes before its first transfer; later profile
    changes fall between transfers (the worker must merge the two topics by event time)."""
    rng = random.Random(seed)
    shared = [f"0x{rng.getrandbits(160):040x}" for _ in range(40)]
    scenarios: list[Scenario] = []
    for n in range(count):
        scenario = Scenario("mixed", f"{prefix}-{n:06d}", ())
        b = ScenarioBuilder(scenario)
        country = rng.choice(_HIGH_RISK) if rng.random() < 0.04 else rng.choice(_ORDINARY)
        onboarded = end - timedelta(days=rng.uniform(1, 200), seconds=rng.randrange(86400))
        status = rng.random()
        extra: dict[str, Any] = {}
        if rng.random() < 0.5:
            extra["expected_monthly_volume_usd"] = str(rng.choice((500, 2000, 10000, 100000)))
        if rng.random() < 0.03:
            extra["pep"] = True
        if status < 0.8:
            b.verified(onboarded, tier=rng.choice((0, 1, 1, 2, 2, 3)), country=country, **extra)
        else:
            b.onboard(onboarded, "registered", country_of_residence=country,
                      nationality=rng.choice(_ORDINARY))
            if status < 0.9:
                b.onboard(onboarded + timedelta(minutes=30), "kyc_submitted", kyc_tier=0)
            elif status < 0.95:
                b.onboard(onboarded + timedelta(hours=1), "kyc_rejected")
        first = max(onboarded + timedelta(hours=3), end - timedelta(days=30))
        transfers = min(int(rng.paretovariate(1.1)), 60)
        times: list[datetime] = []
        while len(times) < transfers:
            at = first + timedelta(seconds=rng.uniform(0, (end - first).total_seconds()))
            burst = rng.randrange(1, 6) if rng.random() < 0.2 else 1
            times.extend(at + timedelta(minutes=4 * i) for i in range(burst))
        times = sorted(t for t in times[:transfers] if t < end)
        change_at = times[len(times) // 2] - timedelta(seconds=1) if len(times) > 3 else None
        for at in times:
            if change_at is not None and at > change_at and rng.random() < 0.5:
                change = rng.choice((
                    {"type": "profile_updated", "kyc_tier": rng.choice((0, 1, 2, 3))},
                    {"type": "screening_result", "pep": rng.random() < 0.5},
                    {"type": "profile_updated", "country_of_residence": rng.choice(_HIGH_RISK)},
                    {"type": "kyc_verified", "kyc_tier": 2},
                ))
                kind = change.pop("type")
                b.onboard(change_at, kind, **change)
                change_at = None
            roll = rng.random()
            if roll < 0.08:
                usd = f"{rng.uniform(9000, 9999):.2f}"  # near a reporting threshold
            elif roll < 0.15:
                usd = f"{rng.uniform(10000, 300000):.2f}"
            else:
                usd = f"{rng.lognormvariate(5.5, 1.4):.2f}"
            if Decimal(usd) < Decimal("0.01"):
                usd = "1.00"
            pick = rng.random()
            address: str | None = f"0x{rng.getrandbits(160):040x}"
            cp_type = rng.choice(("exchange", "merchant", "bank", "unhosted_wallet", "other"))
            if pick < 0.003:
                address, cp_type = SANCTIONED_ETH_ADDRESS.lower(), "unhosted_wallet"
            elif pick < 0.006:
                address = TORNADO_ETH_POOL
            elif pick < 0.01:
                cp_type = "mixer"
            elif pick < 0.25:
                address = rng.choice(shared)
            elif pick < 0.3:
                address = None
            cp_country = rng.choice(_HIGH_RISK) if rng.random() < 0.01 else (
                rng.choice(_ORDINARY) if rng.random() < 0.5 else None)
            asset = rng.choice(tuple(_PRICED))
            b.transfer(at, rng.choice(("in", "out")), usd, asset="USDT", address=address,
                       cp_type=cp_type, country=cp_country)
            event = scenario.events[-1][1]
            event["asset"] = asset
            event["amount"] = str((Decimal(usd) / _PRICED[asset]).quantize(Decimal("1e-8"))
                                  or Decimal("0.00000001"))
            if rng.random() < 0.3:
                del event["amount_usd"]  # converted with the rule set's price table
            if event["amount"] == "0E-8":
                event["amount"] = "0.00000001"
        scenarios.append(scenario)
    return scenarios


def stream(customers: int, seed: int, prefix: str, background: int = 0,
           planted_copies: int = 1, end: datetime = END, network: bool = True
           ) -> list[Scenario]:
    """Mixed customers, planted customers (one per rule and, with ``network``, one per
    network typology, ``planted_copies`` times) and quiet background customers."""
    scenarios = mixed_customers(customers, end, seed=seed, prefix=f"{prefix}m")
    for copy in range(planted_copies):
        scenarios += planted_scenarios(end, prefix=f"{prefix}p{copy}")
        if network:
            scenarios += network_scenarios(end, prefix=f"{prefix}n{copy}")
    if background:
        scenarios += background_scenarios(background, end, seed=seed, prefix=f"{prefix}b")
    return scenarios


def _message(topic: str, event: dict[str, Any]) -> Message:
    return Message(topic, event["customer_id"].encode(), orjson.dumps(event),
                   datetime.fromisoformat(event["occurred_at"]))


def time_ordered(scenarios: Sequence[Scenario]) -> list[Message]:
    """Both topics merged by event time (onboarding first on ties): the order a live upstream
    writes them in, for streams fed while the worker runs."""
    messages = [_message(topic, event) for s in scenarios for topic, event in s.events]
    messages.sort(key=lambda m: (m.occurred_at, m.topic != ONBOARDING))
    return messages


def onboarding_first(scenarios: Sequence[Scenario]) -> list[Message]:
    """All onboarding, then all transactions, each in event-time order (a preloaded topic)."""
    messages = [_message(topic, event) for s in scenarios for topic, event in s.events]
    messages.sort(key=lambda m: (m.topic != ONBOARDING, m.occurred_at))
    return messages


# ---------------------------------------------------------------------------------------------
# The oracle


_RULES: Any = None


def rules() -> Any:
    global _RULES
    if _RULES is None:
        _RULES = load_rules(Settings().rules_path)
    return _RULES


def oracle(valid: Iterable[Message], network: bool = True) -> dict[str, tuple[str, str]]:
    """Alert id -> (rule, customer) of the in-memory core over the valid events, in the
    order the worker must apply them: per customer, both topics merged by event time,
    onboarding first on ties, the produce order kept within a topic (a stable sort; alerts
    are per customer, so a global sort is the same). ``network`` False: S1 alone, as a
    worker with ``AMLSTREAM_NETWORK=false``."""
    ordered = sorted(valid, key=lambda m: (m.occurred_at, m.topic != ONBOARDING))
    result = run_backtest(((m.topic, m.key, m.value) for m in ordered), rules(),
                          network=NetworkTiming() if network else None)
    assert not result.rejected, f"the oracle rejected valid inputs: {result.rejected[:3]}"
    return {a.alert_id: (a.rule_id, a.customer_id) for a in result.alerts}


# ---------------------------------------------------------------------------------------------
# Kafka helpers


def partition_of(key: bytes, partitions: int = PARTITIONS) -> int:
    """The default partitioner's choice (murmur2, as Java and aiokafka)."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


@dataclass(frozen=True)
class Placed:
    """Where a produced message landed: input kind, partition, offset."""

    kind: str
    partition: int
    offset: int


async def create_inputs(deployment: Any, partitions: int = PARTITIONS) -> None:
    """Create both input topics as the worker would (so a preload lands in them)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=deployment.bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(deployment.topics[kind], partitions, 1)
                                   for kind in INPUT_KINDS])
    finally:
        await admin.close()


async def produce(deployment: Any, messages: Sequence[Message],
                  partitions: Sequence[int | None] | None = None) -> list[Placed]:
    """Send in order (a topic's run is flushed before the next topic's), each to the default
    partitioner's partition (or the one given; a null key without one goes to partition
    ``position % PARTITIONS``); return where each landed."""
    producer = AIOKafkaProducer(bootstrap_servers=deployment.bootstrap, acks="all",
                                linger_ms=5, max_request_size=4 * MAX_VALUE_BYTES,
                                request_timeout_ms=60_000)
    await producer.start()
    futures: list[Any] = []
    try:
        for n, message in enumerate(messages):
            chosen = partitions[n] if partitions is not None else None
            if chosen is None:
                chosen = (partition_of(message.key) if message.key is not None
                          else n % PARTITIONS)
            futures.append(await producer.send(deployment.topics[message.topic], message.value,
                                               key=message.key, partition=chosen))
            if n + 1 == len(messages) or messages[n + 1].topic != message.topic:
                await producer.flush()
        metadata = [await future for future in futures]
    finally:
        await producer.stop()
    return [Placed(m.topic, md.partition, md.offset) for m, md in zip(messages, metadata,
                                                                      strict=True)]


INTERNAL_GARBAGE = (
    b"not json",
    b'["p", 1, "f0", [1], 5, 2]',  # a provenance record cut short
    b'["m", 1, "f0", "soon", false, null, null]',  # a promise that is not a number
    b'["a", 1, "f0", [1], 5, 3, "B"]',  # a path alert cut short
)
"""Records no amlstream stage wrote: each internal topic must dead-letter them and go on."""


def internal_topics(deployment: Any) -> list[str]:
    """The worker's internal topics (S1 to S2 and S1/S3 to S3), named after its app id."""
    return worker_internal_topics(Settings(app_id=deployment.name))


async def produce_raw(deployment: Any, topic: str, values: Sequence[bytes]
                      ) -> list[tuple[str, int, int, bytes]]:
    """Each value to every partition of ``topic``; return (topic, partition, offset, value)."""
    producer = AIOKafkaProducer(bootstrap_servers=deployment.bootstrap, acks="all")
    await producer.start()
    try:
        sent = [(await producer.send(topic, value, key=b"garbage", partition=p), value)
                for p in range(PARTITIONS) for value in values]
        landed = [(await future, value) for future, value in sent]
    finally:
        await producer.stop()
    return [(topic, md.partition, md.offset, value) for md, value in landed]


async def feed_paced(deployment: Any, messages: Sequence[Message], chunk: int, pause_s: float,
                     gate: asyncio.Event | None = None,
                     lock: asyncio.Lock | None = None) -> None:
    """Produce ``chunk`` messages at a time with a pause between; before each chunk wait for
    ``gate`` (if given) and hold ``lock`` while sending (so a test can stop the broker
    between two chunks, never inside one: a retried chunk would duplicate events)."""
    for start in range(0, len(messages), chunk):
        if gate is not None:
            await gate.wait()
        if lock is not None:
            async with lock:
                await produce(deployment, messages[start:start + chunk])
        else:
            await produce(deployment, messages[start:start + chunk])
        await asyncio.sleep(pause_s)


async def end_offsets(bootstrap: str, topics: Sequence[str]) -> dict[TopicPartition, int]:
    """End offsets of every partition of ``topics`` (a missing topic has none)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(list(topics))
    finally:
        await admin.close()
    parts = [TopicPartition(t["topic"], p["partition"]) for t in described
             if t["error_code"] == 0 for p in t["partitions"]]
    if not parts:
        return {}
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        return dict(await consumer.end_offsets(parts))
    finally:
        await consumer.stop()


async def committed_offsets(bootstrap: str, group: str) -> dict[TopicPartition, int]:
    """The group's committed offsets; none while the broker has no coordinator for the group
    yet (before its first commit)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    except KafkaError:
        return {}
    finally:
        await admin.close()
    return {tp: meta.offset for tp, meta in offsets.items()}


async def lag(deployment: Any) -> dict[str, int]:
    """End offset - committed offset of the worker's group (AMLSTREAM_APP_ID = name), per
    input partition; only partitions that are behind are listed."""
    topics = [deployment.topics[kind] for kind in INPUT_KINDS]
    ends = await end_offsets(deployment.bootstrap, topics)
    if len(ends) != len(topics) * PARTITIONS:
        return {f"(input partitions found: {len(ends)})": -1}
    committed = await committed_offsets(deployment.bootstrap, deployment.name)
    behind = {}
    for tp, end in ends.items():
        done = committed.get(tp, -1)
        done = 0 if done is None or done < 0 else done
        if end - done:
            behind[f"{tp.topic}/{tp.partition}"] = end - done
    return behind


async def wait_for_lag_zero(deployment: Any, timeout_s: float,
                            workers: Sequence[Any] = ()) -> dict[str, int]:
    """Poll until the group's committed offsets reach the inputs' end offsets; return what is
    still behind at the timeout (empty when caught up), or as soon as every one of
    ``workers`` (if given) has stopped: nothing will commit any more."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    behind: dict[str, int] = {"(not read yet)": -1}
    while loop.time() < deadline:
        if workers and not any(worker.running for worker in workers):
            await asyncio.sleep(2)  # let a last commit land, if any
            return await lag(deployment)
        try:
            behind = await lag(deployment)
        except Exception as exc:  # broker restarting, group coordinator moving
            behind = {f"(error {type(exc).__name__})": -1}
        if not behind:
            return behind
        await asyncio.sleep(0.5)
    return behind


async def read_to_end(bootstrap: str, topic: str, timeout_s: float = 60.0) -> list[Any]:
    """Every record of ``topic`` up to its end offsets as of now (bounded in time)."""
    ends = await end_offsets(bootstrap, [topic])
    wanted = {tp: end for tp, end in ends.items() if end > 0}
    if not wanted:
        return []
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                auto_offset_reset="earliest",
                                fetch_max_bytes=16 * MAX_VALUE_BYTES,
                                max_partition_fetch_bytes=4 * MAX_VALUE_BYTES)
    await consumer.start()
    records: list[Any] = []
    try:
        consumer.assign(list(wanted))
        await consumer.seek_to_beginning(*wanted)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while wanted and loop.time() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            for tp, part in batch.items():
                records.extend(r for r in part if r.offset < ends[tp])
            for tp in list(wanted):
                if await consumer.position(tp) >= wanted[tp]:
                    del wanted[tp]
    finally:
        await consumer.stop()
    return records


async def alerts(deployment: Any, expected: dict[str, tuple[str, str]] | None = None,
                 timeout_s: float = 60.0, settle_s: float = 90.0) -> dict[str, tuple[str, str]]:
    """Alert id -> (rule, customer) of every alert the worker published (a re-sent alert
    has the same id: at-least-once). With ``expected``, read again until every expected id
    is there or ``settle_s`` passed: the network stages alert after the inputs' offsets are
    committed (a flow alert waits for its producers' promises)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settle_s
    while True:
        records = await read_to_end(deployment.bootstrap, deployment.topics["alerts"],
                                    timeout_s)
        found = {}
        for record in records:
            alert = orjson.loads(record.value)
            found[alert["alert_id"]] = (alert["rule_id"], alert["customer_id"])
        if expected is None or set(expected) <= set(found) or loop.time() > deadline:
            return found
        await asyncio.sleep(2)


async def dead_letters(deployment: Any, timeout_s: float = 60.0) -> list[dict[str, Any]]:
    """Dead letters as plain JSON (not the model: fields may be added, e.g. for truncation)."""
    records = await read_to_end(deployment.bootstrap, deployment.topics["dead-letters"],
                                timeout_s)
    return [orjson.loads(r.value) for r in records]


async def wait_for_dead_letters(deployment: Any, sources: Iterable[tuple[str, int, int]],
                                timeout_s: float = 60.0) -> list[dict[str, Any]]:
    """Every dead letter, once those of ``sources`` (topic, partition, offset) are among them
    or at the timeout."""
    wanted = set(sources)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        letters = await dead_letters(deployment)
        seen = {(d["source_topic"], d["partition"], d["offset"]) for d in letters}
        if wanted <= seen or loop.time() > deadline:
            return letters
        await asyncio.sleep(1)


async def worker_metric(deployment: Any, name: str = "amlstream_events_consumed_total") -> float:
    def scrape() -> float:
        return sum(v for (n, _), v in deployment.metrics().items() if n == name)
    try:
        return await asyncio.to_thread(scrape)
    except OSError:
        return 0.0


async def wait_for_progress(deployment: Any, worker: Any, events: float,
                            timeout_s: float) -> float:
    """Wait until this worker process has consumed ``events`` (its own metric), or the
    timeout; return what it consumed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    seen = 0.0
    while loop.time() < deadline and worker.running:
        seen = await worker_metric(deployment)
        if seen >= events:
            break
        await asyncio.sleep(0.2)
    return seen


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def with_metrics_port(deployment: Any, port: int, work_dir: Any) -> Any:
    """The same deployment (app id, topics) seen by a second worker process."""
    return dataclasses.replace(deployment, metrics_port=port, work_dir=work_dir)


def sharing_inputs(deployment: Any, source: Any) -> Any:
    """``deployment`` (its own app id and outputs) reading ``source``'s input topics."""
    base = type(deployment)

    class SharedInputs(base):  # type: ignore[misc, valid-type]
        @property
        def topics(self) -> dict[str, str]:
            topics = dict(base.topics.fget(self))
            topics.update({kind: source.topics[kind] for kind in INPUT_KINDS})
            return topics

    return SharedInputs(**{f.name: getattr(deployment, f.name)
                           for f in dataclasses.fields(deployment)})


# ---------------------------------------------------------------------------------------------
# Load beside the worker


class CpuHog:
    """``count`` busy-looping processes (killed by ``stop``)."""

    def __init__(self, count: int = 2) -> None:
        self.count = count
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        for _ in range(self.count):
            self.processes.append(subprocess.Popen(
                [sys.executable, "-c", "while True: pass"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait(10)
        self.processes.clear()


# ---------------------------------------------------------------------------------------------
# The verdict


@dataclass
class Verdict:
    """Every check of a case, gathered, then asserted at once (so a failure names them all)."""

    case: str
    problems: list[str] = field(default_factory=list)

    def alerts(self, expected: dict[str, tuple[str, str]],
               got: dict[str, tuple[str, str]]) -> None:
        """Alert ids: none of the oracle's missing, none other (duplicates allowed)."""
        for what, ids, source in (("expected alerts missing", expected.keys() - got.keys(),
                                   expected),
                                  ("unexpected alert ids", got.keys() - expected.keys(), got)):
            if ids:
                by_rule = Counter(source[i][0] for i in ids)
                customers = len({source[i][1] for i in ids})
                sample = sorted(source[i] for i in ids)[:3]
                self.problems.append(
                    f"{len(ids)} {what} (of {len(expected)} expected; {customers} customers; "
                    f"by rule {dict(by_rule.most_common())}; e.g. {sample})")

    def dead_lettered(self, deployment: Any, bad: Sequence[tuple[Placed, bytes | None, str]],
                      letters: Sequence[dict[str, Any]]) -> None:
        """Each bad input (where it landed, its value, a label) has a dead letter naming its
        source topic, partition and offset and carrying its bytes: whole, or, when marked
        ``truncated``, a prefix with the original's size and SHA-256."""
        by_source = {(d["source_topic"], d["partition"], d["offset"]): d for d in letters}
        missing: dict[str, int] = {}
        wrong: list[str] = []
        for placed, value, label in bad:
            letter = by_source.get((deployment.topics[placed.kind], placed.partition,
                                    placed.offset))
            if letter is None:
                missing[label] = missing.get(label, 0) + 1
                continue
            problem = carries_original(letter, value or b"")
            if problem:
                wrong.append(f"{label}: {problem}")
        if missing:
            self.problems.append(f"{sum(missing.values())} of {len(bad)} bad inputs not "
                                 f"dead-lettered, by kind: {dict(sorted(missing.items()))}")
        if wrong:
            self.problems.append(f"{len(wrong)} dead letters do not carry the input: "
                                 f"{wrong[:5]}")
        bad_sources = {(deployment.topics[p.kind], p.partition, p.offset) for p, _, _ in bad}
        stray = set(by_source) - bad_sources
        if stray:
            self.problems.append(f"{len(stray)} dead letters for valid inputs "
                                 f"(e.g. {sorted(stray)[:3]})")

    def lag(self, behind: dict[str, int]) -> None:
        if behind:
            self.problems.append(f"committed offsets behind the end offsets: {behind}")

    def running(self, worker: Any) -> None:
        if not worker.running:
            lines = worker.log_tail(400).splitlines()
            errors = [line.strip() for line in lines
                      if "Error" in line or "Exception" in line or "CRITICAL" in line]
            self.problems.append(f"the worker stopped; first errors in its log: {errors[:3]}")

    def check(self, worker: Any = None) -> None:
        tail = ""
        if self.problems and worker is not None:
            tail = "\n--- worker log tail ---\n" + worker.log_tail(20)[-3000:]
        assert not self.problems, f"{self.case}:\n- " + "\n- ".join(self.problems) + tail


def carries_original(letter: dict[str, Any], value: bytes) -> str | None:
    """None if the dead letter carries ``value``; else what is wrong.

    Today a dead letter carries the whole value (``original_b64``). A dead letter too large to
    send may carry a bounded prefix instead, with ``truncated: true``, ``original_size`` and
    ``original_sha256`` (the lead's fix). Fields are checked where present; to tighten once
    the fix is in, require them for values over the limit (``REQUIRE_TRUNCATION_FIELDS``)."""
    carried = base64.b64decode(letter.get("original_b64") or "")
    if not letter.get("truncated"):
        return None if carried == value else (
            f"original_b64 holds {len(carried)} bytes, the input {len(value)}")
    if not value.startswith(carried) or len(carried) >= len(value):
        return "a truncated original is not a proper prefix of the input"
    if "original_size" in letter and letter["original_size"] != len(value):
        return f"original_size {letter['original_size']} != {len(value)}"
    digest = hashlib.sha256(value)
    if "original_sha256" in letter and letter["original_sha256"] not in (
            digest.hexdigest(), base64.b64encode(digest.digest()).decode()):
        return "original_sha256 is not the input's SHA-256 (hex or base64)"
    if REQUIRE_TRUNCATION_FIELDS and not {"original_size", "original_sha256"} <= set(letter):
        return "a truncated dead letter without original_size and original_sha256"
    return None


REQUIRE_TRUNCATION_FIELDS = True
"""Set True once truncated dead letters always name the original's size and SHA-256."""





# ---------------------------------------------------------------------------------------------
# Malformed input


def _tx_variants(event: dict[str, Any], rng: random.Random) -> dict[str, Callable[[], Any]]:
    """Transaction faults: label -> () -> (key, value), key None for a null key."""
    key = event["customer_id"].encode()

    def body(**changes: Any) -> bytes:
        return orjson.dumps({**event, **changes})

    def without(*names: str) -> bytes:
        return orjson.dumps({k: v for k, v in event.items() if k not in names})

    raw = orjson.dumps(event)
    iso = event["occurred_at"]
    epoch = int(datetime.fromisoformat(iso).timestamp())
    return {
        "invalid_json": lambda: (key, b"{not json, " + raw[:20]),
        "truncated_json": lambda: (key, raw[: rng.randrange(1, len(raw) - 1)]),
        "non_utf8_blob": lambda: (key, b"\xff\xfe\x00\xc3(" * 8),
        "non_utf8_in_json": lambda: (key, raw.replace(b'"event_id":"', b'"event_id":"\xff\xfe', 1)),
        "empty_value": lambda: (key, b""),
        "null_value": lambda: (key, None),
        "null_key": lambda: (None, raw),
        "key_mismatch": lambda: (key + b"-other", raw),
        "missing_field": lambda: (key, without(rng.choice(
            ("event_id", "customer_id", "occurred_at", "direction", "asset", "amount",
             "channel")))),
        "unknown_direction": lambda: (key, body(direction="sideways")),
        "unknown_channel": lambda: (key, body(channel="carrier_pigeon")),
        "unknown_counterparty_type": lambda: (key, body(counterparty={"type": "friend"})),
        "naive_timestamp": lambda: (key, body(occurred_at=iso.rstrip("Z"))),
        "occurred_at_number": lambda: (key, body(occurred_at=epoch)),
        "amount_int_number": lambda: (key, body(amount=rng.randrange(1, 5000))),
        "amount_float_number": lambda: (key, body(amount=rng.uniform(1, 5000))),
        "amount_usd_number": lambda: (key, body(amount_usd=rng.randrange(1, 5000))),
        "amount_negative": lambda: (key, body(amount="-5.00")),
        "amount_zero": lambda: (key, body(amount="0")),
        "amount_nan": lambda: (key, body(amount="NaN")),
        "amount_infinity": lambda: (key, body(amount="Infinity")),
        "amount_1e16": lambda: (key, body(amount="1e16")),
        "amount_usd_1e16": lambda: (key, body(amount_usd="10000000000000000")),
        "unpriced_asset": lambda: (key, orjson.dumps(
            {**{k: v for k, v in event.items() if k != "amount_usd"}, "asset": "DOGEX"})),
        "huge_key": lambda: (b"K" * 100_000, raw),
    }


def _onboarding_variants(event: dict[str, Any],
                         rng: random.Random) -> dict[str, Callable[[], Any]]:
    key = event["customer_id"].encode()

    def body(**changes: Any) -> bytes:
        return orjson.dumps({**event, **changes})

    raw = orjson.dumps(event)
    iso = event["occurred_at"]
    epoch = int(datetime.fromisoformat(iso).timestamp())
    return {
        "ob_invalid_json": lambda: (key, b"[1, 2" + raw[:10]),
        "ob_truncated_json": lambda: (key, raw[: rng.randrange(1, len(raw) - 1)]),
        "ob_non_utf8_blob": lambda: (key, b"\x80\x81\xfe\xff" * 10),
        "ob_empty_value": lambda: (key, b""),
        "ob_null_key": lambda: (None, raw),
        "ob_key_mismatch": lambda: (b"x" + key, raw),
        "ob_missing_type": lambda: (key, orjson.dumps(
            {k: v for k, v in event.items() if k != "type"})),
        "ob_unknown_type": lambda: (key, body(type="kyc_maybe")),
        "ob_naive_timestamp": lambda: (key, body(occurred_at=iso.rstrip("Z"))),
        "ob_occurred_at_number": lambda: (key, body(occurred_at=epoch)),
        "ob_pep_as_string": lambda: (key, body(pep=rng.choice(("true", "false")))),
        "ob_sanctions_hit_as_number": lambda: (key, body(sanctions_hit=rng.choice((0, 1)))),
        "ob_pep_as_number": lambda: (key, body(pep=1)),
        "ob_kyc_tier_out_of_range": lambda: (key, body(kyc_tier=7)),
        "ob_expected_volume_number": lambda: (key, body(expected_monthly_volume_usd=5000)),
        "ob_expected_volume_negative": lambda: (key, body(expected_monthly_volume_usd="-1")),
    }


def _padded(event: dict[str, Any], size: int, **changes: Any) -> bytes:
    """``event`` with an unknown field padding it to exactly ``size`` bytes."""
    base = orjson.dumps({**event, **changes, "padding": ""})
    return orjson.dumps({**event, **changes, "padding": "p" * (size - len(base))})


@dataclass
class Malformed:
    """A valid stream with bad inputs interleaved (and as the last record of every input
    partition): ``messages`` in produce order, ``partitions`` (None: the key's),
    ``bad`` (position -> label), ``valid`` the messages the oracle gets."""

    messages: list[Message]
    partitions: list[int | None]
    bad: dict[int, str]

    @property
    def valid(self) -> list[Message]:
        return [m for n, m in enumerate(self.messages) if n not in self.bad]


HUGE_KEYS = 12
"""How many 100 KB keys (each one also makes a 100 KB dead letter)."""


def interleave_malformed(valid: Sequence[Message], count: int, seed: int,
                         big_values: int = 2) -> Malformed:
    """``count`` bad inputs of every kind, each next to (and modelled on) a valid event of its
    topic, plus ``big_values`` of each 1 MB kind (a non-JSON blob; a JSON event padded with an
    unknown field that also violates the schema: dead letters; and one padded valid event,
    which is processed), then one bad record last on every partition of both inputs."""
    rng = random.Random(seed)
    slots = sorted(rng.sample(range(len(valid)), min(count, len(valid))))
    per_slot = -(-count // len(slots))
    messages: list[Message] = []
    partitions: list[int | None] = []
    bad: dict[int, str] = {}
    made = 0
    kinds_seen: dict[str, int] = {}

    def add(message: Message, label: str | None, partition: int | None = None) -> None:
        if label is not None:
            bad[len(messages)] = label
        messages.append(message)
        partitions.append(partition)

    big = ["blob_1mb", "padded_invalid_1mb", "padded_valid_1mb"] * big_values
    big_at = set(rng.sample(slots, len(big)))
    slot_set = set(slots)
    null_keys = 0
    for n, message in enumerate(valid):
        add(message, None)
        if n not in slot_set:
            continue
        event = orjson.loads(message.value)
        for _ in range(per_slot):
            if made >= count:
                break
            event = {**event, "event_id": f"bad-{made}"}
            variants = (_tx_variants if message.topic == TRANSACTIONS
                        else _onboarding_variants)(event, rng)
            labels = sorted(lb for lb in variants
                            if lb != "huge_key" or kinds_seen.get(lb, 0) < HUGE_KEYS)
            label = min(labels, key=lambda lb: (kinds_seen.get(lb, 0), rng.random()))
            kinds_seen[label] = kinds_seen.get(label, 0) + 1
            key, value = variants[label]()
            partition = None
            if key is None:  # spread over the partitions, not all on one
                partition = null_keys % PARTITIONS
                null_keys += 1
            add(Message(message.topic, key, value, message.occurred_at), label, partition)
            made += 1
        if n in big_at:
            label = big.pop()
            key = message.key
            if label == "blob_1mb":
                value = (b"\x00\xffnot json at all " * (MAX_VALUE_BYTES // 18 + 1))[
                    :MAX_VALUE_BYTES]
                add(Message(message.topic, key, value, message.occurred_at), label)
            elif label == "padded_invalid_1mb":
                value = _padded({**event, "event_id": f"big-{len(messages)}"}, MAX_VALUE_BYTES,
                                occurred_at="2026-11-20T10:00:00")  # naive: a violation
                add(Message(message.topic, key, value, message.occurred_at), label)
            else:  # a valid event padded to 1 MB with an unknown field: processed
                valid_event = {**orjson.loads(message.value), "event_id": f"big-{len(messages)}"}
                if message.topic == TRANSACTIONS:
                    valid_event["amount"], valid_event["amount_usd"] = "1.00000000", "1.00"
                else:
                    valid_event["type"] = "screening_result"
                    for name in ("kyc_tier", "country_of_residence", "nationality", "pep",
                                 "sanctions_hit", "expected_monthly_volume_usd"):
                        valid_event.pop(name, None)
                add(Message(message.topic, key, _padded(valid_event, MAX_VALUE_BYTES),
                            message.occurred_at), None)
    # The last record of every partition of both inputs is bad.
    keys_by_partition: dict[int, bytes] = {}
    for message in valid:
        if message.key is not None:
            keys_by_partition.setdefault(partition_of(message.key), message.key)
    last_kinds = ("invalid_json", "truncated_json", "naive_timestamp", "key_mismatch")
    for topic in INPUT_KINDS:
        for p in range(PARTITIONS):
            key = keys_by_partition[p]
            label = f"last_of_partition:{last_kinds[p % len(last_kinds)]}"
            value = {
                "invalid_json": b"{\"event_id\": ",
                "truncated_json": b'{"event_id": "last", "customer_id": "' + key[:3],
                "naive_timestamp": orjson.dumps({"event_id": "last", "customer_id":
                                                 key.decode(),
                                                 "occurred_at": "2026-11-20T17:59:59",
                                                 "type": "profile_updated",
                                                 "direction": "in", "asset": "USDT",
                                                 "amount": "1", "channel": "crypto"}),
                "key_mismatch": orjson.dumps({"event_id": "last", "customer_id": "nobody",
                                              "occurred_at": "2026-11-20T17:59:59Z",
                                              "type": "profile_updated", "direction": "in",
                                              "asset": "USDT", "amount": "1",
                                              "channel": "crypto"}),
            }[last_kinds[p % len(last_kinds)]]
            add(Message(topic, key, value, END), label, p)
    return Malformed(messages, partitions, bad)
