"""The backtest's network stages: the producers' interleaving and the fetch sizes change
nothing (the ordering's promise, exercised on every run), every planted network typology
alerts where it should, and a record a stage cannot read is dead-lettered."""

from datetime import UTC, datetime

import pytest

from schemas.dead_letters import ErrorKind
from streams.backtest import NetworkTiming, place, run_network_stages, run_records
from streams.network.offline import stage_replay
from streams.network.stage import COUNTERPARTY, FLOW
from streams.replay import InputRecord, StepOutcome
from streams.synthetic import background_scenarios, to_messages
from streams.synthetic_network import NETWORK_PLANTED, network_scenarios

END = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def s1(default_rules):
    """S1 over the network typologies and ordinary customers, once (its legs, its clocks)."""
    scenarios = network_scenarios(END) + background_scenarios(150, END, seed=3)
    records = place([(m.topic, m.key, m.value) for m in to_messages(scenarios)], 4)
    return records


def network_alerts(records, rules, seed: int, partitions: int = 4):
    result = run_records(records, rules, partitions, network=NetworkTiming())
    run_network_stages(result, rules, partitions, NetworkTiming(), seed=seed)
    assert result.network is not None
    return [alert for alert in result.network.alerts]


def test_any_interleaving_of_the_producers_gives_the_same_alerts(s1, default_rules):
    first = network_alerts(s1, default_rules, seed=0)
    assert {a.rule_id for a in first} >= {"collection_point", "flow_cycle", "layering_chain"}
    expected = {a.alert_id: a.model_dump() for a in first}
    assert len(expected) == len(first)
    for seed in range(1, 12):  # the same alerts, evidence included (their order across
        again = network_alerts(s1, default_rules, seed=seed)  # partitions may differ)
        assert {a.alert_id: a.model_dump() for a in again} == expected, seed


def test_every_typology_alerts_on_its_customers_only(s1, default_rules):
    alerts = network_alerts(s1, default_rules, seed=5)
    by_customer = {(a.customer_id, a.rule_id) for a in alerts}
    network_rules = {rule for _, rules in NETWORK_PLANTED.values() for rule in rules}
    for name, (customers, rules) in NETWORK_PLANTED.items():
        for rule in set(rules) & network_rules - {"mixer_exposure"}:
            if rule.startswith(("fan_", "deposits_")):
                continue  # S1's own rules
            assert any((c, rule) in by_customer for c in customers), (name, rule)
    planted = {c for customers, _ in NETWORK_PLANTED.values() for c in customers}
    assert {a.customer_id for a in alerts} <= planted  # ordinary customers: none


def test_the_hop_delay_changes_when_not_whether_a_fast_chain_is_found(s1, default_rules):
    """The fast layering chain (hops minutes apart) is found with the hop delay at 1 minute
    and at 6 hours: catch-ups complete it."""
    fast = NETWORK_PLANTED["planted-fast-layering"][0]
    for hop_delay_s in (60, 6 * 3600):
        timing = NetworkTiming(hop_delay_s=hop_delay_s)
        result = run_records(s1, default_rules, 4, network=timing)
        run_network_stages(result, default_rules, 4, timing)
        assert result.network is not None
        assert {a.customer_id for a in result.network.alerts
                if a.rule_id == "layering_chain"} & set(fast), hop_delay_s


# --- records that are not what a stage reads: dead-lettered, the stage goes on -----------------

MALFORMED = [
    b"not json",
    b"{}",
    b'["p", 1, "f0", [1], 5, 2]',  # truncated
    b'["l", 1]',
    b'["m", 1]',
    b'["m", 1, "f0", "soon", false, null, null]',  # a promise that is not a number
    b'["p", 1, "f0", [1], "5", 2, "B", "A", "e", 1, 2, [], false]',  # order_s a string
    b'["p", 1, "f0", [1], 5, 2, null, "A", "e", 1, 2, [], false]',  # addressed to no one
    b'["a", 1, "f0", [1], 5, 3, "B"]',  # a path alert cut short
    b'["z", 1, "f0"]',  # an unknown kind
]


@pytest.mark.parametrize("stage", [COUNTERPARTY, FLOW])
def test_malformed_internal_records_are_dead_lettered(stage, default_rules):
    replay, _ = stage_replay(stage, default_rules, 1, 3600, lambda raw: raw)
    records = [InputRecord(f"{stage}-topic", 0, n, b"k", raw) for n, raw in enumerate(MALFORMED)]
    # a provenance record is S3's; on S2's topic it is refused too
    wrong_stage = b'["p", 1, "f0", [1], 5, 2, "B", "A", "e", 1, 2, [], false]'
    if stage == COUNTERPARTY:
        records.append(InputRecord(f"{stage}-topic", 0, len(records), b"k", wrong_stage))
    outcome = StepOutcome()
    replay.admit(records, outcome)
    assert [r.offset for r, _ in outcome.rejected] == [r.offset for r in records]
    assert all(rejected.kind == ErrorKind.SCHEMA_VIOLATION for _, rejected in outcome.rejected)
    assert outcome.done == records
    assert replay.apply_released(outcome) == 0
