"""Settings of the network rules and of the network stages' bounds (``network:`` in the rule
file). What the *order* of the internal records depends on (lateness, hop delay) is not here:
those are worker settings, fixed for a deployment (``AMLSTREAM_NETWORK_*``)."""

from decimal import Decimal

from pydantic import Field

from schemas.alerts import Severity
from schemas.config_types import DurationS, StrictConfig
from schemas.money import NonNegativeAmount
from schemas.rule_configs import DAY_S, RuleConfig

CUSTOMERS_PER_COUNTERPARTY_MAX = 256
PPM = 1_000_000


class NetworkBounds(StrictConfig):
    """What the network stages keep, per counterparty and per customer: the bounds of their
    state and of the traffic per event (``docs/network-design.md`` §5)."""

    enabled: bool = Field(True, description="S1 sends legs to the network stages.")
    horizon_s: DurationS = Field(30 * DAY_S, gt=0, le=180 * DAY_S,
                                 description="Provenance is followed this long after it began.")
    max_hops: int = Field(6, ge=2, le=10, description="Customers kept on a path.")
    min_share_ppm: int = Field(100_000, ge=1, le=PPM,
                               description="Smallest share of an origin's value followed.")
    entries_per_customer: int = Field(8, ge=1, le=32,
                                      description="Provenance entries kept per customer.")
    recent_forwards_kept: int = Field(16, ge=0, le=64,
                                      description="Recent forwards kept for catch-ups.")
    customers_per_counterparty: int = Field(
        64, ge=2, le=CUSTOMERS_PER_COUNTERPARTY_MAX,
        description="Customers kept per counterparty and direction (least recent forgotten).")
    service_types: list[str] = Field(
        default_factory=lambda: ["exchange", "merchant", "bank"],
        description="Counterparty types never taken for collection or distribution points.")
    chain_risk_high_from: int = Field(75, ge=0, le=100,
                                      description="A provider's risk score from which an "
                                                  "address counts as high risk.")


class CounterpartyFanConfig(RuleConfig):
    """Many distinct customers paying (collection) or paid by (distribution) one counterparty."""

    min_customers_7d: int = Field(5, ge=2, le=CUSTOMERS_PER_COUNTERPARTY_MAX)
    min_customers_30d: int = Field(10, ge=2, le=CUSTOMERS_PER_COUNTERPARTY_MAX)
    min_total_usd: NonNegativeAmount = Field(Decimal(1000),
                                             description="USD in that direction over the window.")
    include_customers: bool = Field(
        False, description="Also when the counterparty is another customer of ours. Off by "
        "default: such a customer is seen whole by S1, whose fan_in / fan_out rules alert it "
        "(alerting each of its payers or payees instead would flood on any popular customer).")


class SharedWalletConfig(RuleConfig):
    window_s: DurationS = Field(30 * DAY_S, gt=0, le=90 * DAY_S)
    min_customers: int = Field(2, ge=2, le=CUSTOMERS_PER_COUNTERPARTY_MAX)


class FlowCycleConfig(RuleConfig):
    min_customers: int = Field(3, ge=2, le=10, description="Distinct customers on the loop.")
    min_usd: NonNegativeAmount = Field(Decimal(1000), description="USD come back at least.")


class LayeringConfig(RuleConfig):
    min_customers: int = Field(4, ge=3, le=10, description="Customers on the path at least.")
    min_forward_ppm: int = Field(800_000, ge=1, le=PPM,
                                 description="Each intermediate forwarded this share at least.")
    min_usd: NonNegativeAmount = Field(Decimal(1000))


class IndirectExposureConfig(RuleConfig):
    max_hops: int = Field(3, ge=1, le=10, description="Customers between the listed origin "
                                                      "and this one, at most (1 = one between).")
    min_usd: NonNegativeAmount = Field(Decimal(500))


class ConsolidationConfig(RuleConfig):
    """Many small deposits, then most of it out in a few large withdrawals (7d)."""

    min_deposits: int = Field(10, ge=2)
    max_single_deposit_pct: Decimal = Field(Decimal(25), gt=0, le=100,
                                            description="The largest deposit at most this % "
                                                        "of the deposits' total.")
    min_deposits_usd: NonNegativeAmount = Field(Decimal(3000))
    max_withdrawals: int = Field(3, ge=1)
    withdrawn_pct: Decimal = Field(Decimal(70), gt=0, le=100)
    withdrawal_to_deposit_ratio: Decimal = Field(Decimal(5), gt=0,
                                                 description="Mean withdrawal at least this x "
                                                             "the mean deposit.")


class RetroScreeningConfig(RuleConfig):
    lookback_s: DurationS = Field(90 * DAY_S, gt=0, le=180 * DAY_S,
                                  description="Customers who used a newly listed address this "
                                              "long before its listing get an alert.")


class NetworkRuleConfigs(StrictConfig):
    """The network rules' settings; ``schemas.rules.Rules`` holds them with the others."""

    deposits_consolidated: ConsolidationConfig = ConsolidationConfig(
        severity=Severity.HIGH, cooldown_s=7 * DAY_S)
    high_risk_counterparty: RuleConfig = RuleConfig(severity=Severity.HIGH, cooldown_s=0)
    collection_point: CounterpartyFanConfig = CounterpartyFanConfig(
        severity=Severity.HIGH, cooldown_s=7 * DAY_S)
    distribution_point: CounterpartyFanConfig = CounterpartyFanConfig(
        severity=Severity.HIGH, cooldown_s=7 * DAY_S)
    shared_wallet_unrelated: SharedWalletConfig = SharedWalletConfig(cooldown_s=30 * DAY_S)
    flow_cycle: FlowCycleConfig = FlowCycleConfig(severity=Severity.HIGH, cooldown_s=30 * DAY_S)
    layering_chain: LayeringConfig = LayeringConfig(severity=Severity.HIGH,
                                                    cooldown_s=30 * DAY_S)
    indirect_exposure: IndirectExposureConfig = IndirectExposureConfig(
        severity=Severity.HIGH, cooldown_s=30 * DAY_S)
    retro_listed_counterparty: RetroScreeningConfig = RetroScreeningConfig(
        severity=Severity.HIGH, cooldown_s=0)
