"""The rule configuration: thresholds, tier limits and list files, validated before use.

A rule set is a YAML file (see ``config/rules.yaml``). Durations are written ``30m``, ``24h``,
``7d``; USD amounts as decimal strings or integers. Paths are relative to the rule file.
"""

from decimal import Decimal
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from schemas.config_types import (
    NEAR_THRESHOLD_KEPT,
    DurationS,
    StrictConfig,
    Window,
    parse_duration_s,
)
from schemas.events import CountryCode
from schemas.money import NonNegativeAmount
from schemas.network_config import NetworkBounds, NetworkRuleConfigs
from schemas.risk import RiskConfig
from schemas.rule_configs import (
    CustomerRules,
    JurisdictionConfig,
    RuleConfig,
    StructuringConfig,
)

__all__ = [
    "NEAR_THRESHOLD_KEPT",
    "DurationS",
    "JurisdictionConfig",
    "PublishedRuleSet",
    "RuleConfig",
    "RuleSet",
    "Rules",
    "StructuringConfig",
    "Window",
    "parse_duration_s",
]

class Rules(CustomerRules, NetworkRuleConfigs):
    """Every rule's settings (``rules:`` in the rule file)."""


class TierLimits(StrictConfig):
    """Limits for customers of one KYC tier."""

    large_transfer_usd: NonNegativeAmount = Field(description="A single transfer at or above.")
    volume_24h_usd: NonNegativeAmount = Field(description="In + out USD over 24h above this.")
    volume_30d_usd: NonNegativeAmount = Field(description="In + out USD over 30d above this.")
    max_transfers_1h: int = Field(ge=1, description="More transfers than this in 1h alerts.")
    max_transfers_24h: int = Field(ge=1, description="More transfers than this in 24h alerts.")


class ListFiles(StrictConfig):
    """Reference lists, as paths relative to the rule file."""

    sanctioned_addresses: str = "lists/ofac_sdn_crypto_addresses.csv"
    fatf_jurisdictions: str = "lists/fatf_lists.csv"
    mixer_addresses: str = "lists/mixer_addresses.csv"


class PriceTable(StrictConfig):
    """USD per unit of each asset, used when an event carries no ``amount_usd``."""

    usd_per_unit: dict[str, NonNegativeAmount] = Field(default_factory=dict)


class ThresholdProfile(StrictConfig):
    """A jurisdiction's thresholds, in its currency (converted with the price table)."""

    currency: str = "USD"
    reporting_threshold: NonNegativeAmount = Field(
        Decimal(10000), description="Cash/transaction reporting: structuring stays under it.")
    travel_rule_threshold: NonNegativeAmount = Field(
        Decimal(1000), description="Transfer-information threshold: unhosted withdrawals alert "
                                   "from this amount.")


class JurisdictionProfiles(StrictConfig):
    default: str = "US"
    by_country: dict[CountryCode, str] = Field(
        default_factory=dict, description="Customer's country of residence -> profile name.")
    profiles: dict[str, ThresholdProfile] = Field(
        default_factory=lambda: {"US": ThresholdProfile()})

    @model_validator(mode="after")
    def _names_exist(self) -> "JurisdictionProfiles":
        unknown = sorted({self.default, *self.by_country.values()} - set(self.profiles))
        if unknown:
            raise ValueError(f"profiles named but not defined: {unknown}")
        return self


class DecisionConfig(StrictConfig):
    """How the worker applies analysts' decisions on alerts (the alert-decisions topic)."""

    whitelist_days: int = Field(
        90, ge=0, le=3650, description="A false positive whitelists its counterparty for its "
        "customer and rule this many days, unless the decision says otherwise (0: never).")


class RuleSet(StrictConfig):
    version: str = Field(min_length=1, max_length=64, description="Named in every alert.")
    jurisdiction_profiles: JurisdictionProfiles = JurisdictionProfiles()
    allowed_lateness_s: DurationS = Field(
        3600, le=86400, description="Out-of-order events up to this late still count in windows."
    )
    tiers: dict[int, TierLimits]
    rules: Rules = Rules()
    network: NetworkBounds = NetworkBounds()
    risk: RiskConfig = RiskConfig()
    decisions: DecisionConfig = DecisionConfig()
    lists: ListFiles = ListFiles()
    prices: PriceTable = PriceTable()

    @model_validator(mode="after")
    def _every_tier_has_limits(self) -> "RuleSet":
        missing = sorted({0, 1, 2, 3} - set(self.tiers))
        if missing:
            raise ValueError(f"tiers must set limits for every KYC tier 0-3; missing {missing}")
        currencies = {p.currency for p in self.jurisdiction_profiles.profiles.values()}
        unpriced = sorted(c for c in currencies - {"USD"} if c not in self.prices.usd_per_unit)
        if unpriced:
            raise ValueError(f"profile currencies need a price: {unpriced}")
        return self


class PublishedRuleSet(BaseModel):
    """One version on the rules-history topic: the rule set as it was published (its JSON
    document, read as is: a version published under an older format stays readable) and
    when."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(description="The record's key: the rule set's version.")
    published_at: AwareDatetime = Field(description="The record's timestamp (UTC).")
    offset: int = Field(ge=0, description="Where the record is on the rules-history topic.")
    config: dict[str, Any] = Field(description="The rule set's JSON document as published.")
