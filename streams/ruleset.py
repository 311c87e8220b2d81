"""Load a rule file, validate it, and compile it into the form the rules compare against.

Compiling turns USD thresholds into integer cents once and loads the reference lists, so the
per-event path compares integers and looks up sets.
"""

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from schemas.rules import RuleSet
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


@dataclass(frozen=True)
class CompiledRules:
    config: RuleSet
    tiers: dict[int, TierLimitsCents]
    reporting_threshold_cents: int
    near_threshold_floor_cents: int
    sanctioned: AddressList
    mixers: AddressList
    jurisdictions: JurisdictionLists
    usd_per_unit: dict[str, Decimal]

    @property
    def version(self) -> str:
        return self.config.version


def parse_rule_set(document: Any) -> RuleSet:
    """Validate a parsed YAML/JSON document; raises ``RuleSetError`` with every problem."""
    from pydantic import ValidationError

    try:
        return RuleSet.model_validate(document)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}"
            for err in exc.errors()
        )
        raise RuleSetError(f"invalid rule set: {problems}") from exc


def compile_rules(rule_set: RuleSet, base_dir: Path) -> CompiledRules:
    threshold = to_cents(rule_set.reporting_threshold_usd)
    margin = rule_set.rules.structuring.margin_pct
    lists = rule_set.lists
    try:
        sanctioned = load_sanctioned_addresses(base_dir / lists.sanctioned_addresses)
        mixers = load_mixer_addresses(base_dir / lists.mixer_addresses)
        jurisdictions = load_fatf_lists(base_dir / lists.fatf_jurisdictions)
    except (OSError, KeyError) as exc:
        raise RuleSetError(f"cannot load a reference list: {exc}") from exc
    return CompiledRules(
        config=rule_set,
        tiers={
            tier: TierLimitsCents(
                large_transfer=to_cents(limits.large_transfer_usd),
                volume_24h=to_cents(limits.volume_24h_usd),
                volume_30d=to_cents(limits.volume_30d_usd),
                max_transfers_1h=limits.max_transfers_1h,
                max_transfers_24h=limits.max_transfers_24h,
            )
            for tier, limits in rule_set.tiers.items()
        },
        reporting_threshold_cents=threshold,
        near_threshold_floor_cents=to_cents(
            rule_set.reporting_threshold_usd * (100 - margin) / 100
        ),
        sanctioned=sanctioned,
        mixers=mixers,
        jurisdictions=jurisdictions,
        usd_per_unit={asset.upper(): usd for asset, usd in rule_set.prices.usd_per_unit.items()},
    )


def load_rules(path: Path) -> CompiledRules:
    """Read, validate and compile the rule file at ``path``."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise RuleSetError(f"cannot read rule file {path}: {exc}") from exc
    return compile_rules(parse_rule_set(document), path.resolve().parent)
