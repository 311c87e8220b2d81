"""``streams.engine.apply``: replay idempotence, cooldowns and alert ids, lateness, onboarding
and the state's byte round trip."""

from datetime import timedelta
from decimal import Decimal

import orjson
import pytest

from schemas.rules import Window
from streams.engine import apply
from streams.state import CustomerState, Profile

H = timedelta(hours=1)
M = timedelta(minutes=1)
S = timedelta(seconds=1)
D = timedelta(days=1)
LAZARUS_ETH = "0x098b716b8aaf21512996dc57eb0615e2383e2f96"
T0_S = 1_772_409_600
"""2026-03-02T00:00:00Z, the fixtures' ``t0``, in epoch seconds."""


# --- replay idempotence -------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["transfer", "onboarding"])
def test_replaying_a_position_changes_nothing(customer, kind):
    c = customer(tier=0, status="submitted")
    if kind == "transfer":
        event = c.decode(10 * H, "5000.00", "out", address=LAZARUS_ETH)
        other = c.decode(11 * H, "9999.00", "in", country="KP")
    else:
        event = c.onboarding(10 * H, "kyc_verified", kyc_tier=2, pep=True)
        other = c.onboarding(11 * H, "closed", kyc_tier=3)
    first = c.apply(event, ("topic/3", 41))
    applied = c.state.to_bytes()

    again = c.apply(event, ("topic/3", 41))
    older = c.apply(other, ("topic/3", 40))  # any input at an offset already passed

    assert again == older == []
    assert c.state.to_bytes() == applied
    if kind == "transfer":
        assert {a.rule_id for a in first} == {
            "sanctioned_counterparty", "large_transfer", "unverified_activity", "volume_24h"}
    else:
        assert c.state.profile.kyc_tier == 2


def test_offsets_are_tracked_per_source(customer):
    c = customer(tier=0)
    c.apply(c.decode(10 * H, "700.00"), ("transactions/0", 5))

    c.apply(c.decode(11 * H, "700.00"), ("transactions/1", 5))  # another partition: applied
    c.apply(c.decode(12 * H, "700.00"), ("transactions/0", 6))  # next offset: applied

    assert c.state.applied == {"transactions/0": 6, "transactions/1": 5}
    assert c.state.windows.totals(Window.H24, c.state.watermark_s).usd_cents == 210000
    assert c.fired() == ["volume_24h"]


def test_replay_after_a_restart_from_bytes_is_idempotent(customer, rules):
    c = customer(tier=0)
    event = c.decode(10 * H, "1500.00")
    c.apply(event, ("transactions/0", 9))
    restored = CustomerState.from_bytes(c.state.to_bytes())

    state, decisions = apply(restored, event, rules, ("transactions/0", 9))

    assert decisions.alerts == [] and decisions.risk_changes == []
    assert state.to_bytes() == c.state.to_bytes()


# --- cooldowns and alert ids -------------------------------------------------------------


VELOCITY_STREAM = [10 * H + 50 * M + n * M for n in range(10)] + [11 * H, 11 * H + M]
"""Tier 0 (max 5 per hour): 10:50 ... 10:59, then 11:00 and 11:01."""


@pytest.mark.parametrize(
    ("rule_id", "tier", "stream", "alerts_at"),
    [
        # the 6th at 10:55 alerts, 10:56-10:59 are in the same aligned hour, 11:00 is not
        ("velocity_1h", 0, [(t, "10.00") for t in VELOCITY_STREAM],
         [10 * H + 55 * M, 11 * H]),
        # 24h cooldown periods are UTC days: 23:00 alerts, 01:00 the next day alerts again
        ("volume_24h", 0, [(22 * H, "900.00"), (22 * H + 30 * M, "900.00"), (23 * H, "900.00"),
                           (23 * H + 30 * M, "100.00"), (D + H, "100.00"),
                           (D + 2 * H, "100.00")],
         [23 * H, D + H]),
        ("structuring", 2, [(n * 4 * H, "9500.00") for n in range(8)],
         [8 * H, D]),
        ("unverified_activity", 0, [(n * 5 * H, "10.00") for n in range(7)],
         [0 * H, D + 1 * H]),
    ],
)
def test_rule_alerts_once_per_aligned_cooldown_period(customer, rule_id, tier, stream,
                                                      alerts_at, t0):
    status = "submitted" if rule_id == "unverified_activity" else "verified"
    c = customer(tier=tier, status=status)

    for offset, usd in stream:
        c.transfer(offset, usd)

    assert [a.triggered_at - t0 for a in c.alerts if a.rule_id == rule_id] == alerts_at
    ids = [a.alert_id for a in c.alerts]
    assert len(set(ids)) == len(ids)


