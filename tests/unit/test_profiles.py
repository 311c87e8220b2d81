"""Jurisdiction profiles: thresholds chosen by the customer's country of residence, in the
profile's currency converted to USD cents with the price table (``CompiledRules.thresholds_for``,
``schemas.rules.JurisdictionProfiles``).

As shipped: US 10,000 / 3,000 USD; EU 10,000 / 1,000 EUR at 1.08; UK 10,000 / 1,000 GBP at
1.27 (reporting / travel-rule thresholds); residence without a profile: US."""

from datetime import timedelta
from decimal import Decimal

import pytest

from streams.ruleset import RuleSetError, ThresholdsCents, parse_rule_set

H = timedelta(hours=1)
US = ThresholdsCents("US", 1_000_000, 900_000, 300_000)
EU = ThresholdsCents("EU", 1_080_000, 972_000, 108_000)
UK = ThresholdsCents("UK", 1_270_000, 1_143_000, 127_000)


@pytest.mark.parametrize(
    ("country", "thresholds"),
    [("DE", EU), ("FR", EU), ("BG", EU), ("SE", EU), ("GB", UK), ("US", US),
     ("JP", US), ("CH", US), (None, US)],
)
def test_profile_is_chosen_by_residence(default_rules, country, thresholds):
    assert default_rules.thresholds_for(country) == thresholds


@pytest.mark.parametrize(("country", "profile"), [(None, "EU"), ("JP", "EU"), ("US", "US"),
                                                  ("GB", "UK"), ("CH", "EU")])
def test_default_profile(customised, country, profile):
    rules = customised({"jurisdiction_profiles": {"default": "EU", "by_country": {"ch": "EU"}}})

    assert rules.thresholds_for(country).profile == profile


@pytest.mark.parametrize(
    ("currency", "price", "threshold", "cents"),
    [
        ("EUR", "1.08", "1000", 108_000),
        ("GBP", "1.27", "1000", 127_000),
        ("EUR", "1.0837", "1000", 108_370),
        ("EUR", "1.08", "1000.12", 108_013),  # 1080.1296
        ("EUR", "1.08", "1000.125", 108_014),  # 1080.135: half-even, up to the even 4
        ("EUR", "1.08", "1000.375", 108_040),  # 1080.405: half-even, down to the even 0
        ("GBP", "1.1", "1000.05", 110_006),  # 1100.055 (as floats: 1100.0549999...)
        ("GBP", "1.2745", "9999.99", 1_274_499),  # 12744.987255
        ("USD", "1", "0.01", 1),
    ],
)
def test_currency_conversion_to_cents_is_exact(customised, currency, price, threshold, cents):
    rules = customised({
        "prices": {"usd_per_unit": {currency: price}},
        "jurisdiction_profiles": {"profiles": {"X": {"currency": currency,
                                                     "travel_rule_threshold": threshold}},
                                  "by_country": {"CH": "X"}},
    })

    assert rules.thresholds_for("CH").travel_rule_threshold == cents


@pytest.mark.parametrize(
    ("currency", "price", "reporting", "margin", "band"),
    [
        ("EUR", "1.08", "10000", "10", (1_080_000, 972_000)),
        ("GBP", "1.27", "10000", "10", (1_270_000, 1_143_000)),
        ("EUR", "1.08", "15000", "2.5", (1_620_000, 1_579_500)),
        ("GBP", "1.2745", "9999.99", "10", (1_274_499, 1_147_049)),  # 11470.4886
    ],
)
def test_reporting_threshold_and_structuring_floor_per_profile(customised, currency, price,
                                                               reporting, margin, band):
    rules = customised({
        "prices": {"usd_per_unit": {currency: price}},
        "rules": {"structuring": {"margin_pct": margin}},
        "jurisdiction_profiles": {"profiles": {"X": {"currency": currency,
                                                     "reporting_threshold": reporting}},
                                  "by_country": {"CH": "X"}},
    })
    thresholds = rules.thresholds_for("CH")

    assert (thresholds.reporting_threshold, thresholds.near_threshold_floor) == band


