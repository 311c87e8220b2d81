"""Structuring: ``min_transfers`` transfers in the band ``[floor, threshold)`` within
``window_s``, where ``floor = threshold * (1 - margin_pct / 100)``.

The threshold is the reporting threshold of the customer's jurisdiction profile. These
customers have no country of residence, so they get the default profile, US: 10,000 USD
(test_profiles.py tests the other profiles)."""

from datetime import timedelta
from decimal import Decimal

import pytest

from schemas.rules import NEAR_THRESHOLD_KEPT
from streams.rules.structuring import is_near_threshold
from streams.ruleset import RuleSetError

H = timedelta(hours=1)
S = timedelta(seconds=1)


OFF = {"enabled": False}


def _structuring(patch: dict, **other_rules: dict) -> dict:
    return {"rules": {"structuring": patch, **other_rules}}


def _us_threshold(usd: str) -> dict:
    """The reporting threshold of the US profile, the one of customers without residence."""
    return {"jurisdiction_profiles": {"profiles": {"US": {"reporting_threshold": usd}}}}


@pytest.mark.parametrize(
    ("threshold", "margin", "floor_cents"),
    [
        ("10000", "10", 900000),
        ("5000", "2.5", 487500),
        ("10000", "33.333", 666670),
        ("9999.99", "10", 899999),  # 8999.991 rounds to the cent
        ("3000", "0.01", 299970),
    ],
)
def test_band_floor_is_threshold_less_margin(customised, threshold, margin, floor_cents):
    rules = customised(_us_threshold(threshold), _structuring({"margin_pct": margin}))

    thresholds = rules.thresholds_for(None)
    assert thresholds.profile == "US"
    assert thresholds.reporting_threshold == round(Decimal(threshold) * 100)
    assert thresholds.near_threshold_floor == floor_cents


SMALL = {**_us_threshold("5000"), **_structuring({"margin_pct": "2.5"})}
"""Threshold 5000, margin 2.5%: the band is [4875.00, 5000.00)."""

BAND_CASES = [
    ({}, "9000.00", True),  # floor
    ({}, "8999.99", False),
    ({}, "9999.99", True),  # threshold - 1 cent
    ({}, "10000.00", False),  # threshold
    ({}, "9500.00", True),
    (SMALL, "4875.00", True),
    (SMALL, "4874.99", False),
    (SMALL, "4999.99", True),
    (SMALL, "5000.00", False),
]


@pytest.mark.parametrize(("patch", "usd", "near"), BAND_CASES)
def test_is_near_threshold_band(customised, patch, usd, near):
    thresholds = customised(patch).thresholds_for(None)
    cents = int(Decimal(usd) * 100)

    assert is_near_threshold(
        cents, thresholds.near_threshold_floor, thresholds.reporting_threshold) is near


@pytest.mark.parametrize(("patch", "usd", "near"), BAND_CASES)
def test_three_transfers_in_the_band_alert(customer, customised, patch, usd, near):
    """In, out, in: both directions count. (10,000.00 in then out is also a pass-through,
    rapid_in_out, switched off here: this table is about structuring alone.)"""
    c = customer(tier=2, rules=customised(patch, {"rules": {"rapid_in_out": OFF}}))

    c.transfers([8 * H, 11 * H, 14 * H], usd, directions=("in", "out"))

    assert c.fired() == (["structuring"] if near else [])
    if near:
        (alert,) = c.alerts
        assert alert.observed_value == 3
        assert alert.evidence.aggregates["near_threshold_usd_total"] == 3 * Decimal(usd)
        assert alert.evidence.matches["near_threshold_event_ids"] == "c1-e1,c1-e2,c1-e3"
        assert alert.triggered_at.hour == 14


@pytest.mark.parametrize("min_transfers", [2, 3, 5, 8])
def test_min_transfers_is_the_count_that_alerts(customer, customised, min_transfers):
    c = customer(tier=2, rules=customised(_structuring({"min_transfers": min_transfers})))

    per_transfer = c.transfers([n * H for n in range(min_transfers)], "9400.00")

    assert [c.ids(alerts) for alerts in per_transfer] == (
        [set()] * (min_transfers - 1) + [{"structuring"}])
    assert c.alerts[0].observed_value == min_transfers
    assert c.alerts[0].threshold == min_transfers


@pytest.mark.parametrize(
    ("window", "offsets", "fires"),
    [
        ("24h", [0 * H, 12 * H, 24 * H - S], True),
        ("24h", [0 * H, 12 * H, 24 * H], False),  # the first is exactly window_s old: out
        ("24h", [0 * H, 12 * H, 30 * H], False),
        ("2h", [0 * H, 1 * H, 2 * H - S], True),
        ("2h", [0 * H, 1 * H, 2 * H], False),
        ("7d", [0 * H, 100 * H, 167 * H], True),
    ],
)
def test_transfers_outside_the_window_do_not_count(customer, customised, window, offsets,
                                                   fires):
    """(Once the first transfer leaves the 24h window it is a baseline the next two spike
    above: volume_spike is switched off, this table is about structuring alone.)"""
    c = customer(tier=2, rules=customised(_structuring({"window_s": window}, volume_spike=OFF)))

    c.transfers(offsets, "9900.00")

    assert c.fired() == (["structuring"] if fires else [])


def test_transfers_outside_the_band_in_between_do_not_count(customer):
    c = customer(tier=2)
    c.transfer(1 * H, "9100.00")
    c.transfer(2 * H, "8999.99")
    c.transfer(3 * H, "10000.00")

    assert c.transfer(4 * H, "9100.00") == []
    assert c.ids(c.transfer(5 * H, "9100.00")) == {"structuring"}


@pytest.mark.parametrize("order", [(0, 1, 2), (0, 2, 1)], ids=["in_order", "last_two_swapped"])
def test_no_alert_when_no_window_holds_min_transfers(customer, customised, order):
    """Near-threshold transfers at 21:30 (day 0), 21:00 and 22:00 (day 1) span 24h30m: no 24h
    window holds all three, in whatever order they arrive (all within allowed lateness, 1h).

    Arriving 21:30, 22:00, then 21:00 (one hour late) alerts: the late transfer's window
    counts the 22:00 transfer, which is after it.

    (The transfer of day 0 is a baseline the two of day 1 spike above: volume_spike is
    switched off, this test is about structuring alone.)"""
    times = [timedelta(hours=21, minutes=30), timedelta(hours=45), timedelta(hours=46)]
    c = customer(tier=2, rules=customised(_structuring({}, volume_spike=OFF)))

    for n in order:
        c.transfer(times[n], "9500.00")

    assert c.fired() == []


def test_min_transfers_above_what_state_keeps_is_rejected_or_works(customer, customised):
    """State keeps at most NEAR_THRESHOLD_KEPT near-threshold transfers; a larger
    ``min_transfers`` must either be rejected by validation or still alert."""
    min_transfers = NEAR_THRESHOLD_KEPT + 1
    try:
        rules = customised(_structuring({"min_transfers": min_transfers}))
    except RuleSetError as exc:
        assert "min_transfers" in str(exc)
        return
    c = customer(tier=3, rules=rules)

    c.transfers([n * 10 * timedelta(minutes=1) for n in range(min_transfers)], "9500.00")

    assert "structuring" in c.fired()
