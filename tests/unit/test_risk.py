"""Customer risk rating (``streams.risk``): points per KYC factor, alert points halving every
``alert_half_life_s``, levels from ``medium_from`` / ``high_from``, a ``RiskChange`` on every
change of level, and enhanced due diligence for high risk (tier limits x ``limit_multiplier``,
severities one step up) with the rule set as shipped (``default_rules``), never with the
risk-neutral ``rules`` of the rule tables."""

from datetime import timedelta
from decimal import Decimal

import pytest

from schemas.alerts import Severity
from schemas.risk import RiskLevel
from streams.risk import add_alert_points, alert_points_at, raised_severity, rate
from streams.state import CustomerState, Profile
from streams.synthetic import SANCTIONED_ETH_ADDRESS, TORNADO_ETH_POOL

H = timedelta(hours=1)
D = timedelta(days=1)
T0_S = 1_772_409_600
"""2026-03-02T00:00:00Z, the fixtures' ``t0``, in epoch seconds."""
HALF_LIFE_S = 30 * 86400
CLEAN = {"kyc_status": "verified", "kyc_tier": 2}
"""A profile without any risk factor: score 0."""


def _rating(rules, at_s=T0_S, alert_points=0.0, points_at_s=T0_S, **profile):
    state = CustomerState(profile=Profile(**{**CLEAN, **profile}),
                          alert_points=alert_points, alert_points_at_s=points_at_s)
    return rate(state, at_s, rules.jurisdictions, rules.config.risk)


# --- points and levels -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("profile", "score", "reasons"),
    [
        ({}, 0, []),
        ({"kyc_tier": 3}, 0, []),
        ({"country_of_residence": "KP"}, 50, ["residence KP on the FATF black list (+50)"]),
        ({"country_of_residence": "VE"}, 25, ["residence VE on the FATF grey list (+25)"]),
        ({"nationality": "IR"}, 30, ["nationality IR on the FATF black list (+30)"]),
        ({"nationality": "SY"}, 15, ["nationality SY on the FATF grey list (+15)"]),
        ({"country_of_residence": "DE", "nationality": "DZ"}, 0, []),  # DZ: removed
        ({"pep": True}, 30, ["politically exposed person (+30)"]),
        ({"sanctions_hit": True}, 100, ["sanctions-screening hit (+100)"]),
        ({"kyc_tier": 0}, 20, ["KYC tier 0 (+20)"]),
        ({"kyc_tier": 1}, 10, ["KYC tier 1 (+10)"]),
        ({"kyc_status": "submitted"}, 20, ["KYC status submitted (+20)"]),
        ({"kyc_status": "unknown"}, 20, ["KYC status unknown (+20)"]),
        ({"kyc_status": "rejected"}, 20, ["KYC status rejected (+20)"]),
        ({"kyc_status": "closed"}, 20, ["KYC status closed (+20)"]),
        ({"country_of_residence": "VE", "nationality": "VE", "pep": True, "kyc_tier": 1,
          "kyc_status": "registered"}, 100,
         ["residence VE on the FATF grey list (+25)", "nationality VE on the FATF grey list (+15)",
          "politically exposed person (+30)", "KYC tier 1 (+10)",
          "KYC status registered (+20)"]),
    ],
)
def test_points_for_each_factor(rules, profile, score, reasons):
    rating = _rating(rules, **profile)

    assert rating.score == score
    assert rating.reasons == reasons


@pytest.mark.parametrize(
    ("profile", "level"),
    [
        ({"country_of_residence": "VE"}, "low"),  # 25
        ({"pep": True}, "medium"),  # 30: medium_from
        ({"country_of_residence": "VE", "pep": True}, "medium"),  # 55
        ({"pep": True, "kyc_tier": 1, "kyc_status": "submitted"}, "high"),  # 60: high_from
        ({"sanctions_hit": True}, "high"),
    ],
)
def test_default_levels(rules, profile, level):
    assert _rating(rules, **profile).level == level


@pytest.mark.parametrize(
    ("risk", "level"),
    [
        ({"medium_from": 40}, "medium"),  # score 40 exactly at medium_from
        ({"medium_from": 41}, "low"),
        ({"high_from": 40}, "high"),
        ({"high_from": 41}, "medium"),
        ({"medium_from": 0, "high_from": 41}, "medium"),
    ],
)
def test_level_boundaries(customised, risk, level):
    """PEP (30) and KYC tier 1 (10): a score of 40."""
    rules = customised({"risk": risk})

    assert _rating(rules, pep=True, kyc_tier=1).level == level


