"""The Docker image and compose file, read statically (no Docker engine here): what would go
wrong in a build or a deployment that nobody runs in CI."""

import fnmatch
import re
from pathlib import Path

import yaml

from agents.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def _services() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]


def _ignored() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_the_build_context_leaves_out_the_local_environment_but_not_what_the_image_copies():
    ignored = _ignored()
    assert {".venv", ".git", "data"} <= set(ignored)
    copied = [word for line in (ROOT / "Dockerfile").read_text().splitlines()
              if line.startswith("COPY ") for word in line.split()[1:-1]]
    assert copied
    for source in copied:
        assert (ROOT / source).exists(), source
        assert not any(fnmatch.fnmatch(source, pattern) for pattern in ignored), source


def test_the_worker_runs_as_an_unprivileged_user():
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    last_run = max(n for n, line in enumerate(lines) if line.startswith("RUN "))
    assert lines.index(f"USER {users[-1]}") > last_run  # nothing runs as root after it


def test_images_are_pinned_and_the_worker_restarts():
    services = _services()
    assert {"kafka", "worker", "prometheus", "grafana"} <= set(services)
    for name, service in services.items():
        image = service.get("image")
        if image is not None:
            tag = image.rpartition(":")[2]
            assert ":" in image and tag not in ("latest", ""), f"{name}: {image}"
            # An exact release (x.y.z), not a moving minor tag such as 11 or 11.6.
            assert re.fullmatch(r"v?\d+\.\d+\.\d+", tag), f"{name}: {image}"
    assert services["worker"]["restart"] in ("unless-stopped", "always", "on-failure")


def test_the_worker_is_healthy_when_ready_and_its_web_port_is_local():
    worker = _services()["worker"]
    port = Settings.model_fields["web_port"].default
    check = worker["healthcheck"]
    assert check["test"][:3] == ["CMD", "python", "-c"]
    assert "http://127.0.0.1:%s/ready" in check["test"][3]
    assert f"'AMLSTREAM_WEB_PORT', '{port}'" in check["test"][3]
    assert {"interval", "timeout", "start_period", "retries"} <= set(check)
    assert worker["environment"]["AMLSTREAM_WEB_HOST"] == "0.0.0.0"
    assert worker["environment"]["AMLSTREAM_WEB_PORT"] == port
    assert f"127.0.0.1:{port}:{port}" in worker["ports"]
    # The image checks itself the same way (docker run, other orchestrators).
    dockerfile = (ROOT / "Dockerfile").read_text()
    healthcheck = re.search(r"^HEALTHCHECK (?:.*\\\n)*.*", dockerfile, re.MULTILINE)[0]
    assert check["test"][3] in healthcheck and "--start-period=" in healthcheck
    assert "AMLSTREAM_WEB_HOST=0.0.0.0" in dockerfile


def test_the_broker_keeps_its_log_dirs_on_a_named_volume():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    kafka = compose["services"]["kafka"]
    log_dirs = kafka["environment"]["KAFKA_LOG_DIRS"].split(",")
    mounts = dict(volume.split(":")[1::-1] for volume in kafka["volumes"])
    for log_dir in log_dirs:
        assert mounts.get(log_dir) in compose["volumes"], log_dir
    # Formatted once with this id: it must not change under an existing volume.
    assert kafka["environment"]["CLUSTER_ID"]


def test_prometheus_loads_the_shipped_configuration_and_alerting_rules():
    prometheus = _services()["prometheus"]
    mounts = dict(volume.split(":")[1::-1] for volume in prometheus["volumes"])
    config_path = mounts["/etc/prometheus/prometheus.yml"]
    assert (ROOT / config_path).resolve() == ROOT / "deploy" / "prometheus" / "prometheus.yml"
    config = yaml.safe_load((ROOT / config_path).read_text())
    for rule_file in config["rule_files"]:
        source = mounts[f"/etc/prometheus/{rule_file}"]
        assert (ROOT / source).resolve() == ROOT / "deploy" / "prometheus" / rule_file