@pytest.mark.parametrize(
    ("residence", "usd", "near"),
    [
        (None, "9000.00", True),
        (None, "9999.99", True),
        (None, "10000.00", False),
        ("DE", "9720.00", True),  # 90% of 10,800
        ("DE", "9719.99", False),
        ("DE", "10799.99", True),
        ("DE", "10800.00", False),
        ("DE", "9500.00", False),  # near the US threshold, not the EU one
        ("GB", "11430.00", True),  # 90% of 12,700
        ("GB", "11429.99", False),
        ("GB", "12699.99", True),
        ("GB", "12700.00", False),
        ("US", "9999.99", True),
    ],
)
def test_structuring_band_per_profile(customer, residence, usd, near):
    c = customer(tier=2, residence=residence)

    c.transfers([8 * H, 11 * H, 14 * H], usd)

    assert c.fired() == (["structuring"] if near else [])
    if near:
        (alert,) = c.alerts
        reporting = {None: "10000.00", "US": "10000.00", "DE": "10800.00",
                     "GB": "12700.00"}[residence]
        assert alert.evidence.aggregates["reporting_threshold_usd"] == Decimal(reporting)
        profile = {"DE": "EU", "GB": "UK"}.get(residence, "US")
        assert f"USD threshold ({profile})" in alert.summary


def test_structuring_counts_only_transfers_in_the_band_it_names(customer):
    """9500 is near the US threshold (band [9000, 10000)), not the EU one ([9720, 10800)).
    After a move to Germany, 9800 is the first transfer in the EU band: an alert naming the EU
    band must not count the two 9500 transfers made as a US resident."""
    c = customer(tier=2, residence="US")
    c.transfers([H, 2 * H], "9500.00")  # c1-e1, c1-e2
    c.onboard(3 * H, "profile_updated", country_of_residence="DE")  # c1-e3
    assert c.transfer(4 * H, "9500.00") == []  # c1-e4: not near the EU threshold
    sent = {"c1-e1": "9500.00", "c1-e2": "9500.00", "c1-e4": "9500.00", "c1-e5": "9800.00"}

    c.transfer(5 * H, "9800.00")  # c1-e5

    for alert in c.alerts:
        floor = alert.evidence.aggregates["near_threshold_floor_usd"]
        threshold = alert.evidence.aggregates["reporting_threshold_usd"]
        counted = alert.evidence.matches["near_threshold_event_ids"].split(",")
        assert all(floor <= Decimal(sent[event_id]) < threshold for event_id in counted), (
            alert.summary, counted)


INVALID_PROFILES = [
    ({"by_country": {"DE": "XX"}}, "profiles named but not defined: ['XX']"),
    ({"default": "CA"}, "profiles named but not defined: ['CA']"),
    ({"default": "CA", "by_country": {"DE": "XX", "FR": "XX"}},
     "profiles named but not defined: ['CA', 'XX']"),
    ({"profiles": {"US": None}}, "profiles named but not defined: ['US']"),
    ({"profiles": {"CH": {"currency": "CHF"}}}, "profile currencies need a price: ['CHF']"),
    ({"profiles": {"CH": {"currency": "CHF"}, "JP": {"currency": "JPY"}}},
     "profile currencies need a price: ['CHF', 'JPY']"),
    ({"by_country": {"DEU": "EU"}}, "jurisdiction_profiles.by_country.DEU"),
    ({"profiles": {"EU": {"threshold": "10000"}}},
     "jurisdiction_profiles.profiles.EU.threshold: Extra inputs are not permitted"),
    ({"profiles": {"EU": {"reporting_threshold": "ten thousand"}}},
     "jurisdiction_profiles.profiles.EU.reporting_threshold: "),
]


@pytest.mark.parametrize(("patch", "says"), INVALID_PROFILES)
def test_invalid_profiles_are_rejected(rule_document, patch, says):
    with pytest.raises(RuleSetError) as caught:
        parse_rule_set(rule_document({"jurisdiction_profiles": patch}))

    assert says in str(caught.value)


def test_a_profile_currency_removed_from_the_price_table_is_rejected(rule_document):
    with pytest.raises(RuleSetError, match=r"profile currencies need a price: \['GBP'\]"):
        parse_rule_set(rule_document({"prices": {"usd_per_unit": {"GBP": None}}}))


def test_a_new_priced_currency_is_accepted(customised):
    rules = customised({
        "prices": {"usd_per_unit": {"CHF": "1.13"}},
        "jurisdiction_profiles": {"profiles": {"CH": {"currency": "CHF"}},
                                  "by_country": {"CH": "CH", "LI": "CH"}},
    })

    assert rules.thresholds_for("LI") == ThresholdsCents("CH", 1_130_000, 1_017_000, 113_000)