def test_cooldown_zero_alerts_on_every_event(customer, customised):
    rules = customised({"rules": {"velocity_1h": {"cooldown_s": 0}}})
    c = customer(tier=0, rules=rules)

    per_event = c.transfers(VELOCITY_STREAM[:10], "10.00")

    assert [len(alerts) for alerts in per_event] == [0] * 5 + [1] * 5
    assert [a.observed_value for a in c.alerts] == [6, 7, 8, 9, 10]
    assert len({a.alert_id for a in c.alerts}) == 5


def test_cooldown_in_days_from_the_rule_file(customer, customised, t0):
    """A 2-day cooldown: periods are aligned to multiples of 2 days since the epoch (T0 starts
    one). 2700 USD a day at 12:00-14:00 breaches the tier-0 24h limit (2000) from the 14:00
    transfer of day 0 on; the next breach alerted is at 12:00 on day 2."""
    rules = customised({"rules": {"volume_24h": {"cooldown_s": "2d"}}})
    assert rules.config.rules.volume_24h.cooldown_s == 2 * 86400
    assert int(t0.timestamp()) % (2 * 86400) == 0
    c = customer(tier=0, rules=rules)

    for day in range(5):
        c.transfers([day * D + 12 * H, day * D + 13 * H, day * D + 14 * H], "900.00")

    assert [a.triggered_at - t0 for a in c.alerts if a.rule_id == "volume_24h"] == [
        14 * H, 2 * D + 12 * H, 4 * D + 12 * H]


def _run_stream(customer, customer_id="c1", shift=timedelta(0)):
    """A registered (unverified) tier-0 customer: velocity twice, then a sanctioned payment."""
    c = customer(customer_id, tier=0, status="registered")
    for offset in VELOCITY_STREAM:
        c.transfer(offset + shift, "10.00")
    c.transfer(D + H, "1500.00", address=LAZARUS_ETH)
    return [(a.rule_id, a.alert_id) for a in c.alerts]


def test_alert_ids_are_deterministic_and_distinct(customer):
    first = _run_stream(customer)
    second = _run_stream(customer)

    assert first == second
    assert [rule_id for rule_id, _ in first] == [
        "unverified_activity", "velocity_1h", "velocity_1h", "velocity_24h",
        "sanctioned_counterparty", "large_transfer", "unverified_activity", "velocity_24h",
    ]
    assert len({alert_id for _, alert_id in first}) == len(first)
    assert all(len(alert_id) == 32 for _, alert_id in first)


def test_alert_ids_name_the_breach_not_the_event_time(customer):
    """Breaches in the same cooldown periods get the same ids, even when the triggering
    transfers are 30 s later; another customer's ids all differ."""
    base = _run_stream(customer)

    assert _run_stream(customer, shift=30 * S) == base
    assert not {i for _, i in _run_stream(customer, "c2")} & {i for _, i in base}


