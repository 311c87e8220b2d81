"""``amlstream case`` against the real broker: one customer's records, read from its partition
of each topic (and nobody else's, though another customer shares that partition), the
transactions of its alerts' windows, the rule-set versions its alerts name as published
through ``rules_feed.publish`` (kept on the rules-history topic), and the HTML rendered in
Debian's chromium."""

import asyncio
import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from agents import kafka_clients
from agents.rules_feed import VersionConflictError, publish, read_history, read_latest
from agents.settings import Settings
from agents.topics import ensure_topics
from schemas.alerts import Alert, CustomerSnapshot, Evidence, Severity, TriggeringEvent
from schemas.rules import RuleSet
from streams.partitioning import partition_of
from streams.ruleset import load_rules

pytestmark = pytest.mark.integration

T = datetime(2026, 11, 20, 12, tzinfo=UTC)
PARTITIONS = 4
DECISION_PARTITIONS = PARTITIONS
"""The decisions are an input of the worker: co-partitioned with the others (the case reads
each topic's own count all the same)."""


def _customers() -> tuple[str, str, str]:
    """The customer of the case, another on the same partition of every topic, and one on
    another partition."""
    def parts(name: str) -> tuple[int, int]:
        key = name.encode()
        return partition_of(key, PARTITIONS), partition_of(key, DECISION_PARTITIONS)

    target = "cust-target"
    names = [f"cust-other-{n}" for n in range(200)]
    neighbour = next(n for n in names if parts(n) == parts(target))
    elsewhere = next(n for n in names if parts(n)[0] != parts(target)[0])
    return target, neighbour, elsewhere


def _tx(customer: str, event_id: str, at: datetime, usd: str) -> dict[str, Any]:
    return {"event_id": event_id, "customer_id": customer, "occurred_at": at.isoformat(),
            "direction": "out", "asset": "USDT", "amount": usd, "amount_usd": usd,
            "channel": "crypto", "counterparty": {"address": "0x" + "ab" * 20,
                                                  "type": "unhosted_wallet"}}


def _onboarding(customer: str, event_id: str, at: datetime, kind: str,
                **fields: Any) -> dict[str, Any]:
    return {"event_id": event_id, "customer_id": customer, "occurred_at": at.isoformat(),
            "type": kind, **fields}


def _alert(customer: str, alert_id: str, at: datetime, window: str | None, rule: str,
           version: str, triggering: list[str], summary: str) -> dict[str, Any]:
    return Alert(
        alert_id=alert_id, customer_id=customer, rule_id=rule, rule_set_version=version,
        severity=Severity.HIGH, triggered_at=at, summary=summary,
        observed_value=Decimal("21000.00"), threshold=Decimal("20000"),
        measure="usd_total_24h", window=window,
        evidence=Evidence(triggering_events=[
            TriggeringEvent(event_id=e, occurred_at=at, direction="out",
                            amount_usd=Decimal("9000.00")) for e in triggering]),
        customer=CustomerSnapshot(kyc_status="verified", kyc_tier=2, country_of_residence="DE",
                                  nationality="DE", pep=False, sanctions_hit=False,
                                  expected_monthly_volume_usd=None),
    ).model_dump(mode="json")


def _records(target: str, neighbour: str, elsewhere: str) -> dict[str, list[dict[str, Any]]]:
    """Topic kind -> records, in the order produced."""
    transactions = [_tx(c, f"{c}-t{h}", T - timedelta(hours=h), f"{9000 + h}.50")
                    for c in (target, neighbour, elsewhere) for h in (30, 20, 5, 1, 0)]
    transactions.append(_tx(target, f"{target}-t-late", T + timedelta(hours=1), "10.00"))
    return {
        "onboarding": [
            _onboarding(c, f"{c}-o1", T - timedelta(days=90), "registered",
                        country_of_residence="DE") for c in (target, neighbour, elsewhere)
        ] + [_onboarding(target, f"{target}-o2", T - timedelta(days=89), "kyc_verified",
                         kyc_tier=2, expected_monthly_volume_usd="15000.00")],
        "transactions": transactions,
        "alerts": [
            _alert(target, "alert-window", T, "24h", "volume_24h", "case-v1",
                   [f"{target}-t0", f"{target}-t5"], "24h volume 21000.00 USD over 20000"),
            _alert(target, "alert-single", T - timedelta(hours=30), None, "large_transfer",
                   "case-v2", [f"{target}-t30"], "one large transfer"),
            _alert(target, "alert-lost", T - timedelta(hours=29), None, "large_transfer",
                   "case-v0", [f"{target}-t30"], "under a version never published"),
            _alert(neighbour, "alert-neighbour", T, "24h", "volume_24h", "case-v1",
                   [f"{neighbour}-t0"], "the neighbour's alert"),
        ],
        "customer-risk": [
            {"change_id": "risk-1", "customer_id": c, "previous_level": "low", "level": "high",
             "score": "64", "reasons": ["alerts: 64"], "changed_at": T.isoformat(),
             "triggering_event_id": f"{c}-t0", "rule_set_version": "case-v1"}
            for c in (target, neighbour)],
        "alert-decisions": [
            {"event_id": f"{c}-d1", "customer_id": c, "occurred_at": (T + timedelta(hours=2))
             .isoformat(), "alert_id": alert_id, "rule_id": "volume_24h",
             "decision": "escalated", "decided_by": "analyst-3",
             "reason": f"escalated to the case team ({c})"}
            for c, alert_id in ((target, "alert-window"), (neighbour, "alert-neighbour"))],
    }


