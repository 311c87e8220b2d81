"""S1's list rules with address intelligence in force: ``sanctioned_counterparty`` and
``mixer_exposure`` match the index too, ``high_risk_counterparty`` a provider's score."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from streams.intel import IntelIndex, Listing

H = timedelta(hours=1)
LAZARUS_ETH = "0x098B716B8Aaf21512996dC57EB0615e2383E2f96"
"""On the rule file's OFAC SDN list (LAZARUS GROUP)."""
TORNADO_ETH = "0x47CE0C6eD5B0Ce3d3A51fdb1C52DC66a7c3c2936"
"""On the rule file's mixer list (Tornado Cash)."""
FRESH_ETH = "0x5A5a5a5a5a5A5a5a5A5a5a5a5a5a5A5a5a5a5a5B"
"""On no list of the rule file."""
LISTED_AT = datetime(2026, 2, 1, tzinfo=UTC)


def listing(list_name: str, address: str = FRESH_ETH, **fields: object) -> Listing:
    return Listing(list=list_name, address=address.lower(),
                   listed_at_s=int(LISTED_AT.timestamp()), **fields)  # type: ignore[arg-type]


SANCTIONS = listing("sanctions", entity="GARANTEX", source="OFAC SDN", reference="uid 1")
MIXER = listing("mixer", entity="Sinbad", source="provider X", category="mixer")


@pytest.fixture
def with_intel(rules, customised):
    """The rules with an index holding ``listings`` (and the rule-file patches given)."""
    def build(*listings: Listing, patch: dict | None = None):
        index = IntelIndex()
        for entry in listings:
            index.apply(entry.key, entry)
        return replace(customised(patch) if patch else rules, intel=index)
    return build


@pytest.mark.parametrize("direction", ["out", "in"])
def test_an_address_sanctioned_by_the_intel_topic_alerts(customer, with_intel, direction):
    c = customer(tier=3, rules=with_intel(SANCTIONS))

    (alert,) = c.transfer(H, "120.00", direction, address=FRESH_ETH)

    assert alert.rule_id == "sanctioned_counterparty"
    assert alert.severity == "critical"
    side = "to" if direction == "out" else "from"
    assert alert.summary == f"transfer of 120.00 USD {side} an address of GARANTEX (OFAC SDN)"
    assert alert.evidence.matches == {
        "list": "sanctions", "listed_address": FRESH_ETH.lower(), "entity": "GARANTEX",
        "source": "OFAC SDN", "reference": "uid 1", "listed_at": "2026-02-01T00:00:00+00:00",
        "found_in": "intel_topic"}


def test_an_address_on_the_file_and_the_topic_names_both(customer, with_intel):
    c = customer(tier=3, rules=with_intel(listing("sanctions", LAZARUS_ETH, source="provider")))

    (alert,) = c.transfer(H, "120.00", "out", address=LAZARUS_ETH)

    matches = alert.evidence.matches
    assert matches["found_in"] == "rule_file,intel_topic"
    assert (matches["list"], matches["entity"]) == ("OFAC SDN", "LAZARUS GROUP")
    assert (matches["intel_list"], matches["intel_source"]) == ("sanctions", "provider")
    assert "of LAZARUS GROUP (OFAC SDN)" in alert.summary


def test_the_rule_file_match_alone_says_so(customer, with_intel):
    c = customer(tier=3, rules=with_intel())

    (alert,) = c.transfer(H, "120.00", "out", address=LAZARUS_ETH)

    assert alert.evidence.matches["found_in"] == "rule_file"
    assert not any(name.startswith("intel_") for name in alert.evidence.matches)


@pytest.mark.parametrize(("listings", "fired"), [
    ([], set()),
    ([SANCTIONS], {"sanctioned_counterparty"}),
    ([listing("service", entity="Exchange X")], set()),
    ([listing("chain_risk", risk_score=100)], {"high_risk_counterparty"}),
    ([MIXER], {"mixer_exposure"}),
    ([listing("sanctions", address=TORNADO_ETH)], set()),  # another address
])
def test_each_list_fires_its_own_rule(customer, with_intel, listings, fired):
    c = customer(tier=3, rules=with_intel(*listings))

    assert c.ids(c.transfer(H, "120.00", "out", address=FRESH_ETH)) == fired


