"""Load a rule file, validate it, and compile it into the form the rules compare against.

Compiling turns USD thresholds into integer cents once and loads the reference lists, so the
per-event path compares integers and looks up sets.
"""

import difflib
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from schemas.risk import RiskLevel
from schemas.rules import Rules, RuleSet, ThresholdProfile, TierLimits
from streams.intel import IntelIndex
from streams.money import to_cents
from streams.reference_lists import (
    AddressList,
    JurisdictionLists,
    load_fatf_lists,
    load_mixer_addresses,
    load_sanctioned_addresses,
)


class RuleSetError(ValueError):
    """A rule set that cannot be used; the message says why."""


@dataclass(frozen=True, slots=True)
class TierLimitsCents:
    large_transfer: int
    volume_24h: int
    volume_30d: int
    max_transfers_1h: int
    max_transfers_24h: int


@dataclass(frozen=True, slots=True)
class ThresholdsCents:
    """A jurisdiction profile's thresholds in USD cents."""

    profile: str
    reporting_threshold: int
    near_threshold_floor: int
    """Structuring counts transfers in [near_threshold_floor, reporting_threshold)."""
    travel_rule_threshold: int


@dataclass(frozen=True)
class CompiledRules:
    config: RuleSet
    limits: dict[RiskLevel, dict[int, TierLimitsCents]]
    """Tier limits per customer risk level (enhanced due diligence tightens them)."""
    profiles: dict[str, ThresholdsCents]
    sanctioned: AddressList
    mixers: AddressList
    jurisdictions: JurisdictionLists
    usd_per_unit: dict[str, Decimal]
    intel: IntelIndex = field(default_factory=IntelIndex, compare=False, repr=False)
    """Address intelligence in force (``streams.intel``): one object the worker shares
    between the rule sets it compiles, so a new rule set keeps the listings read."""

    @property
    def version(self) -> str:
        return self.config.version

    @property
    def tiers(self) -> dict[int, TierLimitsCents]:
        """Limits for a low-risk customer."""
        return self.limits[RiskLevel.LOW]

    def thresholds_for(self, country: str | None) -> ThresholdsCents:
        profiles = self.config.jurisdiction_profiles
        name = profiles.by_country.get(country, profiles.default) if country else profiles.default
        return self.profiles[name]


def parse_rule_set(document: Any) -> RuleSet:
    """Validate a parsed YAML/JSON document; raises ``RuleSetError`` with every problem."""
    from pydantic import ValidationError

    try:
        return RuleSet.model_validate(document)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}"
            + _nearest_key(err) for err in exc.errors()
        )
        raise RuleSetError(f"invalid rule set: {problems}") from exc


def _setting_names(model: Any, seen: set[Any] | None = None) -> set[str]:
    """Every field name of a settings model and of the models inside it."""
    seen = set() if seen is None else seen
    if model in seen or not hasattr(model, "model_fields"):
        return set()
    seen.add(model)
    names = set(model.model_fields)
    for info in model.model_fields.values():
        for inner in (info.annotation, *getattr(info.annotation, "__args__", ())):
            names |= _setting_names(inner, seen)
    return names


