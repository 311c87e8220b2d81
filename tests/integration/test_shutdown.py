"""A stop is bounded: SIGTERM ends the worker within AMLSTREAM_SHUTDOWN_TIMEOUT_S whatever it
is doing, here while the broker it flushes and commits to is gone (the flush cannot finish)."""

import signal
import time
from datetime import UTC, datetime

import pytest

from agents.local_broker import LocalBroker, free_port_pair
from agents.shutdown import EXIT_TIMED_OUT
from streams.synthetic import planted_scenarios, to_messages

pytestmark = pytest.mark.integration

END = datetime.now(UTC).replace(microsecond=0)
SHUTDOWN_TIMEOUT_S = 5.0


async def test_sigterm_while_the_broker_is_gone_ends_the_worker_in_bounded_time(
        deployment, tmp_path, request_cleanup):
    broker = LocalBroker(port=free_port_pair(), data_dir=tmp_path / "broker")
    broker.start()  # its own broker: this test stops it
    request_cleanup(broker.stop)
    deployment.bootstrap = broker.bootstrap
    worker = deployment.worker()
    worker.env["AMLSTREAM_SHUTDOWN_TIMEOUT_S"] = str(SHUTDOWN_TIMEOUT_S)
    worker.start()
    request_cleanup(worker.kill)
    planted = [s for s in planted_scenarios(END) if s.name == "large-transfer"]
    await deployment.produce(to_messages(planted))
    alerts = await deployment.read(deployment.topics["alerts"], lambda r: len(r) >= 1)
    assert len(alerts) == 1, worker.log_tail()

    broker.stop()  # the worker's next flush, commit and fetch have nowhere to go
    time.sleep(3)
    assert worker.running, worker.log_tail()
    assert worker.process is not None
    started = time.monotonic()
    worker.process.send_signal(signal.SIGTERM)
    try:
        status = worker.process.wait(SHUTDOWN_TIMEOUT_S + 15)
    except Exception:
        pytest.fail(f"the worker did not stop within {SHUTDOWN_TIMEOUT_S + 15} s:\n"
                    + worker.log_tail())
    took_s = time.monotonic() - started

    assert took_s < SHUTDOWN_TIMEOUT_S + 10, worker.log_tail()
    assert status in (0, EXIT_TIMED_OUT), worker.log_tail()
