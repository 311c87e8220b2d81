"""Address intelligence published while the worker runs: a listed address alerts from then on,
naming the intel source; removed (a tombstone), it no longer does."""

import asyncio
import os
import subprocess
import sys
import urllib.error
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from schemas.alerts import Alert
from streams.synthetic import Scenario, ScenarioBuilder, to_messages

pytestmark = pytest.mark.integration

END = datetime.now(UTC).replace(microsecond=0)
SANCTIONED = "0x5A5a5a5a5a5A5a5a5A5a5a5a5a5a5A5a5a5a5a5B"
SCORED = "0x6b6B6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6C"
LARGE_USD = "60000.00"
"""Above tier 2's large_transfer limit: every probe alerts at least on large_transfer, so its
alerts show it was processed."""


def _probe(customer_id: str, address: str) -> Scenario:
    scenario = Scenario(customer_id, customer_id, ())
    b = ScenarioBuilder(scenario)
    b.verified(END - timedelta(days=200), tier=2, country="US")
    b.transfer(END - timedelta(hours=1), "out", LARGE_USD, address=address)
    return scenario



def _cli(deployment, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AMLSTREAM_BROKER": f"kafka://{deployment.bootstrap}",
           "AMLSTREAM_ADDRESS_INTEL_TOPIC": deployment.topics["address-intel"]}
    return subprocess.run([sys.executable, "-m", "agents.cli", "intel", *args], env=env,
                          capture_output=True, text=True, timeout=120, check=False)


async def _until_serving(deployment, worker, timeout_s: float = 90.0) -> None:
    """The worker serves metrics once its topics exist and the intel topic is loaded."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        try:
            deployment.metrics()
            return
        except (urllib.error.URLError, ConnectionError):
            assert worker.running, worker.log_tail()
            assert loop.time() < deadline, worker.log_tail()
            await asyncio.sleep(0.5)


async def _probe_until(deployment, prefix: str, address: str,
                       wanted: set[str]) -> list[Alert]:
    """Probe until the worker's alerts for a transfer to ``address`` are of the rules
    ``wanted`` (an intel change may take a moment to reach it); the last probe's alerts."""
    alerts: list[Alert] = []
    for attempt in range(15):
        customer_id = f"{prefix}-{attempt}"
        await deployment.produce(to_messages([_probe(customer_id, address)]))
        alerts = await deployment.alerts_for(customer_id)
        if {a.rule_id for a in alerts} == wanted:
            break
    return alerts


def _rules(alerts: list[Alert]) -> list[str]:
    return sorted(a.rule_id for a in alerts)


async def test_a_listing_published_live_alerts_until_it_is_removed(deployment, tmp_path,
                                                                    request_cleanup):
    worker = deployment.worker()
    worker.start()
    request_cleanup(worker.stop)
    await _until_serving(deployment, worker)

    entries = tmp_path / "intel.csv"
    entries.write_text(
        "list,address,chain,entity,risk_score,listed_at,source,reference\n"
        f"sanctions,{SANCTIONED},ETH,IT ENTITY,,2026-11-20T00:00:00Z,it-provider,case 7\n"
        f"chain_risk,{SCORED},ETH,,90,2026-11-20T00:00:00Z,it-scores,\n"
        f"chain_risk,{SCORED},ETH,,,2026-11-20T00:00:00Z,it-scores,\n")  # no score: rejected
    published = _cli(deployment, "publish", str(entries))
    assert published.returncode == 1, published.stderr
    assert "published 2 entries" in published.stdout and "rejected 1" in published.stdout
    producer = AIOKafkaProducer(bootstrap_servers=deployment.bootstrap)
    await producer.start()
    await producer.send_and_wait(deployment.topics["address-intel"],
                                 orjson.dumps({"list": "mixer"}), key=b"junk", partition=0)
    await producer.stop()

    alerts = await _probe_until(deployment, "listed", SANCTIONED,
                                {"large_transfer", "sanctioned_counterparty"})
    assert _rules(alerts) == ["large_transfer", "sanctioned_counterparty"]
    [alert] = [a for a in alerts if a.rule_id == "sanctioned_counterparty"]
    assert alert.severity == "critical"
    assert (alert.evidence.matches["found_in"], alert.evidence.matches["source"],
            alert.evidence.matches["entity"]) == ("intel_topic", "it-provider", "IT ENTITY")
    alerts = await _probe_until(deployment, "scored", SCORED,
                                {"large_transfer", "high_risk_counterparty"})
    assert _rules(alerts) == ["high_risk_counterparty", "large_transfer"]

    removed = _cli(deployment, "remove", "sanctions", SANCTIONED)
    assert removed.returncode == 0, removed.stderr

    alerts = await _probe_until(deployment, "removed", SANCTIONED, {"large_transfer"})
    assert _rules(alerts) == ["large_transfer"]
    shown = _cli(deployment, "show")
    assert [orjson.loads(line)["address"] for line in shown.stdout.splitlines()] == [SCORED]
    metrics = deployment.metrics()
    assert metrics[("amlstream_intel_entries", ())] == 1
    assert metrics[("amlstream_intel_rejected_total", (("reason", "invalid_key"),))] == 1
    assert worker.running


