"""KYC status, FATF jurisdictions and the OFAC SDN address list."""

import csv
from datetime import timedelta

import pytest

from streams.reference_lists import AddressList, ListedAddress

H = timedelta(hours=1)
LAZARUS_ETH = "0x098B716B8Aaf21512996dC57EB0615e2383E2f96"
"""OFAC SDN, LAZARUS GROUP, listed in EIP-55 checksum case."""
YAN_XBT = "12QtD5BFwRsdNsAZY76UVE1xyCGNTojH9h"
"""OFAC SDN, Xiaobing YAN, base58 bitcoin address, case preserved."""
MARKAZI_TRX = "tniq9axbp9ejuqhdhrwrfvaa8u3guqzh81"
"""OFAC SDN, BANK MARKAZI, TRON address of which only the lower-cased form survives."""


@pytest.mark.parametrize(
    ("onboarding", "status"),
    [
        ([], "unknown"),
        (["registered"], "registered"),
        (["registered", "kyc_submitted"], "submitted"),
        (["registered", "kyc_submitted", "kyc_verified"], "verified"),
        (["registered", "kyc_submitted", "kyc_rejected"], "rejected"),
        (["registered", "kyc_submitted", "kyc_verified", "closed"], "closed"),
        (["registered", "kyc_verified", "profile_updated", "screening_result"], "verified"),
        (["registered", "kyc_rejected", "kyc_submitted"], "submitted"),
    ],
)
def test_unverified_activity_for_every_kyc_status(customer, onboarding, status):
    c = customer(status="unknown", tier=1)
    for n, kind in enumerate(onboarding):
        c.onboard(n * H, kind)
    assert c.state.profile.kyc_status == status

    alerts = c.transfer(20 * H, "250.00", "out")

    if status == "verified":
        assert alerts == []
    else:
        (alert,) = alerts
        assert alert.rule_id == "unverified_activity"
        assert alert.severity == "high"
        assert alert.evidence.matches == {"kyc_status": status}
        assert alert.customer.kyc_status == status
        assert alert.observed_value == 250


COUNTRY_CASES = [
    # counterparty, residence, nationality -> severity under default rules, matched fields
    ("IR", None, None, "high", {"counterparty_country": "IR (FATF black list)"}),
    ("KP", None, None, "high", {"counterparty_country": "KP (FATF black list)"}),
    ("ir", None, None, "high", {"counterparty_country": "IR (FATF black list)"}),
    ("VE", None, None, "medium", {"counterparty_country": "VE (FATF grey list)"}),
    (None, "MM", None, "high", {"residence_country": "MM (FATF black list)"}),
    (None, "SY", None, "medium", {"residence_country": "SY (FATF grey list)"}),
    (None, None, "KP", "high", {"nationality_country": "KP (FATF black list)"}),
    (None, None, "YE", "medium", {"nationality_country": "YE (FATF grey list)"}),
    ("VE", "DE", "IR", "high", {"counterparty_country": "VE (FATF grey list)",
                                "nationality_country": "IR (FATF black list)"}),
    ("HT", "HT", "HT", "medium", {"counterparty_country": "HT (FATF grey list)",
                                  "residence_country": "HT (FATF grey list)",
                                  "nationality_country": "HT (FATF grey list)"}),
    ("DE", "FR", "US", None, {}),
    ("DZ", "NA", None, None, {}),  # delisted ("removed") rows do not count
    (None, None, None, None, {}),
]


@pytest.mark.parametrize(("cp", "residence", "nationality", "severity", "matches"), COUNTRY_CASES)
def test_high_risk_jurisdiction_default_severities(customer, cp, residence, nationality,
                                                   severity, matches):
    c = customer(tier=2, residence=residence, nationality=nationality)

    alerts = c.transfer(10 * H, "500.00", "out", country=cp)

    if severity is None:
        assert alerts == []
    else:
        (alert,) = alerts
        assert alert.rule_id == "high_risk_jurisdiction"
        assert alert.severity == severity
        assert alert.evidence.matches == matches


@pytest.mark.parametrize(("cp", "residence", "severity"), [
    ("IR", None, "critical"),
    ("VE", None, "low"),
    ("VE", "KP", "critical"),
    ("DE", None, None),
])
def test_high_risk_jurisdiction_severity_comes_from_the_rule_config(
        customer, customised, cp, residence, severity):
    rules = customised({"rules": {"high_risk_jurisdiction": {
        "grey_list_severity": "low", "black_list_severity": "critical"}}})
    c = customer(tier=2, residence=residence, rules=rules)

    alerts = c.transfer(10 * H, "500.00", country=cp)

    assert [a.severity for a in alerts] == ([] if severity is None else [severity])


def test_residence_set_by_onboarding_is_checked(customer):
    c = customer(status="unknown", tier=0)
    c.onboard(0 * H, "registered", country_of_residence="ve", nationality="de")
    c.onboard(1 * H, "kyc_verified", kyc_tier=2)

    (alert,) = c.transfer(5 * H, "10.00")

    assert alert.rule_id == "high_risk_jurisdiction"
    assert alert.evidence.matches == {"residence_country": "VE (FATF grey list)"}


