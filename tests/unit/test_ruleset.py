"""Loading, validating and compiling rule sets (``streams.ruleset``, ``schemas.rules``)."""

import shutil
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from streams.ruleset import RuleSetError, TierLimitsCents, load_rules, parse_rule_set

ALL_RULES = {"large_transfer", "volume_24h", "volume_30d", "velocity_1h", "velocity_24h",
             "structuring", "unverified_activity", "high_risk_jurisdiction",
             "sanctioned_counterparty"}


def test_default_rule_file_loads(rules):
    config = rules.config

    assert config.version == "2026-11-21.1"
    assert rules.version == config.version
    assert config.allowed_lateness_s == 3600
    assert rules.reporting_threshold_cents == 1_000_000
    assert rules.near_threshold_floor_cents == 900_000
    assert rules.tiers == {
        0: TierLimitsCents(100_000, 200_000, 500_000, 5, 10),
        1: TierLimitsCents(1_000_000, 1_500_000, 5_000_000, 10, 30),
        2: TierLimitsCents(5_000_000, 10_000_000, 50_000_000, 20, 60),
        3: TierLimitsCents(25_000_000, 100_000_000, 500_000_000, 40, 150),
    }
    assert set(type(config.rules).model_fields) == ALL_RULES
    assert all(getattr(config.rules, rule).enabled for rule in ALL_RULES)
    assert {rule: getattr(config.rules, rule).cooldown_s for rule in ALL_RULES} == {
        "large_transfer": 0, "sanctioned_counterparty": 0, "velocity_1h": 3600,
        "volume_24h": 86400, "velocity_24h": 86400, "structuring": 86400,
        "unverified_activity": 86400, "high_risk_jurisdiction": 86400,
        "volume_30d": 30 * 86400,
    }
    assert rules.jurisdictions.black == {"KP", "IR", "MM"}
    assert {"VE", "SY", "MC", "VG"} <= rules.jurisdictions.grey
    assert not {"DZ", "NA"} & (rules.jurisdictions.grey | rules.jurisdictions.black)
    assert len(rules.sanctioned) > 900
    assert len(rules.mixers) > 50
    assert rules.usd_per_unit["BTC"] == Decimal(90000)
    assert rules.usd_per_unit["TRX"] == Decimal("0.25")


INVALID = [
    # patch, two things the message must say: where, and what is wrong
    ({"tiers": {3: None}}, "tiers must set limits for every KYC tier 0-3", "missing [3]"),
    ({"tiers": {0: None, 2: None}}, "tiers must set limits", "missing [0, 2]"),
    ({"tiers": {1: {"volume_24h_usd": None}}}, "tiers.1.volume_24h_usd: ", "Field required"),
    ({"tiers": {1: {"large_transfer_usd": "-1"}}}, "tiers.1.large_transfer_usd: ",
     "greater than or equal to 0"),
    ({"tiers": {1: {"large_transfer_usd": 1000.5}}}, "tiers.1.large_transfer_usd: ",
     "not JSON floats"),
    ({"tiers": {0: {"max_transfers_1h": 0}}}, "tiers.0.max_transfers_1h: ",
     "greater than or equal to 1"),
    ({"tiers": {0: {"max_transfer_1h": 5}}}, "tiers.0.max_transfer_1h: ",
     "Extra inputs are not permitted"),
    ({"reporting_threshold_usd": "-10000"}, "reporting_threshold_usd: ",
     "greater than or equal to 0"),
    ({"allowed_lateness_s": "1 hour"}, "allowed_lateness_s: ", "not of the form"),
    ({"allowed_lateness_s": "2d"}, "allowed_lateness_s: ", "less than or equal to 86400"),
    ({"allowed_lateness_s": "-5s"}, "allowed_lateness_s: ", "not of the form"),
    ({"allowed_lateness_s": -5}, "allowed_lateness_s: ", "greater than or equal to 0"),
    ({"rules": {"volume_24h": {"cooldown_s": "10x"}}}, "rules.volume_24h.cooldown_s: ",
     "not of the form"),
    ({"rules": {"volume_24h": {"cooldown_s": "1.5h"}}}, "rules.volume_24h.cooldown_s: ",
     "not of the form"),
    ({"rules": {"structuring": {"window_s": "31d"}}}, "rules.structuring.window_s: ",
     "less than or equal to"),
    ({"rules": {"structuring": {"window_s": "0s"}}}, "rules.structuring.window_s: ",
     "greater than 0"),
    ({"rules": {"structuring": {"margin_pct": "100"}}}, "rules.structuring.margin_pct: ",
     "less than 100"),
    ({"rules": {"structuring": {"min_transfers": 1}}}, "rules.structuring.min_transfers: ",
     "greater than or equal to 2"),
    ({"rules": {"large_transfer": {"severity": "urgent"}}}, "rules.large_transfer.severity: ",
     "'low', 'medium', 'high' or 'critical'"),
    ({"rules": {"volume_7d": {"enabled": True}}}, "rules.volume_7d: ",
     "Extra inputs are not permitted"),
    ({"rules": {"large_transfer": {"threshold": "5"}}}, "rules.large_transfer.threshold: ",
     "Extra inputs are not permitted"),
    ({"treshold_usd": "10000"}, "treshold_usd: ", "Extra inputs are not permitted"),
    ({"version": None}, "version: ", "Field required"),
    ({"version": ""}, "version: ", "at least 1 character"),
    ({"prices": {"usd_per_unit": {"BTC": 90000.5}}}, "prices.usd_per_unit.BTC: ",
     "not JSON floats"),
    ({"lists": {"sdn": "x.csv"}}, "lists.sdn: ", "Extra inputs are not permitted"),
]


