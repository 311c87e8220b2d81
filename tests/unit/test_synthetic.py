"""The synthetic stream through the backtest: exactly the planted alerts, every bad message
rejected with its kind."""

from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from itertools import pairwise
from types import SimpleNamespace

import pytest

from streams.backtest import run_backtest
from streams.network import NETWORK_RULE_IDS
from streams.rules import RULE_IDS
from streams.synthetic import (
    background_scenarios,
    bad_messages,
    planted_scenarios,
    to_messages,
)
from streams.synthetic_network import MIXER_USDT_POOL, NETWORK_PLANTED, network_scenarios

END = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)
NEEDS_INTEL = {"high_risk_counterparty"}
"""Rules that fire only on a listing of the address-intel topic: the stream carries none."""


@pytest.fixture(scope="module")
def stream():
    planted = planted_scenarios(END) + network_scenarios(END)
    background = background_scenarios(500, END)
    bad = bad_messages(END)
    good = [(m.topic, m.key, m.value) for m in to_messages(planted + background)]
    return SimpleNamespace(planted=planted, background=background, bad=bad, good=len(good),
                           inputs=good + [(m.topic, m.key, m.value) for m, _ in bad])


@pytest.fixture(scope="module")
def result(stream, rules):
    return run_backtest(stream.inputs, rules)


def test_alerts_are_exactly_the_planted_ones(stream, result):
    planted, background = stream.planted, stream.background
    expected = Counter((s.customer_id, rule) for s in planted for rule in s.expected_rules)

    assert Counter((a.customer_id, a.rule_id) for a in result.alerts) == expected
    assert len(planted) == 21 + 34
    assert {s.customer_id for s in background}.isdisjoint({a.customer_id for a in result.alerts})


def test_every_rule_is_planted(stream):
    planted = Counter(rule for s in stream.planted for rule in s.expected_rules)

    # Retroactive screening needs a listing published after the transfers (the worker's
    # tests/integration/test_retro_screening.py); the backtest reads no intel topic.
    network = set(NETWORK_RULE_IDS) - {"retro_listed_counterparty"}
    assert set(planted) == set(RULE_IDS) - NEEDS_INTEL | network
    assert all(len(s.expected_rules) <= 1 for s in stream.planted)
    assert planted["unverified_activity"] == planted["high_risk_jurisdiction"] == 2
    assert planted["collection_point"] == planted["distribution_point"] == 6
    assert planted["layering_chain"] == 8 and planted["indirect_exposure"] == 2
    assert planted["flow_cycle"] == 3
    assert sum(planted.values()) == 21 + 33


def test_shipped_rules_raise_the_same_alerts(stream, result, default_rules):
    """With the risk rating's effects on (as shipped) the same customers alert on the same
    rules: none of them is high risk when it alerts."""
    shipped = run_backtest(stream.inputs, default_rules)

    assert [(a.customer_id, a.rule_id, a.severity) for a in shipped.alerts] == [
        (a.customer_id, a.rule_id, a.severity) for a in result.alerts]
    assert all(a.customer.risk_level != "high" for a in shipped.alerts)


def test_every_customer_is_assessed_once_unless_still_onboarding(stream, result):
    """Each customer gets one initial assessment (from 'unrated'), except one whose KYC is
    still pending within the grace period; background customers end low, with nothing but
    their initial assessment published."""
    first = [c for c in result.risk_changes if c.previous_level == "unrated"]
    background = {s.customer_id.encode() for s in stream.background}
    pending = sorted(key.decode() for key, state in result.states.items()
                     if state.profile.kyc_status in ("registered", "submitted"))

    assert pending == ["planted-unverified-pending"]
    assert sorted(c.customer_id for c in first) == sorted(
        key.decode() for key in result.states if key.decode() not in pending)
    assert {result.states[key].risk_level for key in background} == {"low"}
    published = Counter(c.customer_id for c in result.risk_changes)
    assert {published[key.decode()] for key in background} == {1}


def test_background_is_busy_enough_to_mean_something(stream, result):
    transfers = sum(1 for s in stream.background for topic, _ in s.events
                    if topic == "transactions")

    assert len(stream.background) == 500
    assert transfers > 1000
    assert result.events_applied == stream.good
    assert len(result.states) == 521 + 34


