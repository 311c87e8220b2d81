"""The worker on a real broker: rules to alerts, bad input to dead letters, metrics over HTTP,
and a restart (clean or killed) that neither loses nor double-counts."""

import asyncio
import base64
from collections import Counter
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from schemas.alerts import Alert
from schemas.dead_letters import DeadLetter
from streams.state import CustomerState
from streams.synthetic import (
    Scenario,
    ScenarioBuilder,
    background_scenarios,
    bad_messages,
    planted_scenarios,
    to_messages,
)
from streams.windows import Window

pytestmark = pytest.mark.integration

END = datetime.now(UTC).replace(microsecond=0)


def _alerts(records) -> list[Alert]:
    return [Alert.model_validate_json(r.value) for r in records]


async def test_each_planted_behaviour_yields_exactly_its_alerts(deployment, running_worker):
    planted = planted_scenarios(END)
    await deployment.produce(to_messages(planted + background_scenarios(300, END, seed=11)))
    expected = Counter((s.customer_id, rule) for s in planted for rule in s.expected_rules)

    records = await deployment.read(deployment.topics["alerts"],
                                    lambda r: len(r) >= sum(expected.values()))
    alerts = _alerts(records)

    assert Counter((a.customer_id, a.rule_id) for a in alerts) == expected
    events_of = {s.customer_id: {e["event_id"] for _, e in s.events} for s in planted}
    for alert in alerts:
        assert alert.evidence.triggering_events, alert.rule_id
        assert {e.event_id for e in alert.evidence.triggering_events} <= events_of[
            alert.customer_id]
        assert alert.rule_set_version
    assert running_worker.running, running_worker.log_tail()


async def test_bad_input_is_dead_lettered_counted_and_the_worker_goes_on(deployment,
                                                                        running_worker):
    bad = bad_messages(END)
    good = to_messages([s for s in planted_scenarios(END) if s.name == "large-transfer"])
    bad_customer = [m for m, _ in bad]
    await deployment.produce(bad_customer + good)

    letters = [DeadLetter.model_validate_json(r.value) for r in await deployment.read(
        deployment.topics["dead-letters"], lambda r: len(r) >= len(bad))]
    alerts = _alerts(await deployment.read(deployment.topics["alerts"], lambda r: len(r) >= 1))

    assert sorted(d.error_kind.value for d in letters) == sorted(kind for _, kind in bad)
    sent = {m.value for m, _ in bad}
    assert {base64.b64decode(d.original_b64) for d in letters} == sent
    assert all(d.reasons and d.source_topic == deployment.topics["transactions"]
               for d in letters)
    assert [a.rule_id for a in alerts] == ["large_transfer"]

    await asyncio.sleep(1)
    metrics = deployment.metrics()
    consumed = {(dict(labels)["topic"], dict(labels)["outcome"]): value
                for (name, labels), value in metrics.items()
                if name == "amlstream_events_consumed_total"}
    transactions = deployment.topics["transactions"]
    onboarding = deployment.topics["onboarding"]
    assert consumed[(transactions, "dead_lettered")] == len(bad)
    processed = consumed[(transactions, "processed")] + consumed[(onboarding, "processed")]
    assert processed + len(bad) == len(bad_customer) + len(good)
    reasons = Counter(kind for _, kind in bad)
    for kind, count in reasons.items():
        assert metrics[("amlstream_dead_letters_total", (("reason", kind),))] == count
    assert metrics[("amlstream_alerts_total",
                    (("rule", "large_transfer"), ("severity", "high")))] == 1
    assert metrics[("amlstream_customers_in_state", ())] >= 1  # the planted customer at least
    text = deployment.metrics_text()
    assert "planted-" not in text and "bad-customer" not in text  # no customer ids


def _steady_customers(count: int, transfers: int) -> list[Scenario]:
    """Verified tier-3 customers, small transfers 4 minutes apart: they never alert."""
    scenarios = []
    start = END - timedelta(days=1)
    for n in range(count):
        scenario = Scenario("steady", f"steady-{n:03d}", ())
        b = ScenarioBuilder(scenario)
        b.verified(END - timedelta(days=60), tier=3)
        for i in range(transfers):
            b.transfer(start + timedelta(seconds=240 * i + n), "in" if i % 2 else "out", "12.34")
        scenarios.append(scenario)
    return scenarios