@pytest.mark.parametrize(
    ("address", "listed"),
    [
        (LAZARUS_ETH, LAZARUS_ETH),
        (LAZARUS_ETH.lower(), LAZARUS_ETH),
        ("0x" + LAZARUS_ETH[2:].upper(), LAZARUS_ETH),
        (LAZARUS_ETH.upper(), LAZARUS_ETH),  # 0X prefix
        (YAN_XBT, YAN_XBT),
        (YAN_XBT.lower(), None),
        (YAN_XBT.upper(), None),
        (YAN_XBT.swapcase(), None),
        (YAN_XBT[:-1] + "H", None),
        (MARKAZI_TRX, MARKAZI_TRX),
        (MARKAZI_TRX.upper(), MARKAZI_TRX),
        ("TNiq9AXbp9ejuqhdhrwrfvaa8u3guqzh81", MARKAZI_TRX),
        ("0x" + "ab" * 20, None),
        ("TXyz9axbp9ejuqhdhrwrfvaa8u3guqzh81", None),
        (None, None),
    ],
)
def test_sanctioned_counterparty_case_rules(customer, address, listed):
    c = customer(tier=3)

    alerts = c.transfer(10 * H, "1200.00", "out", address=address)

    if listed is None:
        assert alerts == []
    else:
        (alert,) = alerts
        assert alert.rule_id == "sanctioned_counterparty"
        assert alert.severity == "critical"
        assert alert.evidence.matches["listed_address"] == listed
        assert alert.evidence.matches["list"] == "OFAC SDN"


@pytest.mark.parametrize(("address", "entity"), [
    (LAZARUS_ETH.lower(), "LAZARUS GROUP"),
    (YAN_XBT, "Xiaobing YAN"),
    (MARKAZI_TRX.upper(), "BANK MARKAZI JOMHOURI ISLAMI IRAN"),
])
def test_sanctioned_counterparty_alerts_on_every_transfer(customer, address, entity):
    """cooldown_s 0: each transfer to a listed address is its own alert."""
    c = customer(tier=3)

    c.transfer(10 * H, "50.00", "out", address=address)
    c.transfer(11 * H, "60.00", "in", address=address)

    assert c.fired() == ["sanctioned_counterparty"] * 2
    assert len({a.alert_id for a in c.alerts}) == 2
    assert all(a.evidence.matches["entity"] == entity for a in c.alerts)


def _sanctioned_rows(config_dir, case_preserved, asset=None):
    path = config_dir / "lists" / "ofac_sdn_crypto_addresses.csv"
    with path.open(newline="", encoding="utf-8") as rows:
        return [row["address"] for row in csv.DictReader(rows)
                if row["case_preserved"] == case_preserved and asset in (None, row["asset"])]


def test_every_case_preserved_base58_xbt_entry_matches_only_exactly(rules, config_dir):
    xbt = [a for a in _sanctioned_rows(config_dir, "yes", asset="XBT")
           if not a.lower().startswith("bc1")]
    assert len(xbt) > 200

    assert [a for a in xbt if rules.sanctioned.match(a) is None] == []
    assert [a for a in xbt if rules.sanctioned.match(a.swapcase()) is not None] == []


def test_every_bech32_xbt_entry_matches_in_any_case(rules, config_dir):
    """bech32 (bc1...) is case-insensitive by its specification, like 0x-hex."""
    bech32 = [a for a in _sanctioned_rows(config_dir, "yes", asset="XBT")
              if a.lower().startswith("bc1")]
    assert len(bech32) > 50

    assert [a for a in bech32 if rules.sanctioned.match(a.upper()) is None] == []


def test_every_lowercased_only_entry_matches_in_any_case(rules, config_dir):
    folded = _sanctioned_rows(config_dir, "lowercased_only")
    assert len(folded) > 300

    assert [a for a in folded if rules.sanctioned.match(a.upper()) is None] == []
    assert [a for a in folded if rules.sanctioned.match(a.title()) is None] == []


def test_every_evm_entry_matches_in_any_case(rules, config_dir):
    evm = [a for a in _sanctioned_rows(config_dir, "yes") if a.lower().startswith("0x")]
    assert len(evm) > 50

    assert [a for a in evm if rules.sanctioned.match(a.lower()) is None] == []
    assert [a for a in evm if rules.sanctioned.match("0x" + a[2:].upper()) is None] == []


@pytest.mark.parametrize(
    ("listed", "case_known", "query", "matches"),
    [
        ("AbCdEf", True, "AbCdEf", True),
        ("AbCdEf", True, "abcdef", False),
        ("AbCdEf", False, "abcdef", True),
        ("AbCdEf", False, "ABCDEF", True),
        ("0xAbCd", True, "0xabcd", True),
        ("0xAbCd", True, "0XABCD", True),
        ("0xAbCd", False, "0xaBcD", True),
        ("AbCdEf", True, "", False),
        ("AbCdEf", True, None, False),
    ],
)
def test_address_list_case_rules(listed, case_known, query, matches):
    addresses = AddressList()
    entry = ListedAddress(listed, "test list", "someone", "")
    addresses.add(entry, case_known=case_known)

    assert addresses.match(query) is (entry if matches else None)
    assert len(addresses) == 1