def test_every_bad_message_is_rejected_with_its_kind(stream, result):
    assert [(position, rejected.kind.value) for position, rejected in result.rejected] == [
        (stream.good + n, kind) for n, (_, kind) in enumerate(stream.bad)]
    assert len(stream.bad) == 12
    assert all(rejected.reasons for _, rejected in result.rejected)


def test_planted_alerts_carry_evidence(result):
    by_rule = {a.rule_id: a for a in result.alerts}
    by_customer = {a.customer_id: a for a in result.alerts}

    assert by_rule["structuring"].evidence.aggregates["near_threshold_usd_total"] == 28850
    assert by_rule["sanctioned_counterparty"].evidence.matches["entity"] == "LAZARUS GROUP"
    assert by_rule["volume_30d"].observed_value == 54000
    assert by_rule["velocity_24h"].observed_value == 31
    assert by_customer["planted-jurisdiction-counterparty"].severity == "high"  # IR: black
    assert by_customer["planted-jurisdiction-residence"].severity == "medium"  # VE: grey
    assert by_rule["rapid_in_out"].observed_value == Decimal("85.0")  # 17,000 of 20,000
    assert by_rule["dormant_reactivated"].observed_value == Decimal("100.42")  # days
    assert by_rule["new_account_high_volume"].observed_value == 24000
    assert by_rule["declared_volume_exceeded"].observed_value == 6000  # > 5000 (the floor)
    assert by_rule["fan_in"].observed_value == by_rule["fan_out"].observed_value == 10
    assert by_rule["repeated_new_address"].observed_value == 3
    assert by_rule["volume_spike"].observed_value == 10000
    assert by_rule["mixer_exposure"].evidence.matches["service"] == "Tornado Cash"
    unhosted = by_rule["unhosted_after_deposit"]
    assert unhosted.evidence.matches["jurisdiction_profile"] == "EU"  # resident in DE
    assert unhosted.threshold == Decimal("1080.00")  # 1,000 EUR
    assert all(a.rule_set_version == "2026-11-21.1" for a in result.alerts)


def test_the_backtest_is_deterministic(stream, rules, result):
    again = run_backtest(stream.inputs, rules)

    assert [a.model_dump() for a in again.alerts] == [a.model_dump() for a in result.alerts]


# --- The planted network typologies (streams/synthetic_network.py) ---------------------------

TYPOLOGIES = {
    "planted-collection": (6, ("collection_point",)),
    "planted-distribution": (6, ("distribution_point",)),
    "planted-shared-wallet": (2, ("shared_wallet_unrelated",)),
    "planted-cycle": (3, ("flow_cycle",)),
    "planted-layering": (5, ("layering_chain",)),
    "planted-fast-layering": (4, ("layering_chain",)),
    "planted-indirect-mixer": (3, ("indirect_exposure", "mixer_exposure")),
    "planted-consolidation": (1, ("deposits_consolidated",)),
    "planted-fan-in-30d": (1, ("fan_in_30d",)),
    "planted-fan-in-7d": (1, ("fan_in_7d",)),
    "planted-fan-out-7d": (1, ("fan_out_7d",)),
    "planted-fan-out-30d": (1, ("fan_out_30d",)),
}
HOUR, DAY = 3600, 86400


@pytest.fixture(scope="module")
def network():
    return network_scenarios(END)


def _transfers(scenarios, name=None):
    """Every transaction event of ``scenarios`` (of scenario ``name`` only, if given), with
    its time in epoch seconds, in event-time order."""
    events = [{**event, "at": int(datetime.fromisoformat(event["occurred_at"]).timestamp())}
              for s in scenarios if name in (None, s.name)
              for topic, event in s.events if topic == "transactions"]
    return sorted(events, key=lambda e: (e["at"], e["event_id"]))


def _usd(event):
    return Decimal(event["amount_usd"])


def test_network_planted_names_each_scenario_its_customers_and_rules(stream, network):
    by_name: dict[str, list[str]] = {}
    for s in network:
        by_name.setdefault(f"planted-{s.name}", []).append(s.customer_id)

    assert {name: (len(ids), rules) for name, (ids, rules) in NETWORK_PLANTED.items()} == (
        TYPOLOGIES)
    assert {name: tuple(ids) for name, ids in by_name.items()} == {
        name: ids for name, (ids, _) in NETWORK_PLANTED.items()}
    assert NETWORK_PLANTED["planted-cycle"][0] == (
        "planted-cycle-a", "planted-cycle-b", "planted-cycle-c")
    ids = [s.customer_id for s in network]
    others = {s.customer_id for s in planted_scenarios(END) + stream.background}
    assert len(set(ids)) == len(ids) == 34 and others.isdisjoint(ids)