RETRO = "0x7c7C7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7D"


def _payer(customer_id: str, days_before: float) -> Scenario:
    scenario = Scenario(customer_id, customer_id, ())
    b = ScenarioBuilder(scenario)
    b.verified(END - timedelta(days=300), tier=2, country="US")
    b.transfer(END - timedelta(days=days_before), "out", "400.00", address=RETRO,
               cp_type="unhosted_wallet")
    return scenario


async def _legs_applied(deployment, count: int, timeout_s: float = 90.0) -> None:
    """Until the counterparty stage has applied ``count`` legs."""
    topic = f"{deployment.name}-cp-legs-repartition"
    key = ("amlstream_events_consumed_total", (("outcome", "processed"), ("topic", topic)))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while deployment.metrics().get(key, 0) < count:
        assert loop.time() < deadline, deployment.metrics_text()
        await asyncio.sleep(0.5)


async def test_a_new_listing_alerts_once_each_customer_who_used_the_address_before(
        deployment, tmp_path, request_cleanup):
    worker = deployment.worker()
    worker.start()
    request_cleanup(worker.stop)
    await _until_serving(deployment, worker)
    payers = [_payer("retro-recent", 3), _payer("retro-month", 30), _payer("retro-old", 200)]
    await deployment.produce(to_messages(payers))
    await _legs_applied(deployment, 3)

    listing = tmp_path / "retro.csv"
    listing.write_text("list,address,chain,entity,listed_at,source,reference\n"
                       f"sanctions,{RETRO.lower()},ETH,RETRO ENTITY,"
                       f"{(END - timedelta(days=1)).isoformat()},it-provider,case 1\n")
    assert _cli(deployment, "publish", str(listing)).returncode == 0

    def retro(records) -> list[Alert]:
        return [a for a in (Alert.model_validate_json(r.value) for r in records)
                if a.rule_id == "retro_listed_counterparty"]
    records = await deployment.read(deployment.topics["alerts"],
                                    lambda rs: len(retro(rs)) >= 2, timeout_s=60)
    alerts = retro(records)
    # 90 days' look-back: the payer of 200 days ago is not alerted.
    assert sorted(a.customer_id for a in alerts) == ["retro-month", "retro-recent"]
    assert all(a.severity == "critical" and a.evidence.matches["entity"] == "RETRO ENTITY"
               for a in alerts)

    # The same listing again (its reference changed): no second alert for anyone.
    listing.write_text(listing.read_text().replace("case 1", "case 1 amended"))
    assert _cli(deployment, "publish", str(listing)).returncode == 0
    await asyncio.sleep(3)
    records = await deployment.read(deployment.topics["alerts"],
                                    lambda rs: len(retro(rs)) >= 2, timeout_s=30, quiet_s=3)
    assert len({a.alert_id for a in retro(records)}) == len(retro(records)) == 2
    assert worker.running, worker.log_tail()
