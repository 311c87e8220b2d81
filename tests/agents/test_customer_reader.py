"""The investigators' view reads a customer's state as the worker has it, without touching
the worker's cache, and only for a partition the worker processes now."""

from datetime import UTC, datetime

import pytest

from agents.web_view import CustomerReader, Health, NotOwned
from streams.customer_view import customer_view
from streams.partitioning import partition_of
from streams.synthetic import planted_scenarios

END = datetime(2026, 11, 21, 12, tzinfo=UTC)


async def test_the_view_reads_the_stored_state_and_leaves_the_cache_alone(harness):
    scenario = next(s for s in planted_scenarios(END) if s.name == "structuring")
    key = scenario.customer_id.encode()
    partition = partition_of(key, 4)
    for topic, event in scenario.events:
        await harness.put(topic, key, event, partition=partition)
    await harness.settle()
    customers = harness.aml.state
    customers.cached.clear()  # as if evicted: the store has it
    reader = CustomerReader(customers, 4, owns=lambda p: p == partition)

    state = reader.state(scenario.customer_id)

    assert state is not None and state.profile.kyc_status == "verified"
    assert key not in customers.cached
    view = customer_view(scenario.customer_id, state, harness.aml.rules)
    assert [a["rule_id"] for a in view["alerts"]] == ["structuring"]
    assert view["risk"]["history"] and view["profile"]["kyc_status"] == "verified"
    stranger = next(f"nobody-{n}" for n in range(100)
                    if partition_of(f"nobody-{n}".encode(), 4) == partition)
    assert reader.state(stranger) is None


async def test_a_customer_of_a_partition_the_worker_does_not_process_is_not_read(harness):
    reader = CustomerReader(harness.aml.state, 4, owns=lambda p: False)
    with pytest.raises(NotOwned):
        reader.state("anyone")


def test_liveness_follows_the_processing_loop(monkeypatch):
    import agents.web_view as web_view

    now = [1000.0]
    monkeypatch.setattr(web_view.time, "monotonic", lambda: now[0])
    health = Health(last_tick_s=now[0])
    assert health.live()
    now[0] += web_view.STALLED_AFTER_S + 1
    assert not health.live()
    health.tick()
    assert health.live()
