"""What the ops tests share: the metric names the worker exports, and Prometheus's promtool."""

import shutil
import subprocess
from collections.abc import Callable

import pytest
from prometheus_client import Counter, Gauge, Histogram

from agents import metrics


@pytest.fixture(scope="session")
def exported_metrics() -> set[str]:
    """Every series name agents.metrics exports (a counter's ``_total``, a histogram's
    ``_bucket``, ``_sum`` and ``_count``, ...), to check the names a query reads against."""
    exported = set()
    for collector in vars(metrics).values():
        if isinstance(collector, Counter | Gauge | Histogram):
            exported |= {sample.name for metric in collector.collect()
                         for sample in metric.samples}
            exported |= {metric.name + suffix for metric in collector.collect()
                         for suffix in ("_total", "_bucket", "")}
    return exported


@pytest.fixture(scope="session")
def promtool() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run Prometheus's promtool (Debian package prometheus; scripts/system-deps installs it).
    Missing, the tests fail: they are never skipped."""
    path = shutil.which("promtool")
    assert path, "promtool is missing: run scripts/system-deps (Debian package prometheus)"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([path, *args], capture_output=True, text=True, timeout=120,
                              check=False)

    return run
