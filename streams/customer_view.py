"""What the engine knows about one customer now, for investigators (``agents.web_view``).

A plain JSON-ready dict built from the customer's state and the rule set in force: profile and
KYC, risk level with its reasons and published history, window totals, counterparty counts,
recent transfers, the latest alerts of its own rules with their evidence, decisions and
whitelisted counterparties. "Now" is the customer's newest event time (``as_of``): the state
knows no other clock. Amounts are decimal strings in USD.
"""

from datetime import UTC, datetime
from typing import Any

import orjson

from schemas.rules import Window
from streams.money import to_usd
from streams.risk import rate
from streams.ruleset import CompiledRules
from streams.state import CustomerState, distinct_since
from streams.windows import WINDOW_S


def _time(at_s: int | None) -> str | None:
    return None if not at_s else datetime.fromtimestamp(at_s, tz=UTC).isoformat()


def _usd(cents: int) -> str:
    return str(to_usd(cents))


def _windows(state: CustomerState) -> dict[str, Any]:
    now_s = state.watermark_s
    out = {}
    for window in Window:
        totals = state.windows.totals(window, now_s)
        out[window.value] = {
            "deposits": totals.count_in, "deposits_usd": _usd(totals.usd_in_cents),
            "withdrawals": totals.count_out, "withdrawals_usd": _usd(totals.usd_out_cents)}
    return out


def _counterparties(state: CustomerState) -> dict[str, Any]:
    now_s = state.watermark_s
    return {f"distinct_{side}_{days}d": distinct_since(seen, now_s - days * 86400)
            for side, seen in (("senders", state.counterparties_in),
                               ("receivers", state.counterparties_out))
            for days in (7, 30)}


def alert_of(state: CustomerState, alert_id: str) -> dict[str, Any] | None:
    """A remembered alert of the customer, as sent, with the decisions on it."""
    for logged in reversed(state.alert_log):
        if logged[1] == alert_id:
            return _alert(logged, state)
    return None


def _alert(logged: list[Any], state: CustomerState) -> dict[str, Any]:
    alert: dict[str, Any] = orjson.loads(logged[5])
    alert["decisions"] = [_decision(d) for d in state.decisions if d[1] == logged[1]]
    return alert


def _decision(record: list[Any]) -> dict[str, Any]:
    at_s, alert_id, rule_id, decision, decided_by, reason, event_id = record
    return {"decided_at": _time(at_s), "alert_id": alert_id, "rule_id": rule_id,
            "decision": decision, "decided_by": decided_by, "reason": reason,
            "decision_id": event_id}


def customer_view(customer_id: str, state: CustomerState, rules: CompiledRules) -> dict[str, Any]:
    profile = state.profile
    now_s = state.watermark_s or max((r[0] for r in state.risk_history), default=0)
    rating = rate(state, now_s, rules.jurisdictions, rules.config.risk)
    expected = profile.expected_monthly_usd_cents
    return {
        "customer_id": customer_id,
        "as_of": _time(now_s),
        "profile": {
            "kyc_status": profile.kyc_status, "kyc_tier": profile.kyc_tier,
            "country_of_residence": profile.country_of_residence,
            "nationality": profile.nationality, "pep": profile.pep,
            "sanctions_hit": profile.sanctions_hit,
            "expected_monthly_volume_usd": None if expected is None else _usd(expected),
            "registered_at": _time(profile.registered_at_s),
        },
        "risk": {
            "level": state.risk_level, "published_level": state.risk_published,
            "score": str(rating.score), "reasons": rating.reasons,
            "history": [{"at": _time(at_s), "previous_level": previous, "level": level,
                         "score": score, "triggering_event_id": event_id}
                        for at_s, previous, level, score, event_id in state.risk_history],
        },
        "windows": _windows(state),
        "window_seconds": {window.value: WINDOW_S[window] for window in Window},
        "counterparties": _counterparties(state),
        "recent_transfers": [
            {"occurred_at": _time(at_s), "direction": "out" if out else "in",
             "amount_usd": _usd(cents), "event_id": event_id}
            for at_s, out, cents, event_id in reversed(state.recent)],
        "alerts": [_alert(logged, state) for logged in reversed(state.alert_log)],
        "decisions": [_decision(d) for d in reversed(state.decisions)],
        "whitelisted": [{"rule_id": key.split(":", 1)[0], "until": _time(until_s)}
                        for key, until_s in sorted(state.whitelist.items())
                        if until_s > now_s],
    }
