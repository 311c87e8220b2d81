"""The Grafana that docker-compose.yml provisions (deploy/grafana), read statically: the
dashboard's queries read only series the worker exports, and parse (promtool); the
provisioning files point at the datasource and the dashboard folder the compose file mounts."""

import json
import re
from pathlib import Path
from urllib.parse import urlsplit

import yaml
from prometheus_client import ProcessCollector

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "amlstream.json"
# Series every Prometheus has besides what it scrapes: the scrape's health, the alerts' state.
PROMETHEUS_SERIES = {"up", "ALERTS"}
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or",
                "unless", "offset", "bool", "inf", "nan"}


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _panels(panels: list[dict]) -> list[dict]:
    """Every panel, those inside rows too."""
    return [p for panel in panels for p in [panel, *_panels(panel.get("panels", []))]]


def _queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in _panels(dashboard["panels"])
            for target in panel.get("targets", [])]


def _series_read(expr: str) -> set[str]:
    """The series names a PromQL expression reads: what is left of its identifiers once
    strings, label matchers, ranges, grouping labels, functions and keywords are taken out."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    names = re.findall(r"(?<![\w.$])([A-Za-z_:][\w:]*)\b(?!\s*\()", expr)
    return {name for name in names if name.lower() not in PROMQL_WORDS}


def _host_path(service: dict, container_path: str) -> Path:
    """The file of the repository a service sees at ``container_path`` (its bind mounts)."""
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("./") and (container_path == target
                                        or container_path.startswith(target + "/")):
            return ROOT / source / container_path[len(target):].lstrip("/")
    raise AssertionError(f"{container_path} is not mounted from the repository")


def test_the_dashboard_reads_only_series_that_exist(exported_metrics):
    process = {sample.name for metric in ProcessCollector(registry=None).collect()
               for sample in metric.samples}
    assert "process_resident_memory_bytes" in process
    queries = _queries()
    assert len(queries) >= 15
    read = set().union(*map(_series_read, queries))
    assert {"amlstream_consumer_lag_records", "up", "process_cpu_seconds_total"} <= read
    assert read - exported_metrics - process - PROMETHEUS_SERIES == set()
    # Every amlstream_ name, wherever it stands (a misspelt one would read as no data).
    named = {name for query in queries for name in re.findall(r"amlstream_[a-z0-9_]+", query)}
    assert named - exported_metrics == set()


def test_the_dashboard_reads_the_job_prometheus_scrapes():
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    read = {job for query in _queries() for job in re.findall(r'job="([^"]*)"', query)}
    assert read and read <= jobs


def test_every_dashboard_query_parses(promtool, tmp_path):
    # promtool checks PromQL in rule files: one recording rule a query, Grafana's own
    # variable replaced by the value it takes.
    rules = [{"record": f"dashboard:query_{n}", "expr": query.replace("$__rate_interval", "1m")}
             for n, query in enumerate(_queries())]
    assert not any("$" in rule["expr"] for rule in rules)
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_dashboard_uses_the_provisioned_datasource_and_unique_panel_ids():
    dashboard = json.loads(DASHBOARD.read_text())
    datasources = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())["datasources"]
    uids = {source["uid"] for source in datasources if source["type"] == "prometheus"}
    panels = _panels(dashboard["panels"])
    used = {ref["uid"] for panel in panels
            for ref in [panel.get("datasource"), *[t.get("datasource") for t in
                                                   panel.get("targets", [])]] if ref}
    assert used and used <= uids
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    assert dashboard["uid"] and dashboard["title"]


def test_the_datasource_is_the_compose_prometheus():
    compose = _compose()["services"]
    datasources = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())["datasources"]
    (source,) = datasources
    url = urlsplit(source["url"])
    assert url.hostname in compose
    assert url.hostname == "prometheus"
    assert any(port.rpartition(":")[2] == str(url.port) for port in compose["prometheus"]["ports"])
    assert source["isDefault"] is True


def test_the_provisioning_is_mounted_and_finds_the_dashboard():
    grafana = _compose()["services"]["grafana"]
    for kind in ("datasources", "dashboards"):
        host = _host_path(grafana, f"/etc/grafana/provisioning/{kind}")
        assert host.resolve() == (GRAFANA / "provisioning" / kind).resolve()
        assert list(host.glob("*.yml")), kind
    providers = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "amlstream.yml").read_text())["providers"]
    (provider,) = providers
    assert provider["type"] == "file" and provider["folder"]
    folder = _host_path(grafana, provider["options"]["path"])
    assert folder.resolve() == DASHBOARD.parent.resolve()
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert _host_path(grafana, home).resolve() == DASHBOARD.resolve()


def test_grafana_is_local_pinned_and_starts_after_prometheus():
    grafana = _compose()["services"]["grafana"]
    assert re.fullmatch(r"grafana/grafana(-oss)?:\d+\.\d+\.\d+", grafana["image"])
    assert grafana["ports"] == ["127.0.0.1:3000:3000"]
    assert "prometheus" in grafana["depends_on"]
    environment = grafana["environment"]
    assert environment["GF_SECURITY_ADMIN_PASSWORD"] == "${GRAFANA_ADMIN_PASSWORD:-admin}"
    assert environment["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
