"""docker-compose.yml as Docker Compose reads it: ``docker-compose config`` (Debian's
docker-compose 1.29; scripts/system-deps installs it) parses, validates and interpolates the
file without a Docker engine. Missing, the test fails: it is never skipped. The file keeps to
the compose specification both 1.29 and the v2 plugin accept."""

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_docker_compose_accepts_the_file():
    compose = shutil.which("docker-compose")
    assert compose, "docker-compose is missing: run scripts/system-deps (Debian docker-compose)"
    result = subprocess.run([compose, "-f", "docker-compose.yml", "config", "--quiet"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
