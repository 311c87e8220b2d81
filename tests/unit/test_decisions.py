"""Analysts' decisions on alerts (``streams.decisions``): remembered, a false positive
whitelists its counterparty for that customer and rule and takes its points out of the risk
score; other decisions change nothing else. And the state keeps all of it across a restart."""

from datetime import timedelta

import orjson
import pytest

from schemas.dead_letters import ErrorKind
from streams.intake import Rejected, decode_decision
from streams.state import DECISIONS_KEPT, CustomerState

H = timedelta(hours=1)
D = timedelta(days=1)
A = "0x" + "a1" * 20
B = "0x" + "b2" * 20
LARGE = "12000.00"
"""Above tier 1's large-transfer limit (10,000 USD): a large_transfer alert per transfer."""


def _alert(c, offset, address=A):
    """Send a large transfer to ``address``; its large_transfer alert, if any."""
    alerts = [a for a in c.transfer(offset, LARGE, "out", address=address)
              if a.rule_id == "large_transfer"]
    return alerts[0] if alerts else None


def _large(c, offset, address=A):
    return [] if _alert(c, offset, address) is None else ["large_transfer"]


def test_a_false_positive_whitelists_that_counterparty_for_that_rule(customer):
    c = customer(tier=1)
    alert = _alert(c, 0 * H)

    c.decide(1 * H, alert)

    assert _large(c, 2 * H) == []  # the same counterparty: whitelisted
    assert _large(c, 3 * H, B) == ["large_transfer"]  # another one still alerts
    assert _large(c, 89 * D) == []
    assert _large(c, 90 * D + 2 * H) == ["large_transfer"]  # 90 days (the default) are over


def test_the_decision_can_name_the_counterparty_and_the_time(customer):
    c = customer(tier=1)
    alert = _alert(c, 0 * H)

    c.decide(1 * H, alert, counterparty=B.upper().replace("0X", "0x"), whitelist_days=2)

    assert _large(c, 2 * H) == ["large_transfer"]  # A was not named
    assert _large(c, 3 * H, B) == []  # B is, in any letter case
    assert _large(c, 2 * D + 2 * H, B) == ["large_transfer"]  # two days are over


def test_no_whitelist_with_zero_days_nor_for_other_decisions(customer):
    c = customer(tier=1)
    first = _alert(c, 0 * H)
    c.decide(1 * H, first, whitelist_days=0)
    second = _alert(c, 2 * H, B)
    c.decide(3 * H, second, "escalated")

    assert _large(c, 4 * H) == ["large_transfer"]
    assert _large(c, 5 * H, B) == ["large_transfer"]
    assert c.state.whitelist == {}
    assert [d[3] for d in c.state.decisions] == ["false_positive", "escalated"]


def test_a_false_positive_takes_its_points_out_once_and_the_level_follows(customer,
                                                                          customised):
    c = customer(tier=1, rules=customised({"risk": {"medium_from": 20}}))
    alert = _alert(c, 0 * H)
    assert c.state.risk_level == "medium"  # KYC tier 1 (10) + a high alert (15)
    before = c.state.alert_points

    c.decide(5 * H, alert)
    once = c.state.alert_points
    c.decide(6 * H, alert)  # the same decision sent again takes nothing more

    assert before == 15 and once == 0 and c.state.alert_points == 0
    assert [(ch.previous_level, ch.level) for ch in c.risk_changes][-1] == ("medium", "low")
    assert c.risk_changes[-1].triggering_event_id == c.state.decisions[0][6]


def test_points_of_an_alert_that_has_decayed_are_taken_out_decayed(customer):
    c = customer(tier=1)
    first = _alert(c, 0 * H)
    _alert(c, 30 * D, B)  # 30 days later: the first one's points have halved

    c.decide(30 * D + H, first)

    assert 14.9 < c.state.alert_points < 15  # 7.5 + 15, less 7.5, decayed one hour


def test_decisions_are_remembered_up_to_their_bound(customer):
    c = customer(tier=1)
    alert = _alert(c, 0 * H)
    for n in range(DECISIONS_KEPT + 5):
        c.decide((n + 1) * H, alert, "escalated", reason=f"note {n} " + "x" * 600)

    assert len(c.state.decisions) == DECISIONS_KEPT
    assert c.state.decisions[-1][5].startswith(f"note {DECISIONS_KEPT + 4}")
    assert len(c.state.decisions[-1][5]) == 500
    assert c.state.decisions[-1][4] == "analyst-7"


def test_the_state_keeps_decisions_whitelist_alerts_and_risk_history(customer):
    c = customer(tier=1)
    alert = _alert(c, 0 * H)
    c.decide(1 * H, alert)

    restored = CustomerState.from_bytes(c.state.to_bytes())

    assert restored.to_bytes() == c.state.to_bytes()
    assert (restored.decisions, restored.whitelist, restored.alert_log) == (
        c.state.decisions, c.state.whitelist, c.state.alert_log)
    assert restored.whitelist and restored.decisions and restored.alert_log
    assert restored.risk_history[-1][1:3] == ["unrated", "low"]


def test_a_state_from_before_decisions_reads_as_published():
    old = orjson.loads(CustomerState(risk_level="medium").to_bytes()[13:])[:-1]
    raw = CustomerState().to_bytes()[:13] + orjson.dumps(old)

    restored = CustomerState.from_bytes(raw)

    assert (restored.risk_level, restored.risk_published) == ("medium", "medium")
    assert restored.decisions == [] and restored.whitelist == {}


@pytest.mark.parametrize(("change", "kind"), [
    ({"decision": "maybe"}, ErrorKind.SCHEMA_VIOLATION),
    ({"reason": ""}, ErrorKind.SCHEMA_VIOLATION),
    ({"whitelist_days": "30"}, ErrorKind.SCHEMA_VIOLATION),
    ({"occurred_at": 1772409600}, ErrorKind.SCHEMA_VIOLATION),
    ({"customer_id": "someone-else"}, ErrorKind.KEY_MISMATCH),
])
def test_an_invalid_decision_is_rejected_with_its_kind(change, kind):
    payload = {"event_id": "d1", "customer_id": "c1", "occurred_at": "2026-03-02T00:00:00Z",
               "alert_id": "a1", "rule_id": "large_transfer", "decision": "false_positive",
               "decided_by": "analyst-7", "reason": "known", **change}

    with pytest.raises(Rejected) as rejected:
        decode_decision(b"c1", orjson.dumps(payload))

    assert rejected.value.kind is kind