def test_a_new_rule_set_rates_a_known_profile_afresh(rules, customised):
    """The profile part of the rating is kept per profile and rule set: a rule set with other
    points must not reuse what the previous one gave the same profile."""
    assert _rating(rules, pep=True).score == 30
    doubled = customised({"risk": {"points": {"pep": 60}}})

    assert _rating(doubled, pep=True).score == 60
    assert _rating(doubled, pep=True).reasons == ["politically exposed person (+60)"]
    assert _rating(rules, pep=True).score == 30


@pytest.mark.parametrize(
    ("alert_points", "level"),
    [(29.99, "low"), (29.995, "medium"), (30.0, "medium"), (59.99, "medium"), (60.0, "high")],
)
def test_alert_points_count_to_the_cent(rules, alert_points, level):
    """Behaviour points are rounded to 0.01 before the levels are applied."""
    assert _rating(rules, alert_points=alert_points).level == level


# --- alert points decay ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("elapsed_s", "points"),
    [
        (0, 15.0),
        (HALF_LIFE_S, 7.5),
        (2 * HALF_LIFE_S, 3.75),
        (HALF_LIFE_S // 2, 15 / 2 ** 0.5),
        (-3600, 15.0),  # a late event: no growth back in time
    ],
)
def test_alert_points_halve_every_half_life(rules, elapsed_s, points):
    state = CustomerState(alert_points=15.0, alert_points_at_s=T0_S)

    assert alert_points_at(state, T0_S + elapsed_s, rules.config.risk) == pytest.approx(points)


def test_alert_points_add_up_after_decaying(rules):
    config = rules.config.risk
    state = CustomerState()

    add_alert_points(state, Severity.HIGH, T0_S, config)
    add_alert_points(state, Severity.CRITICAL, T0_S + HALF_LIFE_S, config)
    add_alert_points(state, Severity.LOW, T0_S + HALF_LIFE_S, config)

    assert (state.alert_points, state.alert_points_at_s) == (7.5 + 40 + 2, T0_S + HALF_LIFE_S)
    assert alert_points_at(state, T0_S + 2 * HALF_LIFE_S, config) == 24.75


def test_rating_reasons_name_the_decayed_alert_points(rules):
    rating = _rating(rules, at_s=T0_S + HALF_LIFE_S, alert_points=45.0, kyc_tier=1)

    assert rating.score == Decimal("32.5")
    assert rating.level == "medium"
    assert rating.reasons == ["KYC tier 1 (+10)", "recent alerts (decaying) (+22.5)"]


def test_alerts_raise_the_level_and_it_decays_back(customer, rules):
    """Mixer deposits (high: 15 points each) at 00:00, 07:00 and 14:00 of a tier-1 customer
    (10 points): medium from the second. One half-life after the third, half the alert points
    are left (still medium); two half-lives after, a quarter: low."""
    c = customer(tier=1)
    for n in range(3):
        c.transfer(n * 7 * H, "100.00", address=TORNADO_ETH_POOL)
    assert c.fired() == ["mixer_exposure"] * 3
    two = round(15 * (0.5 ** (7 / 720) + 1), 2)  # half-life: 720 hours
    three = 15 * (0.5 ** (14 / 720) + 0.5 ** (7 / 720) + 1)

    c.transfer(14 * H + 30 * D, "10.00")
    assert alert_points_at(c.state, T0_S + 14 * 3600 + HALF_LIFE_S,
                           rules.config.risk) == pytest.approx(three / 2)
    c.transfer(14 * H + 60 * D, "10.00")

    assert [(ch.previous_level, ch.level, ch.score) for ch in c.risk_changes] == [
        ("unrated", "low", Decimal("25.0")),
        ("low", "medium", 10 + Decimal(str(two))),
        ("medium", "low", 10 + Decimal(str(round(three / 4, 2)))),
    ]
    assert c.risk_changes[1].reasons == ["KYC tier 1 (+10)",
                                         f"recent alerts (decaying) (+{two})"]


# --- risk changes ------------------------------------------------------------------------


def _profile_story(c):
    """Onboarding changes that move a clean, verified tier-2 customer through every level."""
    c.transfer(0 * H, "100.00")  # first rating
    c.transfer(1 * H, "100.00")
    c.onboard(2 * H, "profile_updated", pep=True)
    c.onboard(3 * H, "screening_result", sanctions_hit=True)
    c.onboard(4 * H, "screening_result", sanctions_hit=False)
    c.onboard(5 * H, "profile_updated", kyc_tier=3)
    c.onboard(6 * H, "profile_updated", pep=False)
    c.transfer(7 * H, "100.00")
    return c.risk_changes


