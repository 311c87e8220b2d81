"""Behaviour rules at and around their thresholds: rapid_in_out, dormant_reactivated,
new_account_high_volume, declared_volume_exceeded and volume_spike (``streams.rules.behaviour``).

Customers are tier 3 (no tier limit interferes) without residence (US profile). Each scenario
is built so that only the rule under test can fire, and the tests check every alert raised.
"""

from datetime import timedelta
from decimal import Decimal

import pytest

S = timedelta(seconds=1)
H = timedelta(hours=1)
D = timedelta(days=1)


# --- rapid_in_out: withdrawals >= 80% of >= 10,000 USD deposited in 24h -------------------


@pytest.mark.parametrize(
    ("steps", "share"),
    [
        ([(H, "10000.00", "in"), (2 * H, "8000.00", "out")], "80.0"),  # exactly 80%
        ([(H, "10000.00", "in"), (2 * H, "7999.99", "out")], None),  # 1 cent below
        ([(H, "12345.67", "in"), (2 * H, "9876.54", "out")], "80.0"),  # 80.00003%
        ([(H, "12345.67", "in"), (2 * H, "9876.53", "out")], None),  # 79.99995%
        ([(H, "10000.00", "in"), (2 * H, "10000.00", "out")], "100.0"),  # deposits at min
        ([(H, "9999.99", "in"), (2 * H, "9999.99", "out")], None),  # 1 cent below min
        ([(H, "6000.00", "in"), (2 * H, "4000.00", "in"), (3 * H, "8500.00", "out")], "85.0"),
        # withdrawals add up, also the ones before the deposits
        ([(H, "5000.00", "out"), (2 * H, "10000.00", "in"), (3 * H, "3000.00", "out")],
         "80.0"),
        # the deposit 25h before is out of the 24h window
        ([(H, "10000.00", "in"), (26 * H, "9000.00", "out")], None),
    ],
)
def test_rapid_in_out_thresholds(customer, steps, share):
    c = customer(tier=3)

    raised = c.send(steps)

    assert raised == [set()] * (len(steps) - 1) + [({"rapid_in_out"} if share else set())]
    if share:
        (alert,) = c.alerts
        assert alert.observed_value == Decimal(share)
        assert alert.threshold == 80
        assert alert.measure == "pct_deposits_withdrawn_24h"
        assert alert.window == "24h"
        assert alert.severity == "high"


def test_rapid_in_out_checks_only_withdrawals(customer):
    """80% is reached by a deposit after the withdrawals: nothing until the next withdrawal."""
    c = customer(tier=3)

    raised = c.send([(H, "8000.00", "out"), (2 * H, "10000.00", "in"),
                       (3 * H, "0.01", "in"), (4 * H, "0.01", "out")])

    assert raised == [set(), set(), set(), {"rapid_in_out"}]
    assert c.alerts[0].evidence.aggregates == {"usd_in_24h": Decimal("10000.01"),
                                               "usd_out_24h": Decimal("8000.01")}


# --- dormant_reactivated: >= 5,000 USD after >= 90 days without any transfer -------------


@pytest.mark.parametrize(
    ("silence", "usd", "days"),
    [
        (90 * D, "5000.00", "90.00"),  # exactly the silence and the amount
        (90 * D - S, "5000.00", None),  # 1 s short
        (90 * D, "4999.99", None),  # 1 cent short
        (90 * D + 12 * H, "5000.01", "90.50"),
        (365 * D, "70000.00", "365.00"),
    ],
)
@pytest.mark.parametrize("direction", ["in", "out"])
def test_dormant_reactivated_thresholds(customer, silence, usd, days, direction):
    c = customer(tier=3)
    c.transfer(0 * H, "100.00", "out")

    alerts = c.transfer(silence, usd, direction)

    assert c.ids(alerts) == ({"dormant_reactivated"} if days else set())
    if days:
        (alert,) = alerts
        assert alert.observed_value == Decimal(days)
        assert alert.threshold == 90
        assert alert.measure == "days_since_previous_transfer"
        assert alert.evidence.aggregates["usd_transfer"] == Decimal(usd)


def test_dormant_needs_a_previous_transfer(customer):
    c = customer(tier=3)

    assert c.transfer(200 * D, "50000.00", "out") == []


def test_dormancy_counts_from_the_newest_transfer(customer):
    """Transfers on day 0 and day 10: 90 days after day 0 is 80 days of silence."""
    c = customer(tier=3)
    c.transfer(0 * D, "100.00")
    c.transfer(10 * D, "100.00")

    assert c.transfer(90 * D, "5000.00") == []
    assert c.ids(c.transfer(190 * D, "5000.00")) == {"dormant_reactivated"}


# --- new_account_high_volume: 30d volume > 20,000 USD within 30 days of registration -----


@pytest.mark.parametrize(
    ("steps", "fires"),
    [
        ([(30 * D - S, "20000.01", "in")], True),  # just under 30 days old
        ([(30 * D, "20000.01", "in")], False),  # 30 days old: no longer new
        ([(D, "20000.00", "in")], False),  # at the volume limit
        ([(D, "20000.01", "in")], True),  # 1 cent above
        ([(D, "15000.01", "in"), (D + H, "5000.00", "out")], True),  # in + out
        ([(D, "15000.00", "in"), (D + H, "5000.00", "out")], False),
    ],
)
def test_new_account_high_volume_thresholds(customer, steps, fires):
    c = customer(tier=3)
    c.onboard(0 * H, "registered")

    raised = c.send(steps)

    expected = {"new_account_high_volume"} if fires else set()
    assert raised == [set()] * (len(steps) - 1) + [expected]
    if fires:
        (alert,) = c.alerts
        assert alert.observed_value == sum(Decimal(usd) for _, usd, _ in steps)
        assert alert.threshold == 20000
        assert alert.measure == "usd_total_30d"
        age = steps[-1][0] / D
        assert alert.evidence.aggregates["account_age_days"] == Decimal(f"{age:.2f}")


