"""Network rules at and around their thresholds: fan_in, fan_out, repeated_new_address,
mixer_exposure and unhosted_after_deposit (``streams.rules.network``).

Customers are tier 3 (no tier limit interferes). Each scenario is built so that only the rule
under test can fire, and the tests check every alert raised.
"""

from datetime import timedelta
from decimal import Decimal

import pytest

from streams.ruleset import RuleSetError
from streams.state import COUNTERPARTIES_KEPT
from streams.synthetic import TORNADO_ETH_POOL

S = timedelta(seconds=1)
M = timedelta(minutes=1)
H = timedelta(hours=1)
D = timedelta(days=1)
ADDRESS_A = "0x" + "a7" * 20


def _address(n: int) -> str:
    return f"0x{n:040x}"


# --- fan_in / fan_out: >= 10 distinct senders / receivers in 24h --------------------------


def _fan(directions, addresses, offsets=None):
    """One 100 USD transfer per direction, to/from ``_address(addresses[n])``, 10 min apart
    unless ``offsets`` are given."""
    offsets = offsets or [n * 10 * M for n in range(len(directions))]
    return [(offset, "100.00", direction, _address(n))
            for offset, direction, n in zip(offsets, directions, addresses, strict=True)]


NINE_HOURS = [n * H for n in range(1, 10)]


@pytest.mark.parametrize(
    ("steps", "fired"),
    [
        (_fan(["in"] * 9, range(9)), None),  # min - 1
        (_fan(["in"] * 10, range(10)), "fan_in"),  # min
        (_fan(["out"] * 9, range(9)), None),
        (_fan(["out"] * 10, range(10)), "fan_out"),
        (_fan(["in"] * 10, [n % 5 for n in range(10)]), None),  # 5 senders, twice each
        (_fan(["in", "out"] * 5, range(10)), None),  # 5 senders and 5 receivers
        # nine addresses both send and receive: they count once per direction
        (_fan(["in"] * 9 + ["out"] * 9, [*range(9), *range(9)]), None),
        (_fan(["in"] * 9 + ["out"] * 9 + ["in"], [*range(9), *range(9), 9]), "fan_in"),
        # window edge: the first counterparty is exactly 24h before the tenth ...
        (_fan(["in"] * 10, range(10), [0 * H, *NINE_HOURS[:8], 24 * H]), None),
        # ... or 1 s less
        (_fan(["in"] * 10, range(10), [0 * H, *NINE_HOURS[:8], 24 * H - S]), "fan_in"),
        (_fan(["out"] * 10, range(10), [0 * H, *NINE_HOURS[:8], 24 * H]), None),
        (_fan(["out"] * 10, range(10), [0 * H, *NINE_HOURS[:8], 24 * H - S]), "fan_out"),
    ],
)
def test_fan_thresholds(customer, steps, fired):
    c = customer(tier=3)

    raised = c.send(steps)

    assert raised == [set()] * (len(steps) - 1) + [({fired} if fired else set())]
    if fired:
        (alert,) = c.alerts
        who = "senders" if fired == "fan_in" else "receivers"
        assert (alert.observed_value, alert.threshold) == (10, 10)
        assert alert.measure == f"distinct_{who}_24h"
        assert alert.severity == "high"


@pytest.mark.parametrize(("rule_id", "direction", "other"),
                         [("fan_in", "in", "out"), ("fan_out", "out", "in")])
def test_fan_is_checked_only_on_transfers_of_its_direction(customer, customised, rule_id,
                                                          direction, other):
    """Cooldown 0: from the tenth counterparty on, every transfer of the rule's direction
    alerts; the transfers the other way in between never do."""
    c = customer(tier=3, rules=customised({"rules": {rule_id: {"cooldown_s": 0}}}))
    steps = _fan([direction] * 10 + [other, direction, other], [*range(10), 20, 0, 21])

    raised = c.send(steps)

    assert raised == [set()] * 9 + [{rule_id}, set(), {rule_id}, set()]


DAY_FANS_OFF = {"rules": {rule_id: {"enabled": False} for rule_id in (
    "fan_in_7d", "fan_out_7d", "fan_in_30d", "fan_out_30d")}}
"""The fan rules over days (test_fan_days_rules.py) off: 15 counterparties or more raise them."""


@pytest.mark.parametrize(("rule_id", "direction"), [("fan_in", "in"), ("fan_out", "out")])
@pytest.mark.parametrize("minimum", [2, 25, COUNTERPARTIES_KEPT])
def test_fan_min_counterparties_is_the_count_that_alerts(customer, customised, rule_id,
                                                        direction, minimum):
    rules = customised(DAY_FANS_OFF, {"rules": {rule_id: {"min_counterparties": minimum}}})
    c = customer(tier=3, rules=rules)

    raised = c.send(_fan([direction] * minimum, range(minimum),
                           [n * 10 * M for n in range(minimum)]))

    assert raised == [set()] * (minimum - 1) + [{rule_id}]
    assert c.alerts[0].observed_value == minimum


