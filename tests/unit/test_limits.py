"""Tier limits of the default rule set: single-transfer size, 24h/30d volume, 1h/24h velocity.

Size fires at the limit (``>=``); volume and velocity fire only above it (``>``).
"""

from datetime import timedelta
from decimal import Decimal

import pytest

H = timedelta(hours=1)
D = timedelta(days=1)
M = timedelta(minutes=1)


@pytest.mark.parametrize(
    ("tier", "usd", "fires"),
    [
        (0, "1000.00", True),
        (0, "999.99", False),
        (1, "10000.00", True),
        (1, "9999.99", False),
        (2, "50000.00", True),
        (2, "49999.99", False),
        (3, "250000.00", True),
        (3, "249999.99", False),
        (0, "1000.01", True),
        (3, "0.00", False),
    ],
)
def test_large_transfer_fires_at_the_tier_limit(customer, tier, usd, fires):
    alerts = customer(tier=tier).transfer(10 * H, usd, "out")

    assert {a.rule_id for a in alerts} == ({"large_transfer"} if fires else set())
    if fires:
        (alert,) = alerts
        assert alert.observed_value == Decimal(usd)
        assert alert.threshold == {0: 1000, 1: 10000, 2: 50000, 3: 250000}[tier]
        assert alert.severity == "high"
        assert alert.measure == "usd_single_transfer"
        assert alert.window is None


@pytest.mark.parametrize(
    ("first", "second", "fires"),
    [
        (("in", "8000.00"), ("out", "7000.00"), False),  # 15000.00 == limit
        (("in", "8000.00"), ("out", "7000.01"), True),
        (("out", "8000.00"), ("in", "7000.01"), True),
        (("in", "8000.00"), ("in", "7000.01"), True),
        (("out", "8000.00"), ("out", "7000.00"), False),
    ],
)
def test_volume_24h_counts_in_and_out_above_the_limit(customer, first, second, fires):
    """Tier 1: volume_24h_usd 15000."""
    c = customer(tier=1)
    assert c.transfer(10 * H, first[1], first[0]) == []

    alerts = c.transfer(13 * H, second[1], second[0])

    assert {a.rule_id for a in alerts} == ({"volume_24h"} if fires else set())
    if fires:
        (alert,) = alerts
        assert alert.observed_value == Decimal("15000.01")
        assert alert.threshold == Decimal(15000)
        assert alert.window == "24h"
        usd = {"in": Decimal(0), "out": Decimal(0)}
        for direction, amount in (first, second):
            usd[direction] += Decimal(amount)
        assert alert.evidence.aggregates["usd_in_24h"] == usd["in"]
        assert alert.evidence.aggregates["usd_out_24h"] == usd["out"]


def test_volume_24h_forgets_transfers_older_than_the_window(customer):
    c = customer(tier=1)
    c.transfer(10 * H, "8000.00")

    assert c.transfer(10 * H + D, "7000.01") == []


@pytest.mark.parametrize(
    ("last_usd", "fires"),
    [("2000.00", False), ("2000.01", True), ("1999.99", False)],
)
def test_volume_30d_counts_in_and_out_above_the_limit(customer, last_usd, fires):
    """Tier 1: volume_30d_usd 50000, reached over days without any 24h limit (15000)."""
    c = customer(tier=1)
    c.transfers([12 * H + n * D for n in range(6)], "8000.00", directions=("in", "out"))
    assert c.alerts == []

    alerts = c.transfer(12 * H + 6 * D, last_usd, "out")

    assert {a.rule_id for a in alerts} == ({"volume_30d"} if fires else set())
    if fires:
        assert alerts[0].observed_value == Decimal(48000) + Decimal(last_usd)
        assert alerts[0].threshold == Decimal(50000)
        assert alerts[0].evidence.aggregates["usd_in_30d"] == Decimal(24000)
        assert alerts[0].evidence.aggregates["usd_out_30d"] == Decimal(24000) + Decimal(last_usd)


@pytest.mark.parametrize(
    ("rule_id", "tier", "spacing", "limit"),
    [
        ("velocity_1h", 0, M, 5),
        ("velocity_1h", 1, 2 * M, 10),
        ("velocity_1h", 3, M, 40),
        ("velocity_24h", 0, 2 * H, 10),
        ("velocity_24h", 1, 40 * M, 30),
        ("velocity_24h", 3, 9 * M, 150),
    ],
)
@pytest.mark.parametrize("extra", [0, 1])
def test_velocity_fires_above_the_limit(customer, rule_id, tier, spacing, limit, extra):
    """``limit`` transfers (in and out alike) do not alert; ``limit + 1`` do, once."""
    c = customer(tier=tier)

    c.transfers([H + n * spacing for n in range(limit + extra)], "10.00", directions=("in", "out"))

    assert c.fired() == [rule_id] * extra
    if extra:
        (alert,) = c.alerts
        assert alert.observed_value == limit + 1
        assert alert.threshold == limit
        count = c.alerts[0].evidence.aggregates
        window = rule_id.removeprefix("velocity_")
        assert count[f"count_in_{window}"] + count[f"count_out_{window}"] == limit + 1
        assert count[f"count_out_{window}"] == (limit + 1) // 2


@pytest.mark.parametrize(("rule_id", "gap", "fires"), [
    ("velocity_1h", 54 * M, True),   # the 1h window at 10:54 still holds the 10:00 bucket
    ("velocity_1h", 60 * M, False),  # ... at 11:00 it no longer does
    ("velocity_24h", 23 * H, True),
    ("velocity_24h", 24 * H, False),
])
def test_velocity_counts_only_transfers_in_the_window(customer, rule_id, gap, fires):
    c = customer(tier=0)
    limit = {"velocity_1h": 5, "velocity_24h": 10}[rule_id]
    c.transfers([10 * H + n * timedelta(seconds=1) for n in range(limit)], "1.00")

    alerts = c.transfer(10 * H + gap, "1.00")

    assert (rule_id in {a.rule_id for a in alerts}) is fires