def test_new_account_needs_a_registration(customer):
    c = customer(tier=3)

    assert c.transfer(D, "50000.00") == []


# --- declared_volume_exceeded: 30d volume > max(3 x declared, 5,000 USD) -------------------


@pytest.mark.parametrize(
    ("declared", "usd", "limit"),
    [
        ("2000", "6000.00", None),  # exactly 3 x declared
        ("2000", "6000.01", "6000.00"),
        ("1666.67", "5000.01", None),  # 3 x declared = 5000.01
        ("1666.67", "5000.02", "5000.01"),
        ("1000", "5000.00", None),  # 3 x 1000 < 5000: the floor is the limit
        ("1000", "5000.01", "5000.00"),
        ("0", "5000.00", None),
        ("0", "5000.01", "5000.00"),
        ("10000", "30000.00", None),
        ("10000", "30000.01", "30000.00"),
    ],
)
def test_declared_volume_exceeded_thresholds(customer, declared, usd, limit):
    c = customer(tier=3)
    c.onboard(0 * H, "profile_updated", expected_monthly_volume_usd=declared)

    alerts = c.transfer(H, usd)

    assert c.ids(alerts) == ({"declared_volume_exceeded"} if limit else set())
    if limit:
        (alert,) = alerts
        assert alert.observed_value == Decimal(usd)
        assert alert.threshold == Decimal(limit)
        assert alert.evidence.aggregates["declared_monthly_usd"] == Decimal(declared)


@pytest.mark.parametrize(("usd", "alerted"), [("5000.02", False), ("5000.03", True)])
def test_declared_volume_with_a_fractional_multiplier(customer, customised, usd, alerted):
    """2.5 x 2000.01 = 5000.025, compared exactly (in integers): 5000.03 is beyond it, 5000.02
    is not. The floor is set to 0, so the multiple is the limit."""
    rules = customised({"rules": {"declared_volume_exceeded": {
        "multiplier": "2.5", "min_volume_usd": "0"}}})
    c = customer(tier=3, rules=rules)
    c.onboard(0 * H, "profile_updated", expected_monthly_volume_usd="2000.01")

    alerts = c.transfer(H, usd)

    assert c.ids(alerts) == ({"declared_volume_exceeded"} if alerted else set())


def test_declared_volume_needs_a_declaration(customer):
    c = customer(tier=3)

    assert c.transfer(H, "200000.00") == []


def test_declared_volume_counts_both_directions_over_30_days(customer):
    """Declared 2000: 6000.01 over two transfers 29 days apart breaches, once per 30d."""
    c = customer(tier=3)
    c.onboard(0 * H, "profile_updated", expected_monthly_volume_usd="2000")

    raised = c.send([(H, "3000.00", "in"), (29 * D, "3000.01", "out"),
                       (29 * D + H, "100.00", "in")])

    assert raised == [set(), {"declared_volume_exceeded"}, set()]


# --- volume_spike: 24h volume > 5 x the trailing daily mean, and >= 10,000 USD ------------


def _baseline(c, daily_usd):
    """One deposit a day at 12:00 on days 0-28: the 29 days before day 29."""
    return c.send([(day * D + 12 * H, daily_usd, "in") for day in range(29)])


@pytest.mark.parametrize(
    ("daily", "today", "threshold"),
    [
        ("3000.00", [("15000.00", "in")], None),  # mean 3000: exactly 5 x
        ("3000.00", [("15000.01", "in")], "15000.00"),
        ("3000.00", [("7500.00", "in"), ("7500.01", "out")], "15000.00"),  # in + out
        ("100.00", [("10000.00", "in")], "500.00"),  # mean 100: at the floor
        ("100.00", [("9999.99", "in")], None),  # below the floor
        ("100.00", [("5000.00", "in"), ("4999.99", "out")], None),
        (None, [("50000.00", "in")], None),  # no baseline
    ],
)
def test_volume_spike_thresholds(customer, daily, today, threshold):
    c = customer(tier=3)
    before = _baseline(c, daily) if daily else []

    raised = c.send([(29 * D + 12 * H + n * S, usd, direction)
                       for n, (usd, direction) in enumerate(today)])

    assert before + raised == [set()] * (len(before) + len(today) - 1) + [
        {"volume_spike"} if threshold else set()]
    if threshold:
        (alert,) = c.alerts
        assert alert.observed_value == sum(Decimal(usd) for usd, _ in today)
        assert alert.threshold == Decimal(threshold)
        assert alert.evidence.aggregates["trailing_daily_mean_usd"] == Decimal(daily)
        assert alert.window == "24h"


@pytest.mark.parametrize(("today", "alerted"), [("13500.00", False), ("13500.01", True)])
def test_volume_spike_with_a_fractional_multiplier(customer, customised, today, alerted):
    """Mean 3000 a day, multiplier 4.5: 13500.00 is exactly 4.5 x, not beyond."""
    c = customer(tier=3, rules=customised({"rules": {"volume_spike": {"multiplier": "4.5"}}}))
    before = _baseline(c, "3000.00")

    raised = c.send([(29 * D + 12 * H, today, "in")])

    assert before + raised == [set()] * len(before) + [{"volume_spike"} if alerted else set()]


def test_volume_spike_baseline_ends_30_days_back(customer):
    """Activity 31 days ago is no baseline."""
    c = customer(tier=3)
    c.transfer(-31 * D, "3000.00")

    assert c.transfer(0 * D, "50000.00") == []
