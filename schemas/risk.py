"""Customer risk rating: its configuration and the change record published on each change."""

from decimal import Decimal
from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from schemas.alerts import Severity
from schemas.config_types import DurationS, StrictConfig


class RiskLevel(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class RiskPoints(StrictConfig):
    """Points for who the customer is (KYC factors)."""

    residence_fatf_black: int = 50
    residence_fatf_grey: int = 25
    nationality_fatf_black: int = 30
    nationality_fatf_grey: int = 15
    pep: int = 30
    sanctions_hit: int = 100
    kyc_tier_0: int = 20
    kyc_tier_1: int = 10
    not_verified: int = 20


class RiskConfig(StrictConfig):
    points: RiskPoints = RiskPoints()
    alert_points: dict[Severity, int] = Field(
        default_factory=lambda: {Severity.LOW: 2, Severity.MEDIUM: 5, Severity.HIGH: 15,
                                 Severity.CRITICAL: 40},
        description="Points per alert (behaviour); they halve every alert_half_life_s.")
    alert_half_life_s: DurationS = Field(30 * 86400, gt=0)
    medium_from: int = Field(30, ge=0, description="Score from which the level is medium.")
    high_from: int = Field(60, ge=0, description="Score from which the level is high.")
    limit_multiplier: dict[RiskLevel, Decimal] = Field(
        default_factory=lambda: {RiskLevel.LOW: Decimal(1), RiskLevel.MEDIUM: Decimal(1),
                                 RiskLevel.HIGH: Decimal("0.5")},
        description="Enhanced due diligence: tier limits x this for the customer's level.")
    initial_assessment_grace_s: DurationS = Field(
        7 * 86400, description="A customer's first rating is published once, as its initial "
        "assessment, when its onboarding completes (KYC verified, rejected or closed); or at "
        "its first event this long after it registered if it has not; or at once when it "
        "rates high.")
    raise_severity_at: RiskLevel | None = Field(
        RiskLevel.HIGH, description="Alerts of customers at this level are one severity up.")

    @model_validator(mode="after")
    def _consistent(self) -> "RiskConfig":
        if self.medium_from > self.high_from:
            raise ValueError("medium_from must not exceed high_from")
        if any(multiplier <= 0 for multiplier in self.limit_multiplier.values()):
            raise ValueError("limit_multiplier values must be greater than 0")
        return self


class RiskChange(BaseModel):
    """Published to the customer-risk topic: a customer's initial assessment (``previous_level``
    'unrated'), then whenever its level changes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = 1
    change_id: str = Field(description="Deterministic: re-sent changes keep their id.")
    customer_id: str
    previous_level: str = Field(description="'unrated' before the first rating.")
    level: RiskLevel
    score: Decimal
    reasons: list[str] = Field(description="Each factor with its points.")
    changed_at: AwareDatetime = Field(description="Event time of the event that changed it.")
    triggering_event_id: str
    rule_set_version: str