def test_network_customers_are_verified_before_they_transfer(network):
    for s in network:
        onboarding = [e for topic, e in s.events if topic == "onboarding"]
        verified = next(e for e in onboarding if e["type"] == "kyc_verified")
        registered = onboarding[0]
        first_transfer = _transfers([s])[0]

        assert registered["type"] == "registered" and verified["kyc_tier"] == 2
        assert registered["country_of_residence"] and registered["nationality"]
        assert verified["occurred_at"] < first_transfer["occurred_at"]
    events = [e["event_id"] for s in network for _, e in s.events]
    assert len(set(events)) == len(events)


def test_internal_transfers_have_both_legs_at_the_same_time(network):
    internal = [e for e in _transfers(network) if "customer_id" in e["counterparty"]]
    outs = [e for e in internal if e["direction"] == "out"]
    ins = {(e["customer_id"], e["counterparty"]["customer_id"], e["at"], e["amount_usd"])
           for e in internal if e["direction"] == "in"}

    assert len(outs) == 3 + 4 + 3 + 2  # cycle, layering, fast layering, indirect mixer
    assert len(ins) == len(internal) - len(outs) == len(outs)
    assert {(e["counterparty"]["customer_id"], e["customer_id"], e["at"], e["amount_usd"])
            for e in outs} == ins
    assert all(e["counterparty"] == {"type": "other", "customer_id": e["counterparty"][
        "customer_id"]} for e in internal)
    assert all(e["customer_id"] != e["counterparty"]["customer_id"] for e in internal)


def test_amounts_are_decimal_strings_inside_the_stream_span(network):
    transfers = _transfers(network)
    start, end = int(END.timestamp()) - 29 * DAY, int(END.timestamp())

    assert all(isinstance(e["amount"], str) and isinstance(e["amount_usd"], str)
               for e in transfers)
    assert all(Decimal(e["amount"]) > 0 and _usd(e) == _usd(e).quantize(Decimal("0.01"))
               for e in transfers)
    assert all(start < e["at"] < end for e in transfers)


def test_counterparty_typologies_have_their_shape(network):
    paid = [e for e in _transfers(network, "collection") if e["direction"] == "out"]
    assert len({e["customer_id"] for e in paid}) == len(paid) == 6
    assert len({e["counterparty"]["address"] for e in paid}) == 1
    assert all(e["counterparty"]["type"] == "unhosted_wallet" for e in paid)
    assert all(900 <= _usd(e) <= 2000 for e in paid)
    assert paid[-1]["at"] - paid[0]["at"] <= 3 * DAY
    residences = {e["country_of_residence"] for s in network if s.name == "collection"
                  for topic, e in s.events if e.get("type") == "registered"}
    assert len(residences) == 3

    received = _transfers(network, "distribution")
    assert len({e["customer_id"] for e in received}) == len(received) == 6
    assert len({e["counterparty"]["address"] for e in received}) == 1
    assert all(e["direction"] == "in" and 1000 <= _usd(e) <= 1500 for e in received)
    assert received[-1]["at"] - received[0]["at"] <= 4 * DAY

    shared = [e for e in _transfers(network, "shared-wallet") if e["direction"] == "out"]
    profiles = {(e["country_of_residence"], e["nationality"]) for s in network
                if s.name == "shared-wallet" for topic, e in s.events
                if e.get("type") == "registered"}
    assert profiles == {("DE", "DE"), ("JP", "JP")}
    assert len({e["customer_id"] for e in shared}) == 2
    assert len({(e["counterparty"]["type"], e["counterparty"]["address"]) for e in shared}) == 1
    assert shared[-1]["at"] - shared[0]["at"] <= 10 * DAY


def _hops(network, name):
    """The internal transfers of scenario ``name`` (their sender legs), in time order."""
    return [e for e in _transfers(network, name)
            if "customer_id" in e["counterparty"] and e["direction"] == "out"]


