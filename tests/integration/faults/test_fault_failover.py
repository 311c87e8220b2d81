"""Case 3: two workers on one app id, one killed with SIGKILL mid-stream: the other takes its
partitions over; every alert of the oracle, none other, and the group's committed offsets
reach the inputs' end offsets."""

import asyncio

import faultkit as fk
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


async def test_failover_to_the_second_worker_loses_nothing(deployment, request_cleanup):
    messages = fk.time_ordered(fk.stream(1500, seed=303, prefix="f"))
    expected = fk.oracle(messages)
    second_deployment = fk.with_metrics_port(deployment, fk.free_port(),
                                             deployment.work_dir / "second")
    first = deployment.worker("state-first")
    second = second_deployment.worker("state-second")
    for worker in (first, second):
        worker.start()
        request_cleanup(worker.kill)
    feeding = asyncio.create_task(fk.feed_paced(deployment, messages, chunk=400,
                                                pause_s=0.25))
    request_cleanup(feeding.cancel)
    # Both hold partitions and have worked before the first one dies.
    consumed = [await fk.wait_for_progress(d, w, 1000, timeout_s=90)
                for d, w in ((deployment, first), (second_deployment, second))]
    assert min(consumed) >= 1000 and first.running and second.running, (
        consumed, first.log_tail(), second.log_tail())
    first.kill()
    await asyncio.wait_for(feeding, 120)

    verdict = fk.Verdict("failover after kill -9")
    verdict.lag(await fk.wait_for_lag_zero(deployment, timeout_s=60))
    verdict.alerts(expected, await fk.alert_ids(deployment))
    verdict.running(second)
    verdict.check(second)
