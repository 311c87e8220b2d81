"""Turn a rule's finding into an alert: deterministic id, cooldown, evidence, snapshot."""

import hashlib
from datetime import UTC, datetime

from schemas.alerts import Alert, CustomerSnapshot, Evidence, TriggeringEvent
from streams.intake import Transfer
from streams.money import to_usd
from streams.rules.context import Finding
from streams.state import CustomerState

EVIDENCE_EVENTS_MAX = 10


def suppression_key(transfer: Transfer, cooldown_s: int) -> str:
    """One alert per rule and aligned cooldown period, or per event when cooldown is 0."""
    if cooldown_s == 0:
        return f"event:{transfer.event_id}"
    return f"period:{cooldown_s}:{transfer.at_s // cooldown_s}"


def record_alerted(state: CustomerState, rule_id: str, transfer: Transfer, cooldown_s: int) -> None:
    """Remember the period alerted in; the engine skips the rule until the next period."""
    if cooldown_s:
        state.alerted[rule_id] = transfer.at_s // cooldown_s


def alert_id(customer_id: str, rule_id: str, key: str) -> str:
    """Same customer, rule and suppression key: same id, so a re-sent alert is recognisable."""
    digest = hashlib.sha256(f"{customer_id}\x1f{rule_id}\x1f{key}".encode()).hexdigest()
    return digest[:32]


def snapshot(state: CustomerState) -> CustomerSnapshot:
    profile = state.profile
    expected = profile.expected_monthly_usd_cents
    return CustomerSnapshot(
        kyc_status=profile.kyc_status,
        kyc_tier=profile.kyc_tier,
        country_of_residence=profile.country_of_residence,
        nationality=profile.nationality,
        pep=profile.pep,
        sanctions_hit=profile.sanctions_hit,
        expected_monthly_volume_usd=None if expected is None else to_usd(expected),
        risk_level=state.risk_level,
    )


def _evidence_events(transfer: Transfer, state: CustomerState,
                     since_s: int | None) -> list[TriggeringEvent]:
    events = [TriggeringEvent(
        event_id=transfer.event_id,
        occurred_at=transfer.occurred_at,
        direction="out" if transfer.out else "in",
        amount_usd=to_usd(transfer.usd_cents),
    )]
    if since_s is None:
        return events
    for at_s, out, usd_cents, event_id in reversed(state.recent):
        if len(events) >= EVIDENCE_EVENTS_MAX:
            break
        if at_s > since_s and event_id != transfer.event_id:
            events.append(TriggeringEvent(
                event_id=event_id,
                occurred_at=datetime.fromtimestamp(at_s, tz=UTC),
                direction="out" if out else "in",
                amount_usd=to_usd(usd_cents),
            ))
    return events


def build_alert(finding: Finding, transfer: Transfer, state: CustomerState, rule_set_version: str,
                key: str) -> Alert:
    return Alert(
        alert_id=alert_id(transfer.customer_id, finding.rule_id, key),
        customer_id=transfer.customer_id,
        rule_id=finding.rule_id,
        rule_set_version=rule_set_version,
        severity=finding.severity,
        triggered_at=transfer.occurred_at,
        summary=finding.summary,
        observed_value=finding.observed_value,
        threshold=finding.threshold,
        measure=finding.measure,
        window=None if finding.window is None else finding.window.value,
        evidence=Evidence(
            triggering_events=_evidence_events(transfer, state, finding.evidence_since_s),
            aggregates=finding.aggregates,
            matches=finding.matches,
        ),
        customer=snapshot(state),
    )