def _forwarded(network, name, hops):
    """Each hop's amount over the amount the sender received just before it."""
    received = {}
    shares = []
    for e in _transfers(network, name):
        if e["direction"] == "in":
            received[e["customer_id"]] = _usd(e)
        elif e in hops:
            shares.append(_usd(e) / received[e["customer_id"]])
    return shares


def test_flow_typologies_have_their_shape(network):
    a, b, c = NETWORK_PLANTED["planted-cycle"][0]
    cycle = _hops(network, "cycle")
    assert [(e["customer_id"], e["counterparty"]["customer_id"]) for e in cycle] == [
        (a, b), (b, c), (c, a)]
    assert [later["at"] - e["at"] for e, later in pairwise(cycle)] == [2 * DAY] * 2
    assert _forwarded(network, "cycle", cycle) == [Decimal("0.9")] * 3
    assert _usd(_transfers(network, "cycle")[0]) == 3000  # deposited at A from an exchange

    for name, count, gaps in (("layering", 5, lambda gap: gap >= 2 * HOUR),
                              ("fast-layering", 4, lambda gap: gap > 0)):
        customers = NETWORK_PLANTED[f"planted-{name}"][0]
        hops = _hops(network, name)
        deposit = _transfers(network, name)[0]
        assert deposit["customer_id"] == customers[0]
        assert deposit["counterparty"] == {"type": "exchange"}
        assert [(e["customer_id"], e["counterparty"]["customer_id"]) for e in hops] == list(
            pairwise(customers))
        assert len(hops) == count - 1
        assert all(gaps(later["at"] - e["at"]) for e, later in pairwise(hops))
        assert all(Decimal("0.85") <= share <= Decimal("0.95")
                   for share in _forwarded(network, name, hops))
    fast = _hops(network, "fast-layering")
    assert fast[-1]["at"] - fast[0]["at"] <= 20 * 60

    mixer = _transfers(network, "indirect-mixer")
    hops = _hops(network, "indirect-mixer")
    assert mixer[0]["counterparty"]["address"] == MIXER_USDT_POOL and _usd(mixer[0]) == 2000
    assert len(hops) == 2 and hops[-1]["at"] - mixer[0]["at"] <= 5 * DAY
    assert _forwarded(network, "indirect-mixer", hops) == [Decimal("0.9")] * 2


def test_per_customer_typologies_have_their_shape(network):
    transfers = _transfers(network, "consolidation")
    deposits = [e for e in transfers if e["direction"] == "in"]
    withdrawals = [e for e in transfers if e["direction"] == "out"]
    assert len(deposits) == len({e["counterparty"]["address"] for e in deposits}) == 14
    assert all(250 <= _usd(e) <= 600 for e in deposits)
    assert deposits[-1]["at"] - deposits[0]["at"] <= 6 * DAY
    assert len(withdrawals) == 2 and withdrawals[0]["at"] > deposits[-1]["at"]
    assert withdrawals[-1]["at"] - deposits[0]["at"] < 6 * DAY  # the 7d window covers >= 6
    assert sum(map(_usd, withdrawals)) / sum(map(_usd, deposits)) == Decimal("0.8")

    senders = _transfers(network, "fan-in-30d")
    times = [e["at"] for e in senders]
    assert len(senders) == len({e["counterparty"]["address"] for e in senders}) == 28
    assert max(sum(1 for t in times if start <= t < start + 7 * DAY) for start in times) == 9
    assert times[-1] - times[0] <= 24 * DAY and all(_usd(e) < 200 for e in senders)


def test_network_scenarios_are_deterministic_and_copies_do_not_share(network):
    again = network_scenarios(END)
    copy = network_scenarios(END, prefix="copy")
    addresses = {e["counterparty"].get("address") for e in _transfers(network)} - {
        None, MIXER_USDT_POOL}
    copied = {e["counterparty"].get("address") for e in _transfers(copy)}

    assert [(s.customer_id, s.events) for s in again] == [
        (s.customer_id, s.events) for s in network]
    # collector, distributor, shared, then the consolidation, fan-in and fan-out wallets
    assert len(addresses) == 1 + 1 + 1 + 14 + 28 + 16 + 16 + 26
    assert addresses.isdisjoint(copied)
    assert {s.customer_id for s in copy} == {
        customer.replace("planted-", "copy-", 1) for customers, _ in NETWORK_PLANTED.values()
        for customer in customers}
