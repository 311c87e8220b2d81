"""The Docker image and compose file, read statically (no Docker engine here): what would go
wrong in a build or a deployment that nobody runs in CI."""

import fnmatch
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


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
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    for name, service in services.items():
        image = service.get("image")
        if image is not None:
            tag = image.rpartition(":")[2]
            assert ":" in image and tag not in ("latest", ""), f"{name}: {image}"
    assert services["worker"]["restart"] in ("unless-stopped", "always", "on-failure")
