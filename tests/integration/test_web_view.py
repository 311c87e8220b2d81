"""The investigators' view, served by two workers of one group on a real broker: any worker
answers for any customer (Faust's table routing sends the request to the owner), decisions
published to the alert-decisions topic are applied (whitelist, shown in the view, a bad one
dead-lettered), the HTML page renders in headless Chromium, /ready and /live answer."""

import asyncio
import json
import shutil
import subprocess
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
import pytest

from agents.cli import main
from agents.local_broker import free_port_pair
from schemas.alerts import Alert
from schemas.dead_letters import DeadLetter
from streams.partitioning import partition_of
from streams.synthetic import Message, Scenario, ScenarioBuilder, to_messages

pytestmark = pytest.mark.integration

END = datetime.now(UTC).replace(microsecond=0)
X = "0x" + "ab" * 20
Y = "0x" + "cd" * 20
CUSTOMERS = [f"web-{n}" for n in range(8)]


def _customer(name: str) -> Scenario:
    scenario = Scenario(name, name, ())
    b = ScenarioBuilder(scenario)
    b.verified(END - timedelta(days=200), tier=2, country="US")
    b.transfer(END - timedelta(hours=3), "out", "60000.00", address=X)
    return scenario


def _get(port: str, path: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            body = response.read()
            status = response.status
    except urllib.error.HTTPError as error:
        body, status = error.read(), error.code
    kind = "json" if body[:1] in (b"{", b"[") else "html"
    return status, json.loads(body) if kind == "json" else body.decode()


async def _until(check: Any, timeout_s: float = 90.0) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        result = await asyncio.to_thread(check)
        if result or loop.time() > deadline:
            return result
        await asyncio.sleep(0.5)


def _owned(metrics_port: str, topic: str) -> set[int]:
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as r:
        text = r.read().decode()
    return {int(line.split('partition="')[1].split('"')[0]) for line in text.splitlines()
            if line.startswith("amlstream_consumer_lag_records{") and f'topic="{topic}"' in line}


def _decision(alert: Alert, decided_at: datetime, **changes: Any) -> Message:
    value = {"event_id": f"d-{alert.alert_id}", "customer_id": alert.customer_id,
             "occurred_at": decided_at.isoformat(), "alert_id": alert.alert_id,
             "rule_id": alert.rule_id, "decision": "false_positive",
             "decided_by": "analyst-7", "reason": "payroll of a known client <b>ok</b>",
             **changes}
    return Message("alert-decisions", alert.customer_id.encode(), orjson.dumps(value),
                   decided_at)


def _chromium_dom(url: str, profile: Path) -> str:
    binary = shutil.which("chromium")
    if binary is None:
        pytest.fail("chromium is not on PATH: run scripts/system-deps (make test runs it)")
    done = subprocess.run([binary, "--headless", "--disable-gpu", "--no-sandbox",
                           f"--user-data-dir={profile}", "--dump-dom", url],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


async def test_any_worker_answers_for_any_customer_and_decisions_apply(deployment,
                                                                        request_cleanup,
                                                                        tmp_path, monkeypatch):
    first, second = deployment.worker("state-a"), deployment.worker("state-b")
    second.env["AMLSTREAM_METRICS_PORT"] = str(free_port_pair())
    for worker in (first, second):
        worker.start()
        request_cleanup(worker.stop)
    ports = [w.env["AMLSTREAM_WEB_PORT"] for w in (first, second)]
    await deployment.produce(to_messages([_customer(name) for name in CUSTOMERS]))
    records = await deployment.read(deployment.topics["alerts"], lambda rs: len(rs) >= 8)
    alerts = {a.customer_id: a for a in (Alert.model_validate_json(r.value) for r in records)}
    assert set(alerts) == set(CUSTOMERS)

    transactions = deployment.topics["transactions"]
    metrics_ports = [first.env["AMLSTREAM_METRICS_PORT"], second.env["AMLSTREAM_METRICS_PORT"]]
    def owned_by_each() -> list[set[int]] | None:
        if not all(_get(port, "/ready")[0] == 200 for port in ports):
            return None
        owned = [_owned(port, transactions) for port in metrics_ports]
        return owned if all(owned) else None

    owned = await _until(owned_by_each)
    assert owned and all(owned) and not owned[0] & owned[1], owned  # both own partitions
    on_second = [c for c in CUSTOMERS if partition_of(c.encode(), 4) in owned[1]]
    assert on_second  # some customers are the other worker's: routed

    for port in ports:
        for customer in CUSTOMERS:
            status, view = _get(port, f"/api/customers/{customer}")
            assert status == 200, (port, customer, view)
            assert view["profile"]["kyc_status"] == "verified"
            assert view["risk"]["history"][0]["previous_level"] == "unrated"
            assert [a["alert_id"] for a in view["alerts"]] == [alerts[customer].alert_id]
            assert view["windows"]["24h"]["withdrawals_usd"] == "60000.00"
    assert _get(ports[0], "/api/customers/nobody")[0] == 404
    assert _get(ports[0], "/live") == (200, {"live": True})

    # A false positive for one customer, as an analyst records it (amlstream decide); a bad
    # decision for another.
    target = on_second[0]
    alert = alerts[target]
    for name, value in first.env.items():
        if name.startswith("AMLSTREAM_"):
            monkeypatch.setenv(name, value)
    assert await asyncio.to_thread(main, [
        "decide", alert.alert_id, "--customer", target, "--rule", alert.rule_id,
        "--decision", "false_positive", "--by", "analyst-7",
        "--reason", "payroll of a known client <b>ok</b>"]) == 0
    await deployment.produce([
        _decision(alerts[CUSTOMERS[0] if target != CUSTOMERS[0] else CUSTOMERS[1]],
                  END - timedelta(hours=2), decision="maybe"),
    ])
    after = datetime.now(UTC).replace(microsecond=0)  # the decision's time: what follows
    follow_up = Scenario(target, target, ())
    b = ScenarioBuilder(follow_up)
    b.transfer(after + timedelta(minutes=1), "out", "60000.00", address=X)  # whitelisted now
    b.transfer(after + timedelta(minutes=2), "out", "60000.00", address=Y)
    await deployment.produce(to_messages([follow_up]))
    records = await deployment.read(
        deployment.topics["alerts"],
        lambda rs: sum(Alert.model_validate_json(r.value).customer_id == target for r in rs) >= 2)
    mine = [a for a in (Alert.model_validate_json(r.value) for r in records)
            if a.customer_id == target and a.rule_id == "large_transfer"]
    assert [a.triggered_at for a in mine] == [END - timedelta(hours=3),
                                              after + timedelta(minutes=2)]

    letters = await deployment.read(deployment.topics["dead-letters"], lambda rs: len(rs) >= 1)
    [letter] = [DeadLetter.model_validate_json(r.value) for r in letters]
    assert letter.source_topic == deployment.topics["alert-decisions"]
    assert "decision" in " ".join(letter.reasons)

    status, view = _get(ports[0], f"/api/customers/{target}")
    assert status == 200
    assert [(d["decision"], d["decided_by"]) for d in view["decisions"]] == [
        ("false_positive", "analyst-7")]
    assert [w["rule_id"] for w in view["whitelisted"]] == ["large_transfer"]
    status, one = _get(ports[0], f"/api/customers/{target}/alerts/{alert.alert_id}")
    assert status == 200 and one["decisions"][0]["reason"].startswith("payroll")

    # The page a person opens, in a real browser, through the worker that does not own it.
    dom = _chromium_dom(f"http://127.0.0.1:{ports[0]}/customers/{quote(target)}",
                        tmp_path / "chromium")
    assert f"Customer {target}" in dom
    assert 'id="alerts"' in dom and "large_transfer" in dom and "false_positive" in dom
    assert "&lt;b&gt;ok&lt;/b&gt;" in dom  # the analyst's text is shown, not interpreted
    dom = _chromium_dom(f"http://127.0.0.1:{ports[0]}/customers/{quote(target)}/alerts/"
                        f"{alert.alert_id}", tmp_path / "chromium")
    assert "Triggering events" in dom and "60000.00" in dom