@pytest.mark.parametrize(("patch", "where", "what"), INVALID)
@pytest.mark.parametrize("via", ["document", "file"])
def test_invalid_rule_sets_are_rejected_naming_the_field(rule_document, tmp_path, patch, where,
                                                         what, via):
    document = rule_document(patch)

    with pytest.raises(RuleSetError) as caught:
        if via == "document":
            parse_rule_set(document)
        else:
            path = tmp_path / "rules.yaml"
            path.write_text(yaml.safe_dump(document), encoding="utf-8")
            load_rules(path)

    message = str(caught.value)
    assert message.startswith("invalid rule set: ")
    assert where in message
    assert what in message


def test_every_problem_is_reported_at_once(rule_document):
    document = rule_document({"allowed_lateness_s": "soon", "tiers": {2: {"volume_30d_usd": "-1"}},
                              "rules": {"velocity_1h": {"colldown_s": "1h"}}})

    with pytest.raises(RuleSetError) as caught:
        parse_rule_set(document)

    message = str(caught.value)
    for where in ("allowed_lateness_s: ", "tiers.2.volume_30d_usd: ",
                  "rules.velocity_1h.colldown_s: "):
        assert where in message


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("version: [unclosed", "cannot read rule file"),
        ("- just\n- a list\n", "invalid rule set"),
        ("", "invalid rule set"),
    ],
)
def test_unreadable_rule_files(tmp_path, text, says):
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")

    with pytest.raises(RuleSetError, match=says):
        load_rules(path)


def test_missing_rule_file(tmp_path):
    with pytest.raises(RuleSetError, match="cannot read rule file"):
        load_rules(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    ("values", "cents"),
    [
        ({"large_transfer_usd": 1000}, 100_000),  # YAML integer
        ({"large_transfer_usd": "1000.005"}, 100_000),  # half-even to the cent
        ({"large_transfer_usd": "1000.015"}, 100_002),
        ({"large_transfer_usd": "0"}, 0),
    ],
)
def test_tier_amounts_compile_to_cents(customised, values, cents):
    assert customised({"tiers": {0: values}}).tiers[0].large_transfer == cents


@pytest.mark.parametrize(("duration", "seconds"), [
    ("30s", 30), ("15m", 900), ("24h", 86400), ("7d", 604800), (" 2h ", 7200), (45, 45),
    ("0s", 0),
])
def test_durations(customised, duration, seconds):
    assert customised({"rules": {"velocity_1h": {"cooldown_s": duration}}}).config.rules \
        .velocity_1h.cooldown_s == seconds


def test_model_copy_and_compile(rules, config_dir):
    from streams.ruleset import compile_rules

    rule_set = rules.config.model_copy(update={"reporting_threshold_usd": Decimal("5000")})

    compiled = compile_rules(rule_set, config_dir)

    assert (compiled.reporting_threshold_cents, compiled.near_threshold_floor_cents) == (
        500_000, 450_000)
    assert len(compiled.sanctioned) == len(rules.sanctioned)


SANCTIONED_CSV = """address,case_preserved,asset,sdn_entity,programs,sdn_uid
1TestAddrCasePreserved,yes,XBT,TEST ENTITY,TEST,1
"""


def _deployment(tmp_path, rule_document, config_dir):
    """rules/rules.yaml naming lists in ../reflists/, as paths relative to the rule file."""
    (tmp_path / "rules").mkdir()
    (tmp_path / "reflists").mkdir()
    (tmp_path / "reflists" / "sdn.csv").write_text(SANCTIONED_CSV, encoding="utf-8")
    for name in ("fatf_lists.csv", "mixer_addresses.csv"):
        shutil.copy(config_dir / "lists" / name, tmp_path / "reflists" / name)
    document = rule_document({"lists": {
        "sanctioned_addresses": "../reflists/sdn.csv",
        "fatf_jurisdictions": "../reflists/fatf_lists.csv",
        "mixer_addresses": "../reflists/mixer_addresses.csv",
    }})
    path = tmp_path / "rules" / "rules.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("cwd", "rule_file"),
    [
        (".", "rules/rules.yaml"),
        ("rules", "rules.yaml"),
        ("elsewhere/deeper", "../../rules/rules.yaml"),
        ("elsewhere", None),  # absolute
    ],
)
def test_list_paths_resolve_relative_to_the_rule_file(tmp_path, rule_document, config_dir,
                                                      monkeypatch, cwd, rule_file):
    path = _deployment(tmp_path, rule_document, config_dir)
    (tmp_path / "elsewhere" / "deeper").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / cwd)

    rules = load_rules(path if rule_file is None else Path(rule_file))

    assert len(rules.sanctioned) == 1
    assert rules.sanctioned.match("1TestAddrCasePreserved").entity == "TEST ENTITY"
    assert rules.sanctioned.match("0x098B716B8Aaf21512996dC57EB0615e2383E2f96") is None
    assert rules.jurisdictions.black == {"KP", "IR", "MM"}


@pytest.mark.parametrize(
    ("broken", "says"),
    [
        ("missing", "cannot load a reference list"),
        ("no_address_column", "cannot load a reference list"),
    ],
)
def test_unusable_reference_lists_are_rejected(tmp_path, rule_document, config_dir, broken,
                                               says):
    path = _deployment(tmp_path, rule_document, config_dir)
    sdn = tmp_path / "reflists" / "sdn.csv"
    if broken == "missing":
        sdn.unlink()
    else:
        sdn.write_text("addr,case_preserved\n1abc,yes\n", encoding="utf-8")

    with pytest.raises(RuleSetError, match=says):
        load_rules(path)
