"""Case 5: determinism under load. One preloaded stream (onboarding first, then
transactions) drained by a fresh worker on an idle machine and by another with two
busy-looping processes beside it: exactly the oracle's alert ids both times."""

import dataclasses
import uuid

import faultkit as fk
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(400)]


async def test_same_alerts_with_and_without_a_cpu_hog(deployment, cpu_hog, request_cleanup):
    messages = fk.onboarding_first(fk.stream(9000, seed=505, prefix="d", background=1000))
    await fk.create_inputs(deployment)
    await fk.produce(deployment, messages)
    expected = fk.oracle(messages)

    verdict = fk.Verdict(f"determinism under load ({len(messages)} events)")
    for run, hog in (("idle", False), ("cpu-hog", True)):
        drain = fk.sharing_inputs(
            dataclasses.replace(deployment, name=f"{deployment.name}-{run}-{uuid.uuid4().hex[:4]}",
                                metrics_port=fk.free_port(), work_dir=deployment.work_dir / run),
            deployment)
        if hog:
            cpu_hog.start()
        worker = drain.worker()
        worker.start()
        request_cleanup(worker.kill)
        behind = await fk.wait_for_lag_zero(drain, timeout_s=120, workers=[worker])
        cpu_hog.stop()
        run_verdict = fk.Verdict(run)
        run_verdict.lag(behind)
        run_verdict.alerts(expected, await fk.alerts(drain, expected))
        run_verdict.running(worker)
        worker.stop()
        verdict.problems += [f"{run}: {p}" for p in run_verdict.problems]
    verdict.check()
