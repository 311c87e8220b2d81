"""Analysts' decisions on alerts, applied to the customer's state in event-time order.

- Every decision is remembered (the latest ``DECISIONS_KEPT``) for the investigators' view.
- A ``false_positive`` on an alert of the customer's own rules takes that alert's points out
  of the risk score (what is left of them after their decay), once per alert, and whitelists
  the counterparty for that customer and rule for ``whitelist_days``: the rule does not alert
  on transfers with it until then. The counterparty is the decision's own, or else the one of
  the alert's triggering transfer as remembered in ``alert_log`` (the latest ``ALERTS_KEPT``
  alerts). An alert of a network rule, or one older than that, has its decision remembered
  and nothing else.
"""

from typing import Any

from schemas.alerts import Alert
from schemas.decisions import AlertDecision, DecisionKind
from schemas.rules import RuleSet
from streams.risk import remove_alert_points
from streams.state import (
    ALERT_JSON_MAX_BYTES,
    ALERTS_KEPT,
    DECISION_REASON_KEPT,
    DECISIONS_KEPT,
    WHITELIST_KEPT,
    CustomerState,
    append_capped,
    counterparty_key,
    customer_key,
)

DAY_S = 86400


def log_alert(state: CustomerState, alert: Alert, at_s: int, cp_key: int | None) -> None:
    """Remember an alert of the customer's own rules, for decisions on it."""
    remembered = alert.model_dump_json(exclude={"customer"})
    if len(remembered) > ALERT_JSON_MAX_BYTES:  # evidence lists are bounded: not expected
        remembered = alert.model_dump_json(exclude={"customer", "evidence"})
    append_capped(state.alert_log, [at_s, alert.alert_id, alert.rule_id, alert.severity.value,
                                    cp_key, remembered], ALERTS_KEPT)


def whitelist_key(rule_id: str, cp_key: int) -> str:
    return f"{rule_id}:{cp_key}"


def whitelisted(whitelist: dict[str, int], rule_id: str, cp_key: int | None,
                at_s: int) -> bool:
    if cp_key is None:
        return False
    until_s = whitelist.get(whitelist_key(rule_id, cp_key))
    return until_s is not None and at_s < until_s


def _counterparty_of(decision: AlertDecision, logged: list[Any] | None) -> int | None:
    named = decision.counterparty
    if named is None:
        return None if logged is None else logged[4]
    if named.startswith("c:"):
        return customer_key(named[2:])
    return counterparty_key(named)


def _whitelist(state: CustomerState, key: str, until_s: int, at_s: int) -> None:
    whitelist = state.whitelist
    whitelist[key] = max(until_s, whitelist.get(key, 0))
    if len(whitelist) > WHITELIST_KEPT:
        for ended in [k for k, until in whitelist.items() if until <= at_s]:
            del whitelist[ended]
    while len(whitelist) > WHITELIST_KEPT:
        del whitelist[min(whitelist, key=lambda k: (whitelist[k], k))]


def apply_decision(state: CustomerState, decision: AlertDecision, at_s: int,
                   config: RuleSet) -> None:
    """Remember ``decision``; for a false positive, take the points out and whitelist."""
    alert_id = decision.alert_id
    decided_before = any(d[1] == alert_id and d[3] == DecisionKind.FALSE_POSITIVE
                         for d in state.decisions)
    append_capped(state.decisions, [at_s, alert_id, decision.rule_id, decision.decision.value,
                                    decision.decided_by, decision.reason[:DECISION_REASON_KEPT],
                                    decision.event_id], DECISIONS_KEPT)
    if decision.decision is not DecisionKind.FALSE_POSITIVE:
        return
    logged = next((a for a in reversed(state.alert_log) if a[1] == alert_id), None)
    if logged is not None and not decided_before:
        remove_alert_points(state, logged[3], logged[0], at_s, config.risk)
    days = (decision.whitelist_days if decision.whitelist_days is not None
            else config.decisions.whitelist_days)
    cp_key = _counterparty_of(decision, logged)
    if days and cp_key is not None:
        _whitelist(state, whitelist_key(decision.rule_id, cp_key), at_s + days * DAY_S, at_s)