# --- lateness ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("late_by", "counts"),
    [
        (S, True),
        (59 * M, True),
        (H, True),  # exactly allowed_lateness_s late still counts
        (H + S, False),
        (3 * D, False),
    ],
)
def test_late_events_beyond_lateness_stay_out_of_windows(customer, late_by, counts):
    c = customer(tier=0)
    c.transfer(12 * H, "100.00")
    watermark_before = c.state.watermark_s
    windows_before = [level[:] for level in c.state.windows.levels]
    recent_before = list(c.state.recent)

    alerts = c.transfer(12 * H - late_by, "2500.00", address=LAZARUS_ETH, country="IR")

    fired = {a.rule_id for a in alerts}
    per_event = {"large_transfer", "sanctioned_counterparty", "high_risk_jurisdiction"}
    assert fired == (per_event | {"volume_24h"} if counts else per_event)
    if counts:
        assert c.state.windows.levels != windows_before
    else:
        assert c.state.windows.levels == windows_before
        assert c.state.recent == recent_before
        assert c.state.watermark_s == watermark_before


def test_allowed_lateness_comes_from_the_rule_file(customer, customised):
    c = customer(tier=0, rules=customised({"allowed_lateness_s": "0s"}))
    c.transfer(12 * H, "100.00")

    alerts = c.transfer(12 * H - S, "2500.00")

    assert [a.rule_id for a in alerts] == ["large_transfer"]
    assert c.state.windows.totals(Window.H24, c.state.watermark_s).usd_cents == 10000


def test_late_events_within_lateness_count_for_later_events(customer):
    """Tier 1, volume_24h 15000: the late 7000.01 counts when the 12:30 transfer is checked."""
    c = customer(tier=1)
    assert c.transfer(12 * H, "8000.00") == []
    assert c.transfer(11 * H + 30 * M, "7000.00") == []

    alerts = c.transfer(12 * H + 30 * M, "0.01")

    assert [a.rule_id for a in alerts] == ["volume_24h"]
    assert alerts[0].observed_value == Decimal("15000.01")


@pytest.mark.parametrize(
    ("rule_id", "tier", "stream"),
    [
        # five transfers at 10:00:0x, then 11:00, then 10:30 (30 min late): the 1h window at
        # 10:30 holds six transfers
        ("velocity_1h", 0, [(10 * H + n * S, "10.00") for n in range(5)]
         + [(11 * H, "10.00"), (10 * H + 30 * M, "10.00")]),
        # 8000 on day 0 at 10:30, 100 on day 1 at 10:00, then 7500 at 09:30 (30 min late): the
        # 24h window at 09:30 holds 15500 > 15000
        ("volume_24h", 1, [(10 * H + 30 * M, "8000.00"), (D + 10 * H, "100.00"),
                           (D + 9 * H + 30 * M, "7500.00")]),
    ],
)
@pytest.mark.parametrize("arrival", ["in_order", "last_is_late"])
def test_late_event_within_lateness_is_checked_on_its_whole_window(customer, customised, t0,
                                                                    rule_id, tier, stream,
                                                                    arrival):
    """The same transfers raise the same alert whether the last one arrives in event-time
    order or late (within allowed_lateness_s, 1h).

    volume_spike is switched off: its baseline is the 30d window (daily buckets) less the 24h
    window (hourly buckets), so for the late 09:30 transfer the 10:00 transfer of the same
    day, already applied, is in the baseline; in event-time order it is not yet there."""
    c = customer(tier=tier, rules=customised({"rules": {"volume_spike": {"enabled": False}}}))
    ordered = sorted(stream) if arrival == "in_order" else stream

    for offset, usd in ordered:
        c.transfer(offset, usd)

    assert [(a.rule_id, a.triggered_at - t0) for a in c.alerts] == [(rule_id, stream[-1][0])]


# --- onboarding --------------------------------------------------------------------------