@pytest.mark.parametrize(("rule_id", "direction"), [("fan_in", "in"), ("fan_out", "out")])
def test_fan_minimum_above_what_state_keeps_is_rejected_or_works(customer, customised, rule_id,
                                                                 direction):
    """State keeps at most COUNTERPARTIES_KEPT counterparties per direction, so distinct
    counts stop there: a larger ``min_counterparties`` must either be rejected by validation
    or still alert."""
    minimum = COUNTERPARTIES_KEPT + 1
    try:
        rules = customised({"rules": {rule_id: {"min_counterparties": minimum}}})
    except RuleSetError as exc:
        assert "min_counterparties" in str(exc)
        return
    c = customer(tier=3, rules=rules)

    c.send(_fan([direction] * minimum, range(minimum),
                  [n * 10 * M for n in range(minimum)]))

    assert rule_id in c.fired()


# --- repeated_new_address: >= 3 withdrawals to an address first used within 24h -----------


@pytest.mark.parametrize(
    ("steps", "fires"),
    [
        ([(H, "out"), (2 * H, "out"), (3 * H, "out")], True),
        ([(H, "out"), (2 * H, "out")], False),  # min - 1
        ([(0 * H, "out"), (12 * H, "out"), (24 * H - S, "out")], True),  # first seen 24h-1s ago
        ([(0 * H, "out"), (12 * H, "out"), (24 * H, "out")], False),  # first seen 24h ago
        # used a month ago: not a new address
        ([(0 * H, "out"), (30 * D, "out"), (30 * D + H, "out"), (30 * D + 2 * H, "out")], False),
        # deposits from the address do not count; withdrawals to it start its first use
        ([(0 * H, "in"), (H, "out"), (2 * H, "out")], False),
        ([(0 * H, "in"), (H, "out"), (2 * H, "out"), (25 * H - S, "out")], True),
    ],
)
def test_repeated_new_address_thresholds(customer, steps, fires):
    c = customer(tier=3)

    raised = c.send([(offset, "400.00", direction, ADDRESS_A) for offset, direction in steps])

    assert raised == [set()] * (len(steps) - 1) + [({"repeated_new_address"} if fires else set())]
    if fires:
        (alert,) = c.alerts
        assert (alert.observed_value, alert.threshold) == (3, 3)
        assert alert.evidence.matches == {"address": ADDRESS_A}
        assert len(alert.evidence.triggering_events) == 3


def test_repeated_new_address_counts_per_address(customer):
    c = customer(tier=3)

    raised = c.send([(n * H, "400.00", "out", _address(n % 2)) for n in range(5)])

    assert raised == [set(), set(), set(), set(), {"repeated_new_address"}]


EIP55 = "0x52908400098527886E0F7030069857D2E4169EE7"
"""An address in EIP-55 checksum case (not on any list)."""
CHECKSUM_CASES = {
    # one address, as checksum, lower and upper case: three withdrawals to it
    "repeated_new_address": [
        (n * H, "400.00", "out", address)
        for n, address in enumerate([EIP55, EIP55.lower(), "0x" + EIP55[2:].upper()])],
    # nine distinct receivers, the ninth in checksum then lower case: still nine
    "fan_out": [(n * M, "100.00", "out", address) for n, address in enumerate(
        [_address(n) for n in range(8)] + [EIP55, EIP55.lower()])],
}


@pytest.mark.parametrize(("rule_id", "fires"), [("repeated_new_address", True),
                                                 ("fan_out", False)])
def test_an_evm_address_in_another_letter_case_is_the_same_counterparty(customer, rule_id,
                                                                        fires):
    """0x-hex letter case is presentation only (the list matching ignores it): three
    withdrawals to one address are three, and one receiver is one, whatever the case."""
    c = customer(tier=3)

    raised = c.send(CHECKSUM_CASES[rule_id])

    assert raised == [set()] * (len(raised) - 1) + [{rule_id} if fires else set()]


# --- mixer_exposure: counterparty type mixer, or an address on the mixer list ------------


