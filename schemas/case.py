"""The case file of one customer: what an investigator attaches to a suspicious-activity report.

Built by ``streams.case.build_case`` from the customer's records on the topics (written as JSON
and HTML by ``amlstream case``). The records are kept as they were on the wire (onboarding
and transaction events, risk changes, alerts, decisions); what the case adds is how they
relate: the decisions on each alert, the transactions in each alert's window, the rule-set
versions the alerts name, and where it was all read.
"""

from decimal import Decimal
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from schemas.alerts import Alert, Severity
from schemas.decisions import AlertDecision, DecisionKind
from schemas.events import OnboardingEvent, TransactionEvent
from schemas.risk import RiskChange
from schemas.rules import PublishedRuleSet


class _Document(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TopicRead(_Document):
    """One topic partition read for the case: from its first offset to its end offset at the
    time of reading."""

    topic: str
    partition: int | None = Field(description="None: the topic does not exist (nothing read).")
    partitions: int = Field(0, description="The topic's partition count (the customer's "
                                           "partition is the key's murmur2 hash modulo it).")
    start_offset: int = 0
    end_offset: int = 0
    records: int = Field(0, description="Records read (every customer of the partition).")
    customer_records: int = Field(0, description="Of them, this customer's (key and body); "
                                                 "of the rules history, the versions.")
    unreadable: int = Field(0, description="Records keyed by this customer that are not a "
                                           "valid record of the topic (left out of the case).")


class CaseProfile(_Document):
    """Who the customer is, from the onboarding events in the order they were published:
    the newest value of each field; None where no event gave one."""

    kyc_status: str = Field(description="unknown, registered, submitted, verified, rejected "
                                        "or closed (as the worker derives it).")
    kyc_tier: int | None = None
    country_of_residence: str | None = None
    nationality: str | None = None
    pep: bool | None = None
    sanctions_hit: bool | None = None
    expected_monthly_volume_usd: Decimal | None = None
    registered_at: AwareDatetime | None = None
    updated_at: AwareDatetime | None = Field(None, description="The newest onboarding event.")


class CaseAlert(_Document):
    alert: Alert
    decisions: list[AlertDecision] = Field(description="Decisions on this alert, by time.")
    window_from: AwareDatetime | None = Field(
        description="Transactions from this time to triggered_at were selected; None when the "
        "alert has no window (its triggering events were selected by id).")
    transaction_ids: list[str] = Field(description="The selected transactions' event ids.")
    missing_event_ids: list[str] = Field(
        description="Triggering events not found among the customer's transactions.")


class CaseTransaction(_Document):
    event: TransactionEvent
    alert_ids: list[str] = Field(description="The alerts whose window it is in.")


class CaseRuleSet(_Document):
    version: str
    published: PublishedRuleSet | None = Field(
        description="As published, from the rules history; None: not in the history.")
    alerts: int = Field(description="The customer's alerts produced under it.")
    risk_changes: int = Field(description="The customer's risk changes made under it.")


class CaseSummary(_Document):
    alerts: int
    alerts_by_rule: dict[str, dict[Severity, int]]
    decisions: int
    decisions_by_kind: dict[DecisionKind, int]
    undecided_alerts: int
    transactions: int = Field(description="Transactions in the alerted windows.")
    risk_level: str = Field(description="The newest risk change's level; unrated if none.")
    risk_score: Decimal | None = None


class CaseFile(_Document):
    schema_version: Literal[1] = 1
    customer_id: str
    generated_at: AwareDatetime
    amlstream_version: str
    summary: CaseSummary
    profile: CaseProfile
    onboarding: list[OnboardingEvent] = Field(description="The onboarding steps, as published.")
    risk_history: list[RiskChange] = Field(description="Risk changes, as published.")
    alerts: list[CaseAlert] = Field(description="By time triggered.")
    unmatched_decisions: list[AlertDecision] = Field(
        description="Decisions naming an alert that is not among the customer's alerts.")
    transactions: list[CaseTransaction] = Field(
        description="The transactions in the alerted windows, each once, by time.")
    rule_sets: list[CaseRuleSet] = Field(description="Every version the records name.")
    sources: list[TopicRead] = Field(description="What was read, topic by topic.")