def _nearest_key(error: Any) -> str:
    """For an unknown key (a typo), the closest setting name there is, if one is close."""
    if error["type"] != "extra_forbidden" or not error["loc"]:
        return ""
    close = difflib.get_close_matches(str(error["loc"][-1]), sorted(_setting_names(RuleSet)),
                                      n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""


def missing_rule_sections(document: Any) -> list[str]:
    """Rules that have no section in a rule file's ``rules`` (they run on their defaults)."""
    rules = document.get("rules") if isinstance(document, dict) else None
    if not isinstance(rules, dict):
        return []
    return [name for name in Rules.model_fields if name not in rules]


def _tier_limits(limits: TierLimits, multiplier: Decimal) -> TierLimitsCents:
    return TierLimitsCents(
        large_transfer=to_cents(limits.large_transfer_usd * multiplier),
        volume_24h=to_cents(limits.volume_24h_usd * multiplier),
        volume_30d=to_cents(limits.volume_30d_usd * multiplier),
        max_transfers_1h=max(1, int(limits.max_transfers_1h * multiplier)),
        max_transfers_24h=max(1, int(limits.max_transfers_24h * multiplier)),
    )


def _thresholds(name: str, profile: ThresholdProfile, rule_set: RuleSet) -> ThresholdsCents:
    usd_per_unit = (Decimal(1) if profile.currency == "USD"
                    else rule_set.prices.usd_per_unit[profile.currency])
    margin = rule_set.rules.structuring.margin_pct
    reporting = profile.reporting_threshold * usd_per_unit
    return ThresholdsCents(
        profile=name,
        reporting_threshold=to_cents(reporting),
        near_threshold_floor=to_cents(reporting * (100 - margin) / 100),
        travel_rule_threshold=to_cents(profile.travel_rule_threshold * usd_per_unit),
    )


def compile_rules(rule_set: RuleSet, base_dir: Path) -> CompiledRules:
    lists = rule_set.lists
    try:
        sanctioned = load_sanctioned_addresses(base_dir / lists.sanctioned_addresses)
        mixers = load_mixer_addresses(base_dir / lists.mixer_addresses)
        jurisdictions = load_fatf_lists(base_dir / lists.fatf_jurisdictions)
    except (OSError, KeyError) as exc:
        raise RuleSetError(f"cannot load a reference list: {exc}") from exc
    multipliers = rule_set.risk.limit_multiplier
    return CompiledRules(
        config=rule_set,
        limits={
            level: {tier: _tier_limits(limits, multipliers.get(level, Decimal(1)))
                    for tier, limits in rule_set.tiers.items()}
            for level in RiskLevel
        },
        profiles={name: _thresholds(name, profile, rule_set)
                  for name, profile in rule_set.jurisdiction_profiles.profiles.items()},
        sanctioned=sanctioned,
        mixers=mixers,
        jurisdictions=jurisdictions,
        usd_per_unit={asset.upper(): usd for asset, usd in rule_set.prices.usd_per_unit.items()},
    )


def load_rules(path: Path, overrides: dict[str, str] | None = None,
               lists_dir: Path | None = None) -> CompiledRules:
    """Read, validate and compile the rule file at ``path``; ``overrides`` change settings
    first (``structuring.margin_pct`` -> ``"15"``, see ``override``), and name themselves in
    the version. List files are read relative to ``lists_dir`` (default: the file's folder)."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = "" if mark is None else f", line {mark.line + 1}, column {mark.column + 1}"
        raise RuleSetError(f"cannot read rule file {path}{where}: "
                           f"{exc.problem or exc.context}") from exc
    except (OSError, yaml.YAMLError) as exc:
        raise RuleSetError(f"cannot read rule file {path}: {exc}") from exc
    if overrides:
        for setting, value in overrides.items():
            override(document, setting, value)
        changes = ",".join(f"{setting.rsplit('.', 1)[-1]}={value}"
                           for setting, value in overrides.items())
        document["version"] = f"{document.get('version')}+{changes}"[:64]
    return compile_rules(parse_rule_set(document),
                         lists_dir if lists_dir is not None else path.resolve().parent)


def override(document: Any, setting: str, value: str) -> None:
    """Set ``setting``, a dotted path in the rule file (``tiers.1.large_transfer_usd``; a rule's
    own settings may leave out ``rules.``: ``structuring.margin_pct``), to ``value`` read as
    YAML (``"3"`` is a number, ``"24h"`` a duration)."""
    parts = setting.split(".")
    rules = document.get("rules") if isinstance(document, dict) else None
    if isinstance(rules, dict) and parts[0] in rules:
        parts = ["rules", *parts]
    node = document
    for part in parts[:-1]:
        key: Any = int(part) if part.isdigit() and isinstance(node, dict) and int(
            part) in node else part
        if not isinstance(node, dict) or key not in node:
            raise RuleSetError(f"the rule file has no setting {setting!r}")
        node = node[key]
    if not isinstance(node, dict) or parts[-1] not in node:
        raise RuleSetError(f"the rule file has no setting {setting!r}")
    node[parts[-1]] = yaml.safe_load(value)