@pytest.mark.parametrize(
    ("cp_type", "address", "direction", "service"),
    [
        ("mixer", None, "out", "a mixing service"),
        ("mixer", None, "in", "a mixing service"),
        ("mixer", _address(5), "out", "a mixing service"),
        ("other", TORNADO_ETH_POOL, "out", "Tornado Cash"),  # as listed (checksum case)
        ("other", TORNADO_ETH_POOL.lower(), "out", "Tornado Cash"),
        ("exchange", "0x" + TORNADO_ETH_POOL[2:].upper(), "in", "Tornado Cash"),
        ("unhosted_wallet", TORNADO_ETH_POOL.lower(), "in", "Tornado Cash"),
        ("other", _address(5), "out", None),
        ("exchange", None, "in", None),
        ("other", TORNADO_ETH_POOL[:-1], "out", None),  # one character short
    ],
)
def test_mixer_exposure_by_type_and_by_list(customer, cp_type, address, direction, service):
    c = customer(tier=3)

    alerts = c.transfer(H, "2000.00", direction, address=address, cp_type=cp_type)

    assert c.ids(alerts) == ({"mixer_exposure"} if service else set())
    if service:
        (alert,) = alerts
        assert alert.summary == (f"transfer of 2000.00 USD {'to' if direction == 'out' else 'from'}"
                                 f" {service}")
        assert alert.evidence.matches["counterparty_type"] == cp_type
        listed = service != "a mixing service"
        assert ("listed_address" in alert.evidence.matches) is listed
        if listed:
            assert alert.evidence.matches["listed_address"] == TORNADO_ETH_POOL
            assert alert.evidence.matches["list"] == "mixers"


def test_mixer_exposure_alerts_on_every_transfer(customer):
    """Cooldown 0: each transfer is its own alert."""
    c = customer(tier=3)

    raised = c.send([(n * M, "50.00", direction, TORNADO_ETH_POOL)
                       for n, direction in enumerate(["out", "in", "out"])])

    assert raised == [{"mixer_exposure"}] * 3
    assert len({a.alert_id for a in c.alerts}) == 3


# --- unhosted_after_deposit: withdrawal to an unhosted wallet >= the profile's travel-rule
# threshold, with a deposit in the 24h before ----------------------------------------------


@pytest.mark.parametrize(
    ("residence", "usd", "profile", "threshold"),
    [
        (None, "3000.00", "US", "3000.00"),  # no residence: the default profile, US
        (None, "2999.99", "US", None),
        ("US", "3000.00", "US", "3000.00"),
        ("US", "2999.99", "US", None),
        ("DE", "1080.00", "EU", "1080.00"),  # 1,000 EUR at 1.08
        ("DE", "1079.99", "EU", None),
        ("FR", "1080.00", "EU", "1080.00"),
        ("GB", "1270.00", "UK", "1270.00"),  # 1,000 GBP at 1.27
        ("GB", "1269.99", "UK", None),
        ("JP", "2999.99", "US", None),  # residence without a profile: the default
        ("JP", "3000.00", "US", "3000.00"),
    ],
)
def test_unhosted_after_deposit_at_the_travel_rule_threshold(customer, residence, usd,
                                                             profile, threshold):
    c = customer(tier=3, residence=residence)
    c.transfer(H, "100.00", "in")

    alerts = c.transfer(2 * H, usd, "out", address=ADDRESS_A, cp_type="unhosted_wallet")

    assert c.ids(alerts) == ({"unhosted_after_deposit"} if threshold else set())
    if threshold:
        (alert,) = alerts
        assert alert.threshold == Decimal(threshold)
        assert alert.observed_value == Decimal(usd)
        assert alert.evidence.matches == {"jurisdiction_profile": profile}
        assert alert.evidence.aggregates == {"usd_in_24h": Decimal("100.00"),
                                             "count_in_24h": 1}


@pytest.mark.parametrize(
    ("deposit_at", "direction", "cp_type", "fires"),
    [
        (H, "out", "unhosted_wallet", True),
        (None, "out", "unhosted_wallet", False),  # no deposit at all
        # the 24h window is 24 hourly buckets: the withdrawal at 24:30 sees from 01:00 on
        (H, "out", "unhosted_wallet", True),
        (H - S, "out", "unhosted_wallet", False),
        (-3 * D, "out", "unhosted_wallet", False),
        (H, "out", "exchange", False),
        (H, "out", "other", False),
        (H, "in", "unhosted_wallet", False),  # a deposit from an unhosted wallet
    ],
)
def test_unhosted_after_deposit_needs_a_deposit_and_an_unhosted_withdrawal(
        customer, deposit_at, direction, cp_type, fires):
    c = customer(tier=3, residence="DE")
    if deposit_at is not None:
        c.transfer(deposit_at, "100.00", "in")

    alerts = c.transfer(24 * H + 30 * M, "5000.00", direction, address=ADDRESS_A,
                        cp_type=cp_type)

    assert c.ids(alerts) == ({"unhosted_after_deposit"} if fires else set())


def test_travel_rule_threshold_follows_a_change_of_residence(customer):
    """2000 USD to an unhosted wallet: under the US threshold, over the EU one."""
    c = customer(tier=3, residence="US")
    c.transfer(H, "100.00", "in")
    assert c.transfer(2 * H, "2000.00", "out", cp_type="unhosted_wallet") == []

    c.onboard(3 * H, "profile_updated", country_of_residence="NL")

    assert c.ids(c.transfer(4 * H, "2000.00", "out", cp_type="unhosted_wallet")) == {
        "unhosted_after_deposit"}
