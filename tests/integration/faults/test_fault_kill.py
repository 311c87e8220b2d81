"""Case 1: the worker killed with SIGKILL three times mid-stream (the third replacement on an
empty state directory), then a final worker: every alert of the oracle, none other."""

import asyncio

import faultkit as fk
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


async def test_three_kills_mid_stream_lose_nothing_and_add_nothing(deployment,
                                                                   request_cleanup):
    messages = fk.time_ordered(fk.stream(2000, seed=101, prefix="k"))
    expected = fk.oracle(messages)
    feeding = asyncio.create_task(fk.feed_paced(deployment, messages, chunk=400,
                                                pause_s=0.25))
    request_cleanup(feeding.cancel)
    kills = []
    # The first replacement reuses the killed worker's disk, the second starts on an empty
    # one (its state from the changelog alone), the final worker reuses that one's disk.
    for state_dir in ("state", "state", "state-empty"):
        worker = deployment.worker(state_dir)
        worker.start()
        request_cleanup(worker.kill)
        consumed = await fk.wait_for_progress(deployment, worker, 1500, timeout_s=45)
        kills.append((consumed, feeding.done()))
        assert worker.running, worker.log_tail()
        worker.kill()
    final = deployment.worker("state-empty")
    final.start()
    request_cleanup(final.stop)
    await asyncio.wait_for(feeding, 120)

    verdict = fk.Verdict("kill -9 x3")
    verdict.lag(await fk.wait_for_lag_zero(deployment, timeout_s=60, workers=[final]))
    verdict.alerts(expected, await fk.alerts(deployment, expected))
    verdict.running(final)
    if all(done for _, done in kills):
        verdict.problems.append(f"no kill happened while the stream was still fed: {kills}")
    print(f"consumed by each killed worker, stream still fed: {kills}; "
          f"{len(expected)} alert ids expected")
    verdict.check(final)
