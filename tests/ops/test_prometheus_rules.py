"""The shipped Prometheus configuration and alerting rules, checked by Prometheus's own
``promtool`` (Debian's ``prometheus`` package; ``scripts/system-deps`` installs it, ``make
test`` runs that first). If promtool is missing the tests fail: they are never skipped."""

import re
from pathlib import Path

import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"


def test_the_configuration_and_its_rule_file_are_valid(promtool):
    result = promtool("check", "config", str(DEPLOY / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "8 rules found" in result.stdout


def test_every_alert_fires_when_it_should_and_only_then(promtool):
    result = promtool("test", "rules", str(DEPLOY / "amlstream-alerts.test.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_test_and_every_metric_it_reads_exists(exported_metrics):
    rules = yaml.safe_load((DEPLOY / "amlstream-alerts.yml").read_text())["groups"][0]["rules"]
    tests = (DEPLOY / "amlstream-alerts.test.yml").read_text()
    assert len(rules) == 8
    assert [r["alert"] for r in rules if f"alertname: {r['alert']}" not in tests] == []
    read = {name for rule in rules for name in re.findall(r"amlstream_[a-z0-9_]+", rule["expr"])}
    assert read - exported_metrics == set()
