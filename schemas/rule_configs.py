"""Per-rule settings. Every rule has ``enabled``, ``severity`` and ``cooldown_s``; the limits
that depend on the KYC tier are in ``TierLimits``, those per jurisdiction in profiles."""

from decimal import Decimal

from pydantic import Field

from schemas.alerts import Severity
from schemas.config_types import (
    COUNTERPARTIES_KEPT,
    NEAR_THRESHOLD_KEPT,
    DurationS,
    StrictConfig,
    Window,
)
from schemas.money import NonNegativeAmount

DAY_S = 86400


class RuleConfig(StrictConfig):
    enabled: bool = True
    severity: Severity = Severity.MEDIUM
    cooldown_s: DurationS = Field(
        DAY_S,
        description="At most one alert per customer and rule per aligned period of this length; "
        "0 means one alert per triggering event.",
    )


class StructuringConfig(RuleConfig):
    min_transfers: int = Field(3, ge=2, le=NEAR_THRESHOLD_KEPT,
                               description="This many near-threshold transfers alert.")
    window_s: DurationS = Field(DAY_S, gt=0, le=30 * DAY_S)
    margin_pct: Decimal = Field(
        Decimal(10), gt=0, lt=100, description="'Near' = within this % below the threshold."
    )


class JurisdictionConfig(RuleConfig):
    grey_list_severity: Severity = Severity.MEDIUM
    black_list_severity: Severity = Severity.HIGH


class RapidInOutConfig(RuleConfig):
    window: Window = Field(Window.H24, description="Deposits and withdrawals within this window.")
    min_deposits_usd: NonNegativeAmount = Field(Decimal(10000), description="Deposits at least.")
    withdrawn_pct: Decimal = Field(Decimal(80), gt=0, le=100,
                                   description="Withdrawals reach this % of the deposits.")


class DormantConfig(RuleConfig):
    silence_s: DurationS = Field(90 * DAY_S, gt=0, description="No transfer for this long...")
    min_amount_usd: NonNegativeAmount = Field(Decimal(5000), description="...then one this big.")


class NewAccountConfig(RuleConfig):
    account_age_s: DurationS = Field(30 * DAY_S, gt=0, le=30 * DAY_S,
                                     description="Registered less than this long ago...")
    volume_usd: NonNegativeAmount = Field(Decimal(20000),
                                          description="...and 30d volume above this.")


class DeclaredProfileConfig(RuleConfig):
    multiplier: Decimal = Field(Decimal(3), gt=0,
                                description="30d volume above this x declared monthly volume.")
    min_volume_usd: NonNegativeAmount = Field(Decimal(5000),
                                              description="Never below this 30d volume.")


class FanConfig(RuleConfig):
    window: Window = Window.H24
    min_counterparties: int = Field(10, ge=2, le=COUNTERPARTIES_KEPT,
                                    description="Distinct counterparties at least.")


class RepeatedNewAddressConfig(RuleConfig):
    window_s: DurationS = Field(DAY_S, gt=0, le=30 * DAY_S)
    min_transfers: int = Field(3, ge=2, description="Withdrawals to one address first seen "
                                                    "within the window.")


class SpikeConfig(RuleConfig):
    multiplier: Decimal = Field(Decimal(5), gt=1,
                                description="24h volume above this x the trailing daily mean.")
    floor_usd: NonNegativeAmount = Field(Decimal(10000),
                                         description="...and at least this, for small customers.")


class UnhostedAfterDepositConfig(RuleConfig):
    window: Window = Field(Window.H24, description="A deposit within this window before.")


class CustomerRules(StrictConfig):
    """The rules of one customer's own activity (S1); ``schemas.rules.Rules`` adds the
    network rules."""


    large_transfer: RuleConfig = RuleConfig(severity=Severity.HIGH, cooldown_s=0)
    volume_24h: RuleConfig = RuleConfig(cooldown_s=DAY_S)
    volume_30d: RuleConfig = RuleConfig(cooldown_s=30 * DAY_S)
    velocity_1h: RuleConfig = RuleConfig(cooldown_s=3600)
    velocity_24h: RuleConfig = RuleConfig(cooldown_s=DAY_S)
    structuring: StructuringConfig = StructuringConfig(severity=Severity.HIGH)
    unverified_activity: RuleConfig = RuleConfig(severity=Severity.HIGH)
    high_risk_jurisdiction: JurisdictionConfig = JurisdictionConfig()
    sanctioned_counterparty: RuleConfig = RuleConfig(severity=Severity.CRITICAL, cooldown_s=0)
    rapid_in_out: RapidInOutConfig = RapidInOutConfig(severity=Severity.HIGH)
    dormant_reactivated: DormantConfig = DormantConfig()
    new_account_high_volume: NewAccountConfig = NewAccountConfig(cooldown_s=30 * DAY_S)
    declared_volume_exceeded: DeclaredProfileConfig = DeclaredProfileConfig(
        cooldown_s=30 * DAY_S)
    fan_in: FanConfig = FanConfig(severity=Severity.HIGH)
    fan_out: FanConfig = FanConfig(severity=Severity.HIGH)
    repeated_new_address: RepeatedNewAddressConfig = RepeatedNewAddressConfig()
    volume_spike: SpikeConfig = SpikeConfig()
    mixer_exposure: RuleConfig = RuleConfig(severity=Severity.HIGH, cooldown_s=0)
    unhosted_after_deposit: UnhostedAfterDepositConfig = UnhostedAfterDepositConfig()
    # Per customer, over days (``streams.rules.network``): distinct senders and receivers.
    fan_in_7d: FanConfig = FanConfig(severity=Severity.HIGH, cooldown_s=7 * DAY_S,
                                     window=Window.D7, min_counterparties=15)
    fan_out_7d: FanConfig = FanConfig(severity=Severity.HIGH, cooldown_s=7 * DAY_S,
                                      window=Window.D7, min_counterparties=15)
    fan_in_30d: FanConfig = FanConfig(severity=Severity.HIGH, cooldown_s=30 * DAY_S,
                                      window=Window.D30, min_counterparties=25)
    fan_out_30d: FanConfig = FanConfig(severity=Severity.HIGH, cooldown_s=30 * DAY_S,
                                       window=Window.D30, min_counterparties=25)
