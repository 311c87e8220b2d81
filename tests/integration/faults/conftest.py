"""The fault suite (issue 12, item 10): the worker under kills, a broker restart, failover,
malformed input and CPU load, each case compared with the in-memory oracle.

The session's broker and the ``deployment`` / ``request_cleanup`` fixtures come from
``tests/integration/conftest.py`` (a parent conftest applies here). This one adds a broker of
the case's own (for the broker restart) and busy processes beside the worker.
"""

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agents.local_broker import LocalBroker, free_port_pair

sys.path.insert(0, str(Path(__file__).parent))  # faultkit, the suite's helpers

from faultkit import CpuHog


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[LocalBroker]:
    """A broker for one case only (the case may stop and restart it)."""
    local = LocalBroker(port=free_port_pair(), data_dir=tmp_path / "own-broker")
    local.start()
    yield local
    local.stop()


@pytest.fixture
def cpu_hog() -> Iterator[CpuHog]:
    hog = CpuHog(count=2)
    yield hog
    hog.stop()