async def _set_up(deployment: Any, settings: Settings,
                  records: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
    """Create the topics, produce the records (default partitioner), publish two rule sets;
    return the partition each record of the target customer landed in, per topic."""
    await ensure_topics(settings)
    producer = kafka_clients.producer(settings, acks="all")
    await kafka_clients.start(producer, settings)
    landed: dict[str, int] = {}
    try:
        for kind, values in records.items():
            for value in values:
                meta = await producer.send_and_wait(
                    deployment.topics[kind], orjson.dumps(value),
                    key=value["customer_id"].encode())
                landed[f"{kind}/{value['customer_id']}"] = meta.partition
    finally:
        await producer.stop()
    shipped = load_rules(settings.rules_path).config
    for version, usd in (("case-v1", 10000), ("case-v2", 5000)):
        tier2 = shipped.tiers[2].model_copy(update={"large_transfer_usd": Decimal(usd)})
        await publish(settings, shipped.model_copy(update={
            "version": version, "tiers": {**shipped.tiers, 2: tier2}}))
    return landed


def _chromium_dom(html: Path, profile: Path) -> str:
    binary = shutil.which("chromium")
    if binary is None:
        pytest.fail("chromium is not on PATH: run scripts/system-deps (make test runs it)")
    done = subprocess.run([binary, "--headless", "--disable-gpu", "--no-sandbox",
                           f"--user-data-dir={profile}", "--dump-dom", html.as_uri()],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_case_file_of_one_customer(deployment: Any, tmp_path: Path) -> None:
    target, neighbour, elsewhere = _customers()
    settings = deployment.settings.model_copy(update={
        "app_id": deployment.name, "network": False, "partitions": PARTITIONS})
    records = _records(target, neighbour, elsewhere)
    landed = asyncio.run(_set_up(deployment, settings, records))
    # The producers' partitioner (aiokafka's default, as the worker's through Faust) put
    # each customer where streams.partitioning says: where the case will read.
    for name, partition in landed.items():
        kind, customer = name.split("/")
        count = DECISION_PARTITIONS if kind == "alert-decisions" else PARTITIONS
        assert partition == partition_of(customer.encode(), count), name

    env = {f"AMLSTREAM_{kind.upper().replace('-', '_')}_TOPIC": deployment.topics[kind]
           for kind in ("onboarding", "transactions", "alerts")}
    env |= {"AMLSTREAM_RISK_TOPIC": deployment.topics["customer-risk"],
            "AMLSTREAM_DECISIONS_TOPIC": deployment.topics["alert-decisions"],
            "AMLSTREAM_RULES_HISTORY_TOPIC": deployment.topics["rules-history"]}
    out = tmp_path / "cases"
    stdout = _cli(["case", target, "--out", str(out), "--broker",
                   f"kafka://{deployment.bootstrap}"], env)
    json_line, html_line, summary = stdout.splitlines()
    json_path, html_path = Path(json_line), Path(html_line)
    assert json_path.parent == out and json_path.name.startswith(f"case-{target}-")
    assert html_path == json_path.with_suffix(".html")
    assert summary == (f"{target}: 3 alerts (2 without a decision), 1 decisions, "
                       "5 transactions in the alerted windows, risk high")

    text = json_path.read_text(encoding="utf-8")
    assert neighbour not in text and elsewhere not in text  # nobody else's records
    document = json.loads(text)
    assert document["customer_id"] == target
    assert document["profile"]["kyc_status"] == "verified"
    assert document["profile"]["expected_monthly_volume_usd"] == "15000.00"
    assert [e["event_id"] for e in document["onboarding"]] == [f"{target}-o1", f"{target}-o2"]
    assert [r["change_id"] for r in document["risk_history"]] == ["risk-1"]
    alerts = {a["alert"]["alert_id"]: a for a in document["alerts"]}
    assert list(alerts) == ["alert-single", "alert-lost", "alert-window"]  # by time
    assert [d["reason"] for d in alerts["alert-window"]["decisions"]] == [
        f"escalated to the case team ({target})"]
    assert alerts["alert-single"]["decisions"] == []
    # 24h window: t20, t5, t1, t0 (not t30, not the later one); no window: t30 by id.
    assert alerts["alert-window"]["transaction_ids"] == [
        f"{target}-t{h}" for h in (20, 5, 1, 0)]
    assert alerts["alert-single"]["transaction_ids"] == [f"{target}-t30"]
    assert [(t["event"]["event_id"], t["event"]["amount"]) for t in document["transactions"]] == [
        (f"{target}-t{h}", f"{9000 + h}.50") for h in (30, 20, 5, 1, 0)]
    versions = {r["version"]: r for r in document["rule_sets"]}
    assert set(versions) == {"case-v0", "case-v1", "case-v2"}
    assert versions["case-v0"]["published"] is None
    for version, usd in (("case-v1", "10000"), ("case-v2", "5000")):
        config = versions[version]["published"]["config"]
        assert RuleSet.model_validate(config).tiers[2].large_transfer_usd == Decimal(usd)
        assert config["version"] == version
    sources = {s["topic"]: s for s in document["sources"]}
    assert sources[deployment.topics["alert-decisions"]]["partition"] == partition_of(
        target.encode(), DECISION_PARTITIONS)
    assert sources[deployment.topics["alert-decisions"]]["partitions"] == DECISION_PARTITIONS
    transactions_read = sources[deployment.topics["transactions"]]
    assert transactions_read["partition"] == partition_of(target.encode(), PARTITIONS)
    assert transactions_read["customer_records"] == 6
    assert transactions_read["records"] == 11  # the neighbour's 5 too, not the other's
    assert sources[deployment.topics["rules-history"]]["customer_records"] == 2

    html = html_path.read_text(encoding="utf-8")
    for item in (f"<h1>Case file: {target}</h1>", "24h volume 21000.00 USD over 20000",
                 "one large transfer", f"escalated to the case team ({target})",
                 f"{target}-t20", "<h3>Version case-v1</h3>", "large_transfer_usd: &#x27;5000",
                 "Not in the history"):
        assert item in html, item
    assert neighbour not in html

    dom = _chromium_dom(html_path, tmp_path / "profile")
    start = dom.index('<section id="alerts">')
    rendered = dom[start:dom.index('<section id="transactions">')]
    assert rendered.count('<section class="alert high"') == 3
    assert "24h volume 21000.00 USD over 20000" in rendered

    unknown = _run(["case", "nobody-here", "--broker", f"kafka://{deployment.bootstrap}"], env)
    assert unknown.returncode == 2
    assert unknown.stdout == ""
    assert unknown.stderr.startswith("amlstream: no record of customer 'nobody-here' on ")
    assert len(unknown.stderr.splitlines()) == 1


async def test_rules_history_keeps_every_version_once(deployment: Any) -> None:
    settings = deployment.settings
    shipped = load_rules(settings.rules_path).config
    first = shipped.model_copy(update={"version": "hist-1"})
    second = shipped.model_copy(update={"version": "hist-2",
                                        "allowed_lateness_s": shipped.allowed_lateness_s + 60})
    # No topic yet: the first publish creates it (compacted, one partition), not the broker.
    assert await read_history(settings) == {}
    await publish(settings, first)
    await publish(settings, second)
    history = await read_history(settings)
    assert sorted(history) == ["hist-1", "hist-2"]
    assert history["hist-2"].config["allowed_lateness_s"] == shipped.allowed_lateness_s + 60
    assert history["hist-1"].offset == 0 and history["hist-2"].offset == 1
    assert history["hist-1"].published_at <= history["hist-2"].published_at

    # A rollback to hist-1 (the same rule set) keeps its first record; a changed rule set
    # under a published version is refused, and nothing is published.
    await publish(settings, first)
    assert await read_history(settings) == history
    changed = first.model_copy(update={"allowed_lateness_s": 60})
    with pytest.raises(VersionConflictError, match="hist-1 was published on"):
        await publish(settings, changed)
    assert await read_history(settings) == history
    in_force = await read_latest(settings)
    assert in_force is not None and in_force.config == first

    # The same, as an auditor reads it on the command line.
    env = {"AMLSTREAM_BROKER": settings.broker,
           "AMLSTREAM_RULES_HISTORY_TOPIC": settings.rules_history_topic}
    listed = await asyncio.to_thread(_cli, ["rules", "history"], env)
    assert [line.split()[-1] for line in listed.splitlines()] == ["hist-1", "hist-2"]
    one = await asyncio.to_thread(_cli, ["rules", "history", "--version", "hist-2"], env)
    assert one.startswith("# version hist-2, published ")
    assert f"allowed_lateness_s: {shipped.allowed_lateness_s + 60}" in one

    admin = AIOKafkaAdminClient(bootstrap_servers=deployment.bootstrap)
    await admin.start()
    try:
        [described] = await admin.describe_topics([settings.rules_history_topic])
        [response] = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, settings.rules_history_topic)])
    finally:
        await admin.close()
    assert len(described["partitions"]) == 1
    configs = {entry[0]: entry[1] for entry in response.resources[0][4]}
    assert configs["cleanup.policy"] == "compact"


def _run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``amlstream ARGV`` in a child process with ``env``, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "agents.cli", *argv],
                          env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=120, check=False)


def _cli(argv: list[str], env: dict[str, str]) -> str:
    """``_run``: its standard output, once it exited 0."""
    done = _run(argv, env)
    assert done.returncode == 0, done.stderr
    return done.stdout