def test_a_risk_change_on_each_change_of_level_and_none_otherwise(customer, t0):
    changes = _profile_story(customer(tier=2))

    assert [(ch.previous_level, ch.level, ch.score, ch.reasons, ch.triggering_event_id,
             ch.changed_at - t0) for ch in changes] == [
        ("unrated", "low", 0, [], "c1-e1", 0 * H),
        ("low", "medium", 30, ["politically exposed person (+30)"], "c1-e3", 2 * H),
        ("medium", "high", 130, ["politically exposed person (+30)",
                                 "sanctions-screening hit (+100)"], "c1-e4", 3 * H),
        ("high", "medium", 30, ["politically exposed person (+30)"], "c1-e5", 4 * H),
        ("medium", "low", 0, [], "c1-e7", 6 * H),
    ]
    assert {ch.rule_set_version for ch in changes} == {"2026-11-21.1"}
    assert {ch.customer_id for ch in changes} == {"c1"}


def test_risk_change_ids_are_deterministic(customer):
    first = [ch.change_id for ch in _profile_story(customer("c1", tier=2))]
    again = [ch.change_id for ch in _profile_story(customer("c1", tier=2))]
    other = [ch.change_id for ch in _profile_story(customer("c2", tier=2))]

    assert first == again
    assert len(set(first)) == len(first) == 5
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in first)
    assert not set(first) & set(other)


def test_a_replayed_event_changes_no_level_again(customer):
    c = customer(tier=2)
    event = c.onboarding(H, "screening_result", sanctions_hit=True)
    c.apply(event, ("onboarding/0", 7))

    c.apply(event, ("onboarding/0", 7))

    assert [ch.level for ch in c.risk_changes] == ["high"]


# --- enhanced due diligence: limits and severities ---------------------------------------


LEVEL_PROFILES = {"low": {}, "medium": {"pep": True}, "high": {"sanctions_hit": True}}
"""Onboarding fields that put a clean customer at each level."""


def _rated(customer, rules, level, tier):
    c = customer(tier=tier, rules=rules)
    c.onboard(-200 * D, "screening_result", **LEVEL_PROFILES[level])
    assert c.state.risk_level == level
    return c


@pytest.mark.parametrize(
    ("shipped", "level", "usd", "limit"),
    [
        (True, "high", "5000.00", "5000.00"),  # tier 1: 10,000 x 0.5
        (True, "high", "4999.99", None),
        (True, "medium", "5000.00", None),
        (True, "medium", "10000.00", "10000.00"),
        (True, "low", "9999.99", None),
        (True, "low", "10000.00", "10000.00"),
        (False, "high", "5000.00", None),  # risk-neutral rules: the tier limit as is
        (False, "high", "10000.00", "10000.00"),
    ],
)
def test_high_risk_halves_the_large_transfer_limit(customer, rules, default_rules, shipped,
                                                   level, usd, limit):
    c = _rated(customer, default_rules if shipped else rules, level, tier=1)

    alerts = c.transfer(0 * H, usd)

    assert c.ids(alerts) == ({"large_transfer"} if limit else set())
    if limit:
        assert alerts[0].threshold == Decimal(limit)


def test_high_risk_tightens_every_tier_limit(default_rules):
    for tier, low in default_rules.tiers.items():
        high = default_rules.limits[RiskLevel.HIGH][tier]
        assert high.large_transfer * 2 == low.large_transfer
        assert high.volume_24h * 2 == low.volume_24h
        assert high.volume_30d * 2 == low.volume_30d
        assert high.max_transfers_1h == low.max_transfers_1h // 2
        assert high.max_transfers_24h == low.max_transfers_24h // 2


SCENARIOS = {
    # rule id: transfers (offset, usd, counterparty) of a tier-3 customer; the last alerts
    "large_transfer": [(0 * H, "250000.00", {})],
    "mixer_exposure": [(0 * H, "100.00", {"address": TORNADO_ETH_POOL})],
    "sanctioned_counterparty": [(0 * H, "100.00", {"address": SANCTIONED_ETH_ADDRESS})],
    "dormant_reactivated": [(-100 * D, "100.00", {}), (0 * H, "5000.00", {})],
}
BASE_SEVERITY = {"large_transfer": "high", "mixer_exposure": "high",
                 "sanctioned_counterparty": "critical", "dormant_reactivated": "medium"}
ONE_UP = {"medium": "high", "high": "critical", "critical": "critical"}


@pytest.mark.parametrize("rule_id", list(SCENARIOS))
@pytest.mark.parametrize("level", ["low", "medium", "high"])
@pytest.mark.parametrize("shipped", [True, False], ids=["default_rules", "neutral"])
def test_high_risk_raises_severity_one_step(customer, rules, default_rules, rule_id, level,
                                            shipped):
    c = _rated(customer, default_rules if shipped else rules, level, tier=3)

    for offset, usd, counterparty in SCENARIOS[rule_id]:
        alerts = c.transfer(offset, usd, "out", **counterparty)

    (alert,) = alerts
    base = BASE_SEVERITY[rule_id]
    assert alert.rule_id == rule_id
    assert alert.severity == (ONE_UP[base] if shipped and level == "high" else base)
    assert alert.customer.risk_level == level