def test_an_address_removed_from_the_index_no_longer_alerts(customer, with_intel):
    rules = with_intel(SANCTIONS)
    c = customer(tier=3, rules=rules)
    assert c.ids(c.transfer(H, "120.00", "out", address=FRESH_ETH)) == {
        "sanctioned_counterparty"}

    rules.intel.apply(SANCTIONS.key, None)

    assert c.transfer(2 * H, "120.00", "out", address=FRESH_ETH) == []


def test_a_mixer_of_the_intel_topic_alerts(customer, with_intel):
    c = customer(tier=3, rules=with_intel(MIXER))

    (alert,) = c.transfer(H, "2000.00", "out", address=FRESH_ETH.lower(), cp_type="other")

    assert alert.rule_id == "mixer_exposure"
    assert alert.summary == "transfer of 2000.00 USD to Sinbad"
    assert alert.evidence.matches == {
        "counterparty_type": "other", "list": "mixer", "listed_address": FRESH_ETH.lower(),
        "service": "Sinbad", "category": "mixer", "source": "provider X",
        "listed_at": "2026-02-01T00:00:00+00:00", "found_in": "intel_topic"}


def test_a_mixer_on_the_file_and_the_topic_names_both(customer, with_intel):
    c = customer(tier=3, rules=with_intel(listing("mixer", TORNADO_ETH, entity="TC")))

    (alert,) = c.transfer(H, "2000.00", "in", address=TORNADO_ETH)

    matches = alert.evidence.matches
    assert (matches["list"], matches["service"]) == ("mixers", "Tornado Cash")
    assert (matches["intel_list"], matches["intel_entity"]) == ("mixer", "TC")
    assert matches["found_in"] == "rule_file,intel_topic"
    assert alert.summary == "transfer of 2000.00 USD from Tornado Cash"


def test_a_mixer_by_type_only_names_no_list(customer, with_intel):
    c = customer(tier=3, rules=with_intel(SANCTIONS))

    (alert,) = c.transfer(H, "2000.00", "out", cp_type="mixer")

    assert alert.evidence.matches == {"counterparty_type": "mixer"}


@pytest.mark.parametrize(("band", "score", "fires"), [
    (None, 0, False),
    (None, 74, False),  # default band: 75
    (None, 75, True),
    (None, 100, True),
    (90, 89, False),
    (90, 90, True),
    (0, 0, True),
])
def test_high_risk_counterparty_fires_from_the_band(customer, with_intel, band, score, fires):
    patch = None if band is None else {"network": {"chain_risk_high_from": band}}
    scored = listing("chain_risk", risk_score=score, source="provider X",
                     category="darknet market", chain="ETH")
    c = customer(tier=3, rules=with_intel(scored, patch=patch))

    alerts = c.transfer(H, "300.00", "out", address=FRESH_ETH)

    assert c.ids(alerts) == ({"high_risk_counterparty"} if fires else set())
    if fires:
        (alert,) = alerts
        assert alert.severity == "high"
        assert alert.observed_value == score
        assert alert.threshold == (75 if band is None else band)
        assert alert.measure == "provider_risk_score"
        assert alert.summary == (f"transfer of 300.00 USD to an address scored {score}/100 "
                                 "by provider X (darknet market)")
        assert alert.evidence.matches == {
            "list": "chain_risk", "listed_address": FRESH_ETH.lower(),
            "category": "darknet market", "chain": "ETH", "risk_score": str(score),
            "source": "provider X", "listed_at": "2026-02-01T00:00:00+00:00",
            "found_in": "intel_topic"}


def test_high_risk_counterparty_alerts_on_every_transfer(customer, with_intel):
    """cooldown_s 0: each transfer, either way, is its own alert."""
    c = customer(tier=3, rules=with_intel(listing("chain_risk", risk_score=90)))

    c.transfer(H, "50.00", "out", address=FRESH_ETH)
    c.transfer(2 * H, "60.00", "in", address=FRESH_ETH)

    assert c.fired() == ["high_risk_counterparty"] * 2
    assert len({a.alert_id for a in c.alerts}) == 2
    assert all(a.summary.endswith("by a risk provider") for a in c.alerts)


def test_high_risk_counterparty_can_be_switched_off(customer, with_intel):
    c = customer(tier=3, rules=with_intel(
        listing("chain_risk", risk_score=90),
        patch={"rules": {"high_risk_counterparty": {"enabled": False}}}))

    assert c.transfer(H, "50.00", "out", address=FRESH_ETH) == []