async def _feed_paced(deployment, messages, chunk: int, pause_s: float) -> None:
    for start in range(0, len(messages), chunk):
        await deployment.produce(messages[start:start + chunk])
        await asyncio.sleep(pause_s)


def _final_states(records) -> dict[bytes, CustomerState]:
    """Customers' states (a partition's network clock, under a NUL-prefixed key, apart)."""
    return {r.key: CustomerState.from_bytes(r.value) for r in records
            if r.value is not None and not r.key.startswith(b"\x00")}


@pytest.mark.parametrize("how", ["stop", "kill"])
async def test_restart_mid_stream_continues_without_double_counting(deployment, how,
                                                                   request_cleanup):
    """Stop (SIGTERM) or kill (SIGKILL) the worker while it is busy. The killed worker's
    replacement starts with an empty state directory, as on a new machine, so its state
    comes from the changelog alone."""
    customers, per_customer = 20, 120
    velocity = [s for s in planted_scenarios(END) if s.name == "velocity-24h"]
    messages = to_messages(_steady_customers(customers, per_customer) + velocity)
    total = len(messages)
    first = deployment.worker()
    first.start()
    request_cleanup(first.kill)
    loop = asyncio.get_running_loop()
    await _metrics_served(deployment, first, loop.time() + 60)
    # Fed at a steady pace (~10 s) once the worker is up, so it is surely mid-stream when it
    # is stopped or killed, however slowly it started.
    feeding = asyncio.create_task(_feed_paced(deployment, messages, chunk=100, pause_s=0.4))
    deadline = loop.time() + 90
    processed = 0.0
    while loop.time() < deadline and processed < total * 0.3:
        await asyncio.sleep(0.1)
        try:
            processed = sum(v for (name, _), v in deployment.metrics().items()
                            if name == "amlstream_events_consumed_total")
        except OSError:
            continue
    assert 0 < processed < total, f"worker processed {processed} of {total} before the restart"
    first.kill() if how == "kill" else first.stop()
    await feeding

    second = deployment.worker("state-new" if how == "kill" else "state")
    second.start()
    try:
        expected_keys = customers + 1
        changelog = await deployment.read(
            deployment.changelog_topic,
            lambda r: _settled(_final_states(r), per_customer, expected_keys), timeout_s=120)
        alerts = _alerts(await deployment.read(deployment.topics["alerts"], lambda r: len(r) >= 1))

    finally:
        second.stop()

    states = _final_states(changelog)
    for n in range(customers):
        state = states[f"steady-{n:03d}".encode()]
        totals = state.windows.totals(Window.D30, state.watermark_s)
        assert totals.count_total == per_customer
        assert totals.usd_cents == per_customer * 1234
    assert {a.alert_id for a in alerts} and {a.rule_id for a in alerts} == {"velocity_24h"}
    assert len({a.alert_id for a in alerts}) == 1  # a re-sent alert keeps its id


async def _metrics_served(deployment, worker, deadline: float) -> None:
    loop = asyncio.get_running_loop()
    while loop.time() < deadline:
        try:
            deployment.metrics()
            return
        except OSError:
            await asyncio.sleep(0.2)
    pytest.fail("the worker served no metrics:\n" + worker.log_tail())


def _settled(states: dict[bytes, CustomerState], per_customer: int, keys: int) -> bool:
    steady = [s for k, s in states.items() if k.startswith(b"steady-")]
    return len(states) >= keys and all(
        s.windows.totals(Window.D30, s.watermark_s).count_total >= per_customer for s in steady)


def test_alert_json_is_strict():
    """Guard for the integration assertions above: alerts reject unknown fields."""
    with pytest.raises(ValueError):
        Alert.model_validate_json(orjson.dumps({"unknown": 1}))