ONBOARDING_STEPS = [
    ("registered", {"country_of_residence": "fr", "nationality": "DE"},
     {"kyc_status": "registered", "country_of_residence": "FR", "nationality": "DE",
      "registered_at_s": T0_S}),
    ("kyc_submitted", {"kyc_tier": 1},
     {"kyc_status": "submitted", "kyc_tier": 1}),
    ("kyc_verified", {"kyc_tier": 2, "expected_monthly_volume_usd": "2500.505"},
     {"kyc_status": "verified", "kyc_tier": 2, "expected_monthly_usd_cents": 250050}),
    ("profile_updated", {"pep": True, "country_of_residence": None, "nationality": None,
                         "kyc_tier": None},
     {"pep": True}),
    ("screening_result", {"sanctions_hit": True}, {"sanctions_hit": True}),
    ("profile_updated", {"country_of_residence": "MC", "expected_monthly_volume_usd": "0"},
     {"country_of_residence": "MC", "expected_monthly_usd_cents": 0}),
    ("screening_result", {"sanctions_hit": False, "pep": False},
     {"sanctions_hit": False, "pep": False}),
    ("kyc_verified", {"kyc_tier": 0}, {"kyc_tier": 0}),
    ("closed", {}, {"kyc_status": "closed"}),
]


def test_onboarding_updates_the_profile_and_nulls_leave_values(customer, t0):
    assert int(t0.timestamp()) == T0_S
    c = customer(status="unknown", tier=0)
    expected = Profile()
    assert c.state.profile == expected

    for hour, (kind, fields, changes) in enumerate(ONBOARDING_STEPS):
        c.onboard(hour * H, kind, **fields)
        for name, value in changes.items():
            setattr(expected, name, value)
        assert c.state.profile == expected, (hour, kind)
    assert c.alerts == []


def test_registered_at_is_set_once(customer, t0):
    c = customer(status="unknown", tier=0)
    c.onboard(0 * H, "registered")
    c.onboard(5 * H, "registered")

    assert c.state.profile.registered_at_s == int(t0.timestamp())


def test_alert_snapshots_the_profile(customer):
    """Declared 4321.09 a month: 10,000 in the first days stays under 3 x declared."""
    c = customer(status="unknown", tier=0)
    c.onboard(0 * H, "registered", country_of_residence="FR", nationality="DE", pep=True)
    c.onboard(1 * H, "kyc_verified", kyc_tier=1, expected_monthly_volume_usd="4321.09")

    (alert,) = c.transfer(2 * H, "10000.00")

    assert alert.rule_id == "large_transfer"
    assert alert.customer.model_dump() == {
        "kyc_status": "verified", "kyc_tier": 1, "country_of_residence": "FR",
        "nationality": "DE", "pep": True, "sanctions_hit": False,
        "expected_monthly_volume_usd": Decimal("4321.09"),
        "risk_level": "medium",  # PEP 30 + KYC tier 1 10
    }
    assert alert.rule_set_version == "2026-11-21.1"


# --- state round trip --------------------------------------------------------------------


def _busy_customer(customer):
    c = customer(status="unknown", tier=0)
    c.onboard(0 * H, "registered", country_of_residence="VE", nationality="IR",
              expected_monthly_volume_usd="300.10")
    c.onboard(H, "kyc_verified", kyc_tier=1, pep=True, sanctions_hit=False)
    for n in range(40):
        c.apply(c.decode(2 * H + n * 17 * M, "9300.00" if n % 4 == 0 else "250.00",
                         "out" if n % 3 else "in", address=f"0x{n % 9:040x}"),
                (f"transactions/{n % 2}", 100 + n))
    return c


def test_state_round_trips_through_bytes(customer):
    c = _busy_customer(customer)
    state = c.state
    assert state.alerted and state.near_threshold and state.counterparties_in
    assert state.counterparties_out and state.applied and state.recent
    assert state.risk_level == "high" and state.alert_points > 0 and state.alert_points_at_s
    # key -> [first seen, last seen, transfers]: nine addresses used in turn, both directions
    assert all(len(entry) == 3 and entry[0] <= entry[1] and entry[2] >= 1
               for seen in (state.counterparties_in, state.counterparties_out)
               for entry in seen.values())
    assert sum(entry[2] for entry in state.counterparties_out.values()) == 26

    restored = CustomerState.from_bytes(state.to_bytes())

    assert restored.to_bytes() == state.to_bytes()
    assert restored.profile == state.profile
    assert restored.windows.levels == state.windows.levels
    for name in ("counterparties_in", "counterparties_out", "near_threshold", "recent",
                 "alerted", "applied", "watermark_s", "risk_level", "alert_points",
                 "alert_points_at_s"):
        assert getattr(restored, name) == getattr(state, name), name


