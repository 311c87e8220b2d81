"""The one entry point of the core: ``apply(state, event, rules) -> (state, alerts)``.

The live worker, the replay and the backtest all call it, so the same events give the same
alerts everywhere. ``apply`` updates ``state`` in place (and returns it) for speed.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from schemas.alerts import Alert
from schemas.decisions import AlertDecision
from schemas.events import OnboardingEvent, OnboardingType
from schemas.risk import RiskChange
from schemas.rules import NEAR_THRESHOLD_KEPT
from streams.alerting import build_alert, record_alerted, suppression_key
from streams.decisions import apply_decision, log_alert, whitelisted
from streams.intake import Transfer
from streams.money import to_cents
from streams.network.emit import note_network_activity
from streams.risk import add_alert_points, assessed, raised_severity, rate, risk_change
from streams.rules import TRANSFER_RULES, Check, Finding, TransferRule
from streams.rules.structuring import is_near_threshold
from streams.ruleset import CompiledRules
from streams.state import (
    RECENT_TRANSFERS_KEPT,
    RISK_HISTORY_KEPT,
    CustomerState,
    append_capped,
    remember_counterparty,
)

_STATUS_AFTER: dict[OnboardingType, str] = {
    OnboardingType.REGISTERED: "registered",
    OnboardingType.KYC_SUBMITTED: "submitted",
    OnboardingType.KYC_VERIFIED: "verified",
    OnboardingType.KYC_REJECTED: "rejected",
    OnboardingType.CLOSED: "closed",
}

Event = Transfer | OnboardingEvent | AlertDecision
Position = tuple[str, int]
"""Where an input came from: (source, e.g. ``transactions/3``, and its offset)."""


@dataclass(slots=True)
class Decisions:
    """What an event leads to; the caller publishes them."""

    alerts: list[Alert] = field(default_factory=list)
    risk_changes: list[RiskChange] = field(default_factory=list)
    late: bool = False
    """A transfer beyond the allowed lateness: kept out of the windows."""
    replayed: bool = False
    """Already applied from its position (a re-delivery): nothing changed."""


def apply(
    state: CustomerState | None,
    event: Event,
    rules: CompiledRules,
    position: Position | None = None,
) -> tuple[CustomerState, Decisions]:
    """Apply one event to a customer's state; return the state and the decisions it leads to.

    An event at or below the last offset applied from its source changes nothing: replays
    after a crash are idempotent.
    """
    if state is None:
        state = CustomerState()
    decisions = Decisions()
    if position is not None:
        source, offset = position
        if state.already_applied(source, offset):
            decisions.replayed = True
            return state, decisions
        state.applied[source] = offset
    if isinstance(event, Transfer):
        decisions.late = is_late(state, event, rules)
        decisions.alerts = _apply_transfer(state, event, rules, not decisions.late)
        if not decisions.late:
            note_network_activity(state, event, rules)
        at_s = event.at_s
    elif isinstance(event, AlertDecision):
        at_s = int(event.occurred_at.timestamp())
        apply_decision(state, event, at_s, rules.config)
    else:
        _apply_onboarding(state, event)
        at_s = int(event.occurred_at.timestamp())
    _rerate(state, event, at_s, rules, decisions)
    return state, decisions


def _rerate(state: CustomerState, event: Event, at_s: int, rules: CompiledRules,
            decisions: Decisions) -> None:
    risk = rules.config.risk
    if (isinstance(event, Transfer) and not decisions.alerts and not state.alert_points
            and state.risk_level == state.risk_published != "unrated"):
        return  # nothing the rating depends on has changed since the last event
    for alert in decisions.alerts:
        add_alert_points(state, alert.severity, at_s, risk)
    rating = rate(state, at_s, rules.jurisdictions, risk)
    state.risk_level = rating.level
    if rating.level != state.risk_published and assessed(state, rating, at_s, risk):
        decisions.risk_changes.append(risk_change(
            event.customer_id, state.risk_published, rating, event.occurred_at,
            event.event_id, rules.version))
        append_capped(state.risk_history, [at_s, state.risk_published, rating.level.value,
                                           str(rating.score), event.event_id],
                      RISK_HISTORY_KEPT)
        state.risk_published = rating.level


def kyc_status_after(status: str, event: OnboardingEvent) -> str:
    """The KYC status (``unknown`` before any event) after an onboarding event."""
    after = _STATUS_AFTER.get(event.type)
    # A repeated "registered" (a re-sent sign-up) must not undo a verification.
    if after is None or (event.type is OnboardingType.REGISTERED and status != "unknown"):
        return status
    return after


def _apply_onboarding(state: CustomerState, event: OnboardingEvent) -> None:
    profile = state.profile
    profile.kyc_status = kyc_status_after(profile.kyc_status, event)
    if event.type is OnboardingType.REGISTERED and profile.registered_at_s is None:
        profile.registered_at_s = int(event.occurred_at.timestamp())
    if event.kyc_tier is not None:
        profile.kyc_tier = event.kyc_tier
    if event.country_of_residence is not None:
        profile.country_of_residence = event.country_of_residence
    if event.nationality is not None:
        profile.nationality = event.nationality
    if event.pep is not None:
        profile.pep = event.pep
    if event.sanctions_hit is not None:
        profile.sanctions_hit = event.sanctions_hit
    if event.expected_monthly_volume_usd is not None:
        profile.expected_monthly_usd_cents = to_cents(event.expected_monthly_volume_usd)


def _record_transfer(check: Check, rules: CompiledRules) -> None:
    state, transfer, thresholds = check.state, check.transfer, check.thresholds
    at_s = transfer.at_s
    state.windows.add(at_s, transfer.out, transfer.usd_cents)
    if check.counterparty_key is not None:
        seen = state.counterparties_out if transfer.out else state.counterparties_in
        remember_counterparty(seen, check.counterparty_key, at_s)
    if is_near_threshold(
        transfer.usd_cents, thresholds.near_threshold_floor, thresholds.reporting_threshold
    ):
        append_capped(state.near_threshold, [at_s, transfer.event_id, transfer.usd_cents],
                      NEAR_THRESHOLD_KEPT)
    append_capped(state.recent, [at_s, int(transfer.out), transfer.usd_cents, transfer.event_id],
                  RECENT_TRANSFERS_KEPT)
    if at_s > state.watermark_s:
        state.watermark_s = at_s
        # Keep what a late event, up to the allowed lateness, still needs for its windows.
        state.windows.expire(at_s - rules.config.allowed_lateness_s)


class PlannedRule(NamedTuple):
    """An enabled rule with what the per-event loop reads of it, looked up once."""

    check: Callable[[Check, Any], Finding | None]
    config: Any
    rule_id: str
    uses_windows: bool
    cooldown_s: int


Plan = list[PlannedRule]
_PLANS: dict[int, tuple[CompiledRules, dict[bool, Plan]]] = {}


def _enabled_rules(rules: CompiledRules, out: bool) -> Plan:
    """The enabled rules (with their configs) that look at deposits, or at withdrawals:
    worked out once per rule set, not per event."""
    plan = _PLANS.get(id(rules))
    if plan is None or plan[0] is not rules:
        configs = rules.config.rules
        pairs = [(rule, getattr(configs, rule.rule_id)) for rule in TRANSFER_RULES]
        enabled = [(rule, config) for rule, config in pairs if config.enabled]
        plan = (rules, {
            direction_out: [_planned(rule, config) for rule, config in enabled
                            if rule.on in ("both", "out" if direction_out else "in")]
            for direction_out in (False, True)})
        _PLANS.clear()  # rule sets change rarely; keep the one in use
        _PLANS[id(rules)] = plan
    return plan[1][out]


def _planned(rule: TransferRule, config: Any) -> PlannedRule:
    return PlannedRule(rule.check, config, rule.rule_id, rule.uses_windows, config.cooldown_s)


def is_late(state: CustomerState, transfer: Transfer, rules: CompiledRules) -> bool:
    """Later than the allowed lateness behind the newest event seen for this customer."""
    return transfer.at_s < state.watermark_s - rules.config.allowed_lateness_s


def _apply_transfer(state: CustomerState, transfer: Transfer, rules: CompiledRules,
                    counts_in_windows: bool) -> list[Alert]:
    """Late events (``is_late``) do not enter the windows (their buckets may be gone, and
    counting them would rewrite history already alerted on); they are still checked by the
    rules that need no window."""
    # Built before recording (it keeps the previous transfer's time); its window totals are
    # computed lazily, so they include this transfer.
    check = Check(transfer, state, rules, previous_transfer_s=state.watermark_s)
    if counts_in_windows:
        _record_transfer(check, rules)
    alerts: list[Alert] = []
    alerted = state.alerted
    whitelist = state.whitelist
    at_s = transfer.at_s
    for rule_check, config, rule_id, uses_windows, cooldown_s in _enabled_rules(
            rules, transfer.out):
        if uses_windows and not counts_in_windows:
            continue
        if cooldown_s and alerted and alerted.get(rule_id, -1) >= at_s // cooldown_s:
            continue  # already alerted in this aligned cooldown period (see record_alerted)
        if whitelist and whitelisted(whitelist, rule_id, check.counterparty_key, at_s):
            continue  # decided a false positive for this counterparty (streams.decisions)
        finding = rule_check(check, config)
        if finding is None:
            continue
        finding.severity = raised_severity(finding.severity, state.risk_level,
                                           rules.config.risk)
        key = suppression_key(transfer, cooldown_s)
        alert = build_alert(finding, transfer, state, rules.version, key)
        alerts.append(alert)
        record_alerted(state, rule_id, transfer, cooldown_s)
        log_alert(state, alert, at_s, check.counterparty_key)
    return alerts
