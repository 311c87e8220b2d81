"""A shadow run: a candidate rule set on the live inputs beside production, under its own
group, state and topics; production's alerts and offsets are untouched, the shadow's alerts
are the backtest's under the candidate, and ``backtest --compare-topics`` prints the diff."""

import asyncio
import shutil
import socket
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from agents.cli import main
from agents.worker_process import WorkerProcess
from schemas.alerts import Alert
from streams.backtest import run_backtest
from streams.ruleset import load_rules
from streams.synthetic import planted_scenarios, to_messages

pytestmark = pytest.mark.integration

END = datetime(2026, 11, 21, 12, tzinfo=UTC)
CONFIG = Path(__file__).resolve().parents[2] / "config"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _candidate(directory: Path) -> Path:
    shutil.copytree(CONFIG / "lists", directory / "lists")
    document = yaml.safe_load((CONFIG / "rules.yaml").read_text())
    document["tiers"][2]["large_transfer_usd"] = "1000"
    document["version"] = "candidate-large-1000"
    path = directory / "rules.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


async def test_a_shadow_run_writes_its_own_alerts_and_leaves_production_alone(
        deployment, running_worker, tmp_path, request_cleanup, capsys, monkeypatch):
    candidate = _candidate(tmp_path / "candidate")
    messages = to_messages(planted_scenarios(END))
    inputs = [(m.topic, m.key, m.value) for m in messages]
    production = run_backtest(inputs, load_rules(CONFIG / "rules.yaml"))
    shadowed = run_backtest(inputs, load_rules(candidate))
    assert {a.alert_id for a in shadowed.alerts} > {a.alert_id for a in production.alerts}

    base = deployment.worker("shadow-state")
    shadow = WorkerProcess({**base.env, "AMLSTREAM_METRICS_PORT": str(free_port())},
                           tmp_path / "shadow.log", ["--shadow", "cand", "--rules",
                                                     str(candidate)])
    shadow.start()
    request_cleanup(shadow.kill)
    await deployment.produce(messages)

    shadow_alerts = [Alert.model_validate_json(r.value) for r in await deployment.read(
        "cand-alerts", lambda r: len(r) >= len(shadowed.alerts))]
    alerts = [Alert.model_validate_json(r.value) for r in await deployment.read(
        deployment.topics["alerts"], lambda r: len(r) >= len(production.alerts))]

    assert {a.alert_id for a in shadow_alerts} == {a.alert_id for a in shadowed.alerts}
    assert {a.rule_set_version for a in shadow_alerts} == {"candidate-large-1000"}
    assert {a.alert_id for a in alerts} == {a.alert_id for a in production.alerts}
    assert running_worker.running and shadow.running, shadow.log_tail()

    monkeypatch.setenv("AMLSTREAM_BROKER", f"kafka://{deployment.bootstrap}")
    capsys.readouterr()
    assert await asyncio.to_thread(main, ["backtest", "--compare-topics",
                                          deployment.topics["alerts"], "cand-alerts"]) == 0
    printed = capsys.readouterr().out
    row = next(line.split() for line in printed.splitlines()
               if line.strip().startswith("large_transfer"))
    assert int(row[1]) == 0 and int(row[2]) > 0
