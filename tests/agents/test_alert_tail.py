"""``amlstream alerts``: filters, JSON and an exact limit (the topic read by a stand-in
consumer; the real one is exercised by the demo's integration test)."""

import json
from types import SimpleNamespace

from agents import alert_tail, broker_wait
from agents.alert_tail import AlertFilter, selected, tail_alerts
from agents.cli import main
from agents.settings import Settings
from schemas.alerts import Severity
from tests.unit.test_report import alert

ALERTS = [alert("a1", "large_transfer", "c1", Severity.HIGH),
          alert("a2", "structuring", "c2", Severity.MEDIUM),
          alert("a3", "sanctioned_counterparty", "c1", Severity.CRITICAL),
          alert("a4", "velocity_1h", "c1", Severity.LOW)]
VALUES = [a.model_dump_json().encode() for a in ALERTS]


def test_filters_by_customer_rule_and_least_severity():
    def ids(wanted):
        return [json.loads(line)["alert_id"] for line in selected(VALUES, wanted, True)]
    assert ids(AlertFilter()) == ["a1", "a2", "a3", "a4"]
    assert ids(AlertFilter(customer_id="c1")) == ["a1", "a3", "a4"]
    assert ids(AlertFilter(rule_id="structuring")) == ["a2"]
    assert ids(AlertFilter(min_severity=Severity.HIGH)) == ["a1", "a3"]
    assert ids(AlertFilter("c1", None, Severity.MEDIUM)) == ["a1", "a3"]
    line = next(selected(VALUES, AlertFilter(rule_id="structuring"), False))
    assert line.startswith("MEDIUM") and "structuring" in line and "c2" in line


class _Consumer:
    """Hands out every record in one fetch, then nothing."""

    def __init__(self, values):
        self.batches = [{"tp": [SimpleNamespace(value=v) for v in values]}]
        self.stopped = False

    async def getmany(self, timeout_ms):
        return self.batches.pop(0) if self.batches else {}

    async def stop(self):
        self.stopped = True


async def test_the_limit_is_exact_even_within_one_fetch(monkeypatch, capsys):
    """``--limit 1`` printed the whole first fetch (21 alerts in the demo)."""
    consumer = _Consumer(VALUES * 6)
    monkeypatch.setattr(alert_tail.kafka_clients, "consumer", lambda *a, **k: consumer)

    async def start(consumer, settings):
        return None
    monkeypatch.setattr(alert_tail.kafka_clients, "start", start)

    await tail_alerts(Settings(), from_beginning=True, limit=1, idle_exit_s=0.1)
    assert len(capsys.readouterr().out.splitlines()) == 1
    consumer.batches = [{"tp": [SimpleNamespace(value=v) for v in VALUES * 6]}]
    await tail_alerts(Settings(), limit=3, idle_exit_s=0.1,
                      wanted=AlertFilter(customer_id="c1"), as_json=True)
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [a["alert_id"] for a in printed] == ["a1", "a3", "a4"]
    assert consumer.stopped


def test_the_command_takes_the_filters(monkeypatch):
    monkeypatch.setattr(broker_wait, "reach", lambda bootstrap: None)  # the broker is "up"
    seen = {}

    async def fake(settings, **kwargs):
        seen.update(kwargs)
        return 0
    monkeypatch.setattr(alert_tail, "tail_alerts", fake)
    assert main(["alerts", "--customer", "c1", "--rule", "structuring", "--severity", "high",
                 "--json", "--limit", "2"]) == 0
    assert seen["wanted"] == AlertFilter("c1", "structuring", Severity.HIGH)
    assert seen["as_json"] is True and seen["limit"] == 2


def test_a_broker_lost_after_the_check_is_one_line_naming_the_setting(monkeypatch, capsys):
    """The broker answered ``broker_wait``, then the consumer could not bootstrap (a broker
    that went away); a broker never reached is tested in test_cli.py."""
    from aiokafka.errors import KafkaConnectionError

    monkeypatch.setattr(broker_wait, "reach", lambda bootstrap: None)

    async def unreachable(client, settings):
        raise KafkaConnectionError("Unable to bootstrap from [('127.0.0.1', 1)]")
    monkeypatch.setattr(alert_tail.kafka_clients, "start", unreachable)
    monkeypatch.setenv("AMLSTREAM_BROKER", "kafka://127.0.0.1:1")
    assert main(["alerts"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "127.0.0.1:1" in err[0] and "AMLSTREAM_BROKER" in err[0]
    assert "Traceback" not in err[0]


def test_long_ids_keep_the_columns_aligned():
    from agents.alert_tail import CUSTOMER_WIDTH, RULE_WIDTH, fit

    assert fit("c-1", CUSTOMER_WIDTH) == "c-1".ljust(CUSTOMER_WIDTH)
    long_id = "customer-" + "x" * 100 + "-tail"
    shortened = fit(long_id, CUSTOMER_WIDTH)
    assert len(shortened) == CUSTOMER_WIDTH
    assert shortened.startswith("customer-") and shortened.endswith("-tail") and "…" in shortened
    assert fit("retro_listed_counterparty", RULE_WIDTH) == "retro_listed_counterparty"