def test_restored_state_raises_the_same_alerts(customer):
    original = _busy_customer(customer)
    restored = _busy_customer(customer)
    restored.state = CustomerState.from_bytes(restored.state.to_bytes())

    for c in (original, restored):
        c.alerts.clear()
        for n in range(30):
            c.transfer(14 * H + n * 50 * M, "9100.00" if n % 5 == 0 else "700.00")

    assert [a.model_dump() for a in restored.alerts] == [a.model_dump() for a in original.alerts]
    assert restored.alerts
    assert restored.state.to_bytes() == original.state.to_bytes()


FORMAT_1_STATE = orjson.dumps([
    1, ["verified", 1, None, None, False, False, None, None], [[], [], []], [123, 1_772_409_600],
    [], [], [], {}, {"transactions/0": 4}, 1_772_409_600])
"""A state as format 1 wrote it: no risk fields, counterparties as key -> last seen."""


FORMAT_2_STATE = orjson.dumps([
    2, ["verified", 2, "DE", "FR", False, False, 500_000, 1_772_000_000],
    [[[5_908_032, 1, 12_500, 12_500, 0, 0, 0]], [[492_336, 1, 12_500, 12_500, 0, 0, 0]],
     [[20_513, 1, 12_500, 12_500, 2, 900, 600]]],
    [123, 1_772_409_600, 1_772_409_600, 1], [], [], [[1_772_409_600, 0, 12_500, "e-1"]],
    {"large_transfer": 7}, {"transactions/0": 4}, 1_772_409_600, ["low", 1.5, 1_772_409_600]])
"""A state as the previous version wrote it: one JSON array, window buckets as lists."""


def test_state_is_written_in_format_3():
    assert CustomerState().to_bytes()[0] == 3


def test_state_of_format_2_is_read_and_written_back_in_format_3():
    state = CustomerState.from_bytes(FORMAT_2_STATE)

    assert state.profile.country_of_residence == "DE"
    assert state.windows.buckets(2) == [[20_513, 1, 12_500, 12_500, 2, 900, 600]]
    assert state.windows.totals(Window.H24, 1_772_409_600).usd_in_cents == 12_500
    assert state.counterparties_in == {123: [1_772_409_600, 1_772_409_600, 1]}
    assert (state.alerted, state.applied) == ({"large_transfer": 7}, {"transactions/0": 4})
    assert (state.risk_level, state.alert_points) == ("low", 1.5)
    again = CustomerState.from_bytes(state.to_bytes())
    assert again.to_bytes() == state.to_bytes() and again.to_bytes()[0] == 3
    assert again.windows.levels == state.windows.levels


@pytest.mark.parametrize("fmt", [4, 0])
def test_unknown_state_format_is_refused(fmt):
    raw = bytes([fmt]) + CustomerState().to_bytes()[1:]

    with pytest.raises(ValueError, match=f"unknown customer state format {fmt}"):
        CustomerState.from_bytes(raw)


def test_truncated_state_is_refused():
    state = CustomerState()
    state.windows.add(1_772_409_600, out=False, usd_cents=100)
    raw = state.to_bytes()

    with pytest.raises(ValueError, match="truncated or corrupt"):
        CustomerState.from_bytes(raw[:20])


def test_state_of_the_previous_format_is_refused_naming_its_format():
    """A state saved before the upgrade (format 1, one item fewer) must be refused as such,
    not with an error about unpacking."""
    with pytest.raises(ValueError, match="unknown customer state format 1"):
        CustomerState.from_bytes(FORMAT_1_STATE)
