"""Case 2: the broker stopped and started again (same data directory and port) mid-stream;
the worker resumes by itself: every alert of the oracle, none other, lag back to 0."""

import asyncio
import dataclasses

import faultkit as fk
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


async def test_worker_resumes_after_a_broker_restart(own_broker, deployment, request_cleanup):
    deployment = dataclasses.replace(deployment, bootstrap=own_broker.bootstrap)
    messages = fk.time_ordered(fk.stream(1500, seed=202, prefix="b"))
    expected = fk.oracle(messages)
    worker = deployment.worker()
    worker.start()
    request_cleanup(worker.kill)
    gate, lock = asyncio.Event(), asyncio.Lock()
    gate.set()
    feeding = asyncio.create_task(fk.feed_paced(deployment, messages, chunk=400, pause_s=0.25,
                                                gate=gate, lock=lock))
    request_cleanup(feeding.cancel)
    consumed = await fk.wait_for_progress(deployment, worker, len(messages) * 0.3,
                                          timeout_s=90)
    assert 0 < consumed < len(messages), f"consumed {consumed} of {len(messages)}"
    gate.clear()  # no new chunk; the one being sent finishes first
    async with lock:
        await asyncio.to_thread(own_broker.stop)
        await asyncio.sleep(5)
        await asyncio.to_thread(own_broker.start)
    gate.set()
    await asyncio.wait_for(feeding, 120)

    verdict = fk.Verdict("broker restart")
    verdict.lag(await fk.wait_for_lag_zero(deployment, timeout_s=90, workers=[worker]))
    verdict.alerts(expected, await fk.alerts(deployment, expected))
    verdict.running(worker)
    verdict.check(worker)
