"""Case 4: over 10,000 malformed inputs of every kind interleaved with a valid stream, 1 MB
values among them, and a malformed record last on every input partition: each one
dead-lettered at its source topic/partition/offset, every alert of the valid events and
none other, lag back to 0, the worker still running, no customer id in its log or metrics.
Then records no stage wrote, on every partition of both internal topics: dead-lettered too,
and the worker goes on."""

import faultkit as fk
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


async def test_malformed_inputs_are_dead_lettered_and_the_rest_goes_on(deployment,
                                                                      request_cleanup):
    valid = fk.time_ordered(fk.stream(1500, seed=404, prefix="m"))
    stream = fk.interleave_malformed(valid, count=10_000, seed=404)
    assert len(stream.bad) >= 10_000
    expected = fk.oracle(stream.valid)
    worker = deployment.worker()
    worker.start()
    request_cleanup(worker.kill)
    placed = await fk.produce(deployment, stream.messages, stream.partitions)
    for kind in fk.INPUT_KINDS:  # the last record of every input partition is a bad one
        last = {}
        for n, where in enumerate(placed):
            if where.kind == kind:
                last[where.partition] = n
        assert sorted(last) == list(range(fk.PARTITIONS))
        assert all(n in stream.bad for n in last.values())

    verdict = fk.Verdict("malformed inputs")
    verdict.lag(await fk.wait_for_lag_zero(deployment, timeout_s=90, workers=[worker]))
    internal = [sent for topic in fk.internal_topics(deployment)
                for sent in await fk.produce_raw(deployment, topic, fk.INTERNAL_GARBAGE)]
    letters = await fk.wait_for_dead_letters(deployment, [(t, p, o) for t, p, o, _ in internal])
    by_source = {(d["source_topic"], d["partition"], d["offset"]): d for d in letters}
    missing = [(t, p, o) for t, p, o, _ in internal if (t, p, o) not in by_source]
    assert not missing, f"internal garbage not dead-lettered: {missing[:5]}"
    assert all(fk.carries_original(by_source[(t, p, o)], value) is None
               for t, p, o, value in internal)
    inputs = [d for d in letters if d["source_topic"] not in fk.internal_topics(deployment)]
    verdict.dead_lettered(deployment, [(placed[n], stream.messages[n].value, label)
                                       for n, label in stream.bad.items()], inputs)
    verdict.alerts(expected, await fk.alerts(deployment, expected))
    verdict.running(worker)
    # No personal data in what operators see: no customer id in the log or the metrics.
    seen = worker.log_path.read_text(errors="replace") + deployment.metrics_text()
    ids = {m.key.decode() for m in stream.valid if m.key}
    leaked = sorted(i for i in ids if i in seen)
    assert not leaked, f"customer ids in the worker's log or metrics: {leaked[:5]}"
    verdict.check(worker)