@pytest.mark.parametrize(
    ("raise_at", "level", "severity"),
    [("medium", "low", "high"), ("medium", "medium", "critical"), ("medium", "high", "critical"),
     ("low", "low", "critical"), ("high", "medium", "high"), ("high", "high", "critical")],
)
def test_raise_severity_at_is_a_minimum_level(customised, customer, raise_at, level, severity):
    """mixer_exposure (high) for customers at ``level``, with ``raise_severity_at``."""
    c = _rated(customer, customised({"risk": {"raise_severity_at": raise_at}}), level, tier=3)

    (alert,) = c.transfer(0 * H, "100.00", "in", address=TORNADO_ETH_POOL)

    assert alert.severity == severity


@pytest.mark.parametrize(
    ("level", "severity", "raised"),
    [("unrated", "high", "high"), ("low", "high", "high"), ("medium", "low", "low"),
     ("high", "low", "medium"), ("high", "medium", "high"), ("high", "high", "critical"),
     ("high", "critical", "critical")],
)
def test_raised_severity(default_rules, level, severity, raised):
    assert raised_severity(Severity(severity), level, default_rules.config.risk) == raised


def test_effects_start_with_the_event_after_the_change(customer, default_rules):
    """A PEP (medium, 30) gets a mixer alert (high, +15: 45) and a sanctions alert
    (critical, +40: about 85, high): the next mixer alert is critical."""
    c = customer(tier=2, rules=default_rules)
    c.onboard(0 * H, "profile_updated", pep=True)

    first = c.transfer(1 * H, "100.00", "in", address=TORNADO_ETH_POOL)
    sanctioned = c.transfer(2 * H, "100.00", "out", address=SANCTIONED_ETH_ADDRESS)
    second = c.transfer(3 * H, "100.00", "in", address=TORNADO_ETH_POOL)

    assert [(a.rule_id, a.severity, a.customer.risk_level)
            for a in first + sanctioned + second] == [
        ("mixer_exposure", "high", "medium"),
        ("sanctioned_counterparty", "critical", "medium"),
        ("mixer_exposure", "critical", "high"),
    ]
    change = c.risk_changes[-1]
    assert (change.previous_level, change.level, change.triggering_event_id) == (
        "medium", "high", sanctioned[0].evidence.triggering_events[0].event_id)
    assert change.reasons == ["politically exposed person (+30)",
                              "recent alerts (decaying) (+54.99)"]


# --- the initial assessment --------------------------------------------------------------


def test_an_ordinary_signup_publishes_one_initial_assessment(customer):
    c = customer(status="unknown", tier=0)
    c.onboard(0 * H, "registered", country_of_residence="DE", nationality="DE")
    c.onboard(1 * H, "kyc_submitted")
    c.onboard(2 * H, "profile_updated", nationality="AT")
    c.onboard(3 * H, "kyc_verified", kyc_tier=2)
    c.transfer(4 * H, "100.00")

    assert [(ch.previous_level, ch.level, ch.triggering_event_id) for ch in c.risk_changes] == [
        ("unrated", "low", "c1-e4")]
    assert c.state.risk_history == [[T0_S + 3 * 3600, "unrated", "low", "0", "c1-e4"]]


def test_a_stalled_onboarding_is_assessed_after_the_grace_period(customer):
    c = customer(status="unknown", tier=0)
    c.onboard(0 * H, "registered")
    c.onboard(6 * D, "profile_updated", nationality="AT")
    assert c.risk_changes == [] and c.state.risk_level == "medium"  # tier 0, not verified

    c.onboard(7 * D, "profile_updated", nationality="DE")

    assert [(ch.previous_level, ch.level, ch.score) for ch in c.risk_changes] == [
        ("unrated", "medium", 40)]


def test_high_risk_is_published_at_once_even_during_onboarding(customer):
    c = customer(status="unknown", tier=0)
    c.onboard(0 * H, "registered", sanctions_hit=True)
    c.onboard(1 * H, "kyc_rejected")

    assert [(ch.previous_level, ch.level, ch.triggering_event_id) for ch in c.risk_changes] == [
        ("unrated", "high", "c1-e1")]


def test_a_customer_with_no_onboarding_on_record_is_assessed_at_its_first_event(customer):
    c = customer(status="unknown", tier=0)
    c.transfer(0 * H, "100.00")

    assert [(ch.previous_level, ch.level) for ch in c.risk_changes] == [("unrated", "medium")]


def test_the_grace_period_is_configurable(customer, customised):
    c = customer(status="unknown", tier=0,
                 rules=customised({"risk": {"initial_assessment_grace_s": "1h"}}))
    c.onboard(0 * H, "registered")
    c.onboard(1 * H, "profile_updated", nationality="AT")

    assert [ch.level for ch in c.risk_changes] == ["medium"]
