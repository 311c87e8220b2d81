"""The rule configuration: thresholds, tier limits and list files, validated before use.

A rule set is a YAML file (see ``config/rules.yaml``). Durations are written ``30m``, ``24h``,
``7d``; USD amounts as decimal strings or integers. Paths are relative to the rule file.
"""

import re
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from schemas.alerts import Severity
from schemas.money import NonNegativeAmount

NEAR_THRESHOLD_KEPT = 32
"""Near-threshold transfers the customer state keeps, so the most structuring can count."""

_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d)\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration_s(value: Any) -> Any:
    """``"24h"`` -> 86400; integers are taken as seconds."""
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match is None:
            raise ValueError(f"duration {value!r} is not of the form 30s, 15m, 24h or 7d")
        return int(match.group(1)) * _UNIT_S[match.group(2)]
    return value


DurationS = Annotated[int, BeforeValidator(parse_duration_s), Field(ge=0)]


class Window(StrEnum):
    """The rolling windows the customer state keeps."""

    H1 = "1h"
    H24 = "24h"
    D7 = "7d"
    D30 = "30d"


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RuleConfig(_Config):
    enabled: bool = True
    severity: Severity = Severity.MEDIUM
    cooldown_s: DurationS = Field(
        86400,
        description="At most one alert per customer and rule per aligned period of this length; "
        "0 means one alert per triggering event.",
    )


class TierLimits(_Config):
    """Limits for customers of one KYC tier."""

    large_transfer_usd: NonNegativeAmount = Field(description="A single transfer at or above.")
    volume_24h_usd: NonNegativeAmount = Field(description="In + out USD over 24h above this.")
    volume_30d_usd: NonNegativeAmount = Field(description="In + out USD over 30d above this.")
    max_transfers_1h: int = Field(ge=1, description="More transfers than this in 1h alerts.")
    max_transfers_24h: int = Field(ge=1, description="More transfers than this in 24h alerts.")


class StructuringConfig(RuleConfig):
    min_transfers: int = Field(3, ge=2, le=NEAR_THRESHOLD_KEPT,
                               description="This many near-threshold transfers alert.")
    window_s: DurationS = Field(86400, gt=0, le=30 * 86400)
    margin_pct: Decimal = Field(
        Decimal(10), gt=0, lt=100, description="'Near' = within this % below the threshold."
    )


class JurisdictionConfig(RuleConfig):
    grey_list_severity: Severity = Severity.MEDIUM
    black_list_severity: Severity = Severity.HIGH


class Rules(_Config):
    large_transfer: RuleConfig = RuleConfig(severity=Severity.HIGH, cooldown_s=0)
    volume_24h: RuleConfig = RuleConfig(severity=Severity.MEDIUM, cooldown_s=86400)
    volume_30d: RuleConfig = RuleConfig(severity=Severity.MEDIUM, cooldown_s=30 * 86400)
    velocity_1h: RuleConfig = RuleConfig(severity=Severity.MEDIUM, cooldown_s=3600)
    velocity_24h: RuleConfig = RuleConfig(severity=Severity.MEDIUM, cooldown_s=86400)
    structuring: StructuringConfig = StructuringConfig(severity=Severity.HIGH)
    unverified_activity: RuleConfig = RuleConfig(severity=Severity.HIGH, cooldown_s=86400)
    high_risk_jurisdiction: JurisdictionConfig = JurisdictionConfig(cooldown_s=86400)
    sanctioned_counterparty: RuleConfig = RuleConfig(severity=Severity.CRITICAL, cooldown_s=0)


class ListFiles(_Config):
    """Reference lists, as paths relative to the rule file."""

    sanctioned_addresses: str = "lists/ofac_sdn_crypto_addresses.csv"
    fatf_jurisdictions: str = "lists/fatf_lists.csv"
    mixer_addresses: str = "lists/mixer_addresses.csv"


class PriceTable(_Config):
    """USD per unit of each asset, used when an event carries no ``amount_usd``."""

    usd_per_unit: dict[str, NonNegativeAmount] = Field(default_factory=dict)


class RuleSet(_Config):
    version: str = Field(min_length=1, max_length=64, description="Named in every alert.")
    reporting_threshold_usd: NonNegativeAmount = Field(
        Decimal(10000), description="The threshold that structuring tries to stay under."
    )
    allowed_lateness_s: DurationS = Field(
        3600, le=86400, description="Out-of-order events up to this late still count in windows."
    )
    tiers: dict[int, TierLimits]
    rules: Rules = Rules()
    lists: ListFiles = ListFiles()
    prices: PriceTable = PriceTable()

    @model_validator(mode="after")
    def _every_tier_has_limits(self) -> "RuleSet":
        missing = sorted({0, 1, 2, 3} - set(self.tiers))
        if missing:
            raise ValueError(f"tiers must set limits for every KYC tier 0-3; missing {missing}")
        return self
