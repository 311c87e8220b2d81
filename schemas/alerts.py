"""Outbound alert: one breach of one rule by one customer, with the evidence to decide on it."""

from decimal import Decimal
from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class _Outbound(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CustomerSnapshot(_Outbound):
    """Who the customer was when the alert fired."""

    kyc_status: str
    kyc_tier: int
    country_of_residence: str | None
    nationality: str | None
    pep: bool
    sanctions_hit: bool
    expected_monthly_volume_usd: Decimal | None
    risk_level: str = "unrated"


class TriggeringEvent(_Outbound):
    event_id: str
    occurred_at: AwareDatetime
    direction: str
    amount_usd: Decimal


class NetworkTransfer(_Outbound):
    """A transfer of another customer (or of a hop on a path) that a network rule relied on."""

    customer_id: str
    event_id: str
    occurred_at: AwareDatetime
    direction: str
    amount_usd: Decimal
    share_pct: Decimal | None = Field(
        None, description="On a path: the share of the origin's value this hop passed on.")


class NetworkEvidence(_Outbound):
    """What a network rule saw: the counterparty and the other customers, or the path."""

    counterparty: str | None = Field(
        None, description="The address (a:...) or customer (c:...) the customers share.")
    counterparty_type: str | None = None
    origin: str | None = Field(None, description="Where the followed value came from.")
    path: list[NetworkTransfer] = Field(
        default_factory=list, description="Each hop of the value, in order, ending here.")
    others: list[NetworkTransfer] = Field(
        default_factory=list, description="The other customers' transfers (at most 10).")
    others_total: int = Field(0, description="Other customers involved, including those not "
                                             "listed (the stage keeps at most 64 per side).")


class Evidence(_Outbound):
    triggering_events: list[TriggeringEvent] = Field(
        description="The event that tripped the rule first, then recent ones in its window."
    )
    aggregates: dict[str, Decimal] = Field(
        default_factory=dict, description="Window values that broke the threshold (USD, counts)."
    )
    matches: dict[str, str] = Field(
        default_factory=dict, description="List matches: which list, entry, entity."
    )
    network: NetworkEvidence | None = Field(
        None, description="Network rules only: the counterparty and other customers, or the "
                          "path of the value.")


class Alert(_Outbound):
    schema_version: Literal[1] = 1
    alert_id: str = Field(
        description="Deterministic: the same breach always gets the same id, even when re-sent."
    )
    customer_id: str
    rule_id: str
    rule_set_version: str
    severity: Severity
    triggered_at: AwareDatetime = Field(description="Event time of the triggering event.")
    summary: str = Field(description="One readable line for an investigator.")
    observed_value: Decimal
    threshold: Decimal
    measure: str = Field(description="What the two numbers are, with unit, e.g. usd_total_24h.")
    window: str | None = Field(None, description="Window of the measure, e.g. 24h; null if none.")
    evidence: Evidence
    customer: CustomerSnapshot
