"""The case file (streams/case.py): the transactions each alert's window selects, each once;
decisions on their alerts; the profile as the onboarding events leave it; rule-set versions
with and without a history record; JSON that is the same bytes for the same records; HTML
that escapes what the records say."""

import json
import random
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from html.parser import HTMLParser
from typing import Any

import orjson
from aiokafka.partitioner import DefaultPartitioner

from schemas.alerts import Alert, CustomerSnapshot, Evidence, Severity, TriggeringEvent
from schemas.case import CaseFile
from schemas.decisions import AlertDecision
from schemas.events import OnboardingEvent, TransactionEvent
from schemas.risk import RiskChange
from schemas.rules import PublishedRuleSet
from streams.case import (
    CaseRecords,
    build_case,
    case_file_stem,
    customer_records,
    render_html,
    render_json,
)
from streams.partitioning import partition_of

T = datetime(2026, 11, 20, 12, tzinfo=UTC)
GENERATED = datetime(2026, 11, 21, 9, 30, 5, tzinfo=UTC)
EVIL = "<script>alert('x')</script>"


def tx(event_id: str, at: datetime, usd: str = "100.00", customer: str = "c1",
       **extra: Any) -> TransactionEvent:
    return TransactionEvent.model_validate({
        "event_id": event_id, "customer_id": customer, "occurred_at": at.isoformat(),
        "direction": "out", "asset": "USDT", "amount": usd, "amount_usd": usd,
        "channel": "crypto", "counterparty": {"address": "0xabc", "type": "unhosted_wallet"},
        **extra})


def onboarding(event_id: str, at: datetime, kind: str, **fields: Any) -> OnboardingEvent:
    return OnboardingEvent.model_validate({
        "event_id": event_id, "customer_id": "c1", "occurred_at": at.isoformat(), "type": kind,
        **fields})


def alert(alert_id: str, at: datetime, window: str | None, triggering: list[str],
          rule: str = "volume_24h", severity: Severity = Severity.HIGH,
          version: str = "v1", customer: str = "c1", summary: str = "big volume") -> Alert:
    return Alert(
        alert_id=alert_id, customer_id=customer, rule_id=rule, rule_set_version=version,
        severity=severity, triggered_at=at, summary=summary,
        observed_value=Decimal("25000.50"), threshold=Decimal("20000"),
        measure="usd_total_24h", window=window,
        evidence=Evidence(
            triggering_events=[TriggeringEvent(event_id=e, occurred_at=at, direction="out",
                                               amount_usd=Decimal("100.00"))
                               for e in triggering],
            aggregates={"usd_total": Decimal("25000.50")}),
        customer=CustomerSnapshot(kyc_status="verified", kyc_tier=1, country_of_residence="DE",
                                  nationality="DE", pep=False, sanctions_hit=False,
                                  expected_monthly_volume_usd=None))


def decision(event_id: str, alert_id: str, at: datetime, kind: str = "escalated",
             reason: str = "looks like layering", by: str = "analyst-7") -> AlertDecision:
    return AlertDecision.model_validate({
        "event_id": event_id, "customer_id": "c1", "occurred_at": at.isoformat(),
        "alert_id": alert_id, "rule_id": "volume_24h", "decision": kind, "decided_by": by,
        "reason": reason})


def risk(change_id: str, at: datetime, level: str, score: str,
         version: str = "v1") -> RiskChange:
    return RiskChange(change_id=change_id, customer_id="c1", previous_level="unrated",
                      level=level, score=Decimal(score), reasons=["pep: 30"], changed_at=at,
                      triggering_event_id="t0", rule_set_version=version)


def published(version: str, offset: int, **config: Any) -> PublishedRuleSet:
    return PublishedRuleSet(version=version, offset=offset, published_at=T - timedelta(days=30),
                            config={"version": version, **config})


def case_of(**records: Any) -> CaseFile:
    return build_case(CaseRecords(customer_id=records.pop("customer_id", "c1"), **records),
                      GENERATED, "0.1.0")


def test_a_24h_window_selects_the_transactions_of_its_last_24_hours() -> None:
    transactions = [tx("before", T - timedelta(hours=24, seconds=1)),
                    tx("edge", T - timedelta(hours=24)), tx("inside", T - timedelta(hours=3)),
                    tx("trigger", T), tx("after", T + timedelta(seconds=1))]
    case = case_of(transactions=transactions,
                   alerts=[alert("a1", T, "24h", ["trigger", "inside"])])
    [case_alert] = case.alerts
    assert case_alert.window_from == T - timedelta(hours=24)
    assert case_alert.transaction_ids == ["edge", "inside", "trigger"]
    assert [t.event.event_id for t in case.transactions] == ["edge", "inside", "trigger"]
    assert case.summary.transactions == 3


def test_a_7d_window_and_an_alert_without_window() -> None:
    transactions = [tx("d8", T - timedelta(days=8)), tx("d6", T - timedelta(days=6)),
                    tx("h1", T - timedelta(hours=1)), tx("trigger", T)]
    seven = alert("a7", T, "7d", ["trigger"], rule="volume_7d")
    single = alert("a0", T, None, ["h1", "gone"], rule="large_transfer")
    case = case_of(transactions=transactions, alerts=[seven, single])
    by_id = {ca.alert.alert_id: ca for ca in case.alerts}
    assert by_id["a7"].transaction_ids == ["d6", "h1", "trigger"]
    # No window: only the triggering events, by id; one the topic no longer has is named.
    assert by_id["a0"].window_from is None
    assert by_id["a0"].transaction_ids == ["h1"]
    assert by_id["a0"].missing_event_ids == ["gone"]
    assert by_id["a7"].missing_event_ids == []
    assert [t.event.event_id for t in case.transactions] == ["d6", "h1", "trigger"]


def test_an_unknown_window_falls_back_to_the_triggering_events() -> None:
    case = case_of(transactions=[tx("old", T - timedelta(hours=2)), tx("trigger", T)],
                   alerts=[alert("a1", T, "fortnight", ["trigger"])])
    assert case.alerts[0].window_from is None
    assert case.alerts[0].transaction_ids == ["trigger"]


def test_transactions_are_listed_once_across_alerts_and_re_sent_records() -> None:
    transactions = [tx("t1", T - timedelta(hours=5)), tx("t2", T - timedelta(hours=2)),
                    tx("t1", T - timedelta(hours=5)),  # re-sent
                    tx("t3", T)]
    early = alert("a-early", T - timedelta(hours=2), "24h", ["t2"])
    late = alert("a-late", T, "1h", ["t3"], rule="velocity_1h", severity=Severity.MEDIUM)
    case = case_of(transactions=transactions, alerts=[late, early, late])  # late re-sent
    assert [ca.alert.alert_id for ca in case.alerts] == ["a-early", "a-late"]
    assert [(t.event.event_id, t.alert_ids) for t in case.transactions] == [
        ("t1", ["a-early"]), ("t2", ["a-early"]), ("t3", ["a-late"])]
    assert case.summary.alerts == 2
    assert case.summary.alerts_by_rule == {
        "volume_24h": {Severity.LOW: 0, Severity.MEDIUM: 0, Severity.HIGH: 1,
                       Severity.CRITICAL: 0},
        "velocity_1h": {Severity.LOW: 0, Severity.MEDIUM: 1, Severity.HIGH: 0,
                        Severity.CRITICAL: 0}}
    both = case_of(transactions=transactions,
                   alerts=[early, alert("a-wide", T, "24h", ["t3"])])
    assert [(t.event.event_id, t.alert_ids) for t in both.transactions] == [
        ("t1", ["a-early", "a-wide"]), ("t2", ["a-early", "a-wide"]), ("t3", ["a-wide"])]


def test_decisions_are_matched_to_their_alerts() -> None:
    alerts = [alert("a1", T - timedelta(hours=1), "24h", []), alert("a2", T, "24h", [])]
    decisions = [decision("d2", "a1", T + timedelta(hours=2), "reported", "SAR filed"),
                 decision("d1", "a1", T + timedelta(hours=1)),
                 decision("d1", "a1", T + timedelta(hours=1)),  # re-sent
                 decision("d3", "nope", T, "false_positive")]
    case = case_of(alerts=alerts, decisions=decisions)
    by_id = {ca.alert.alert_id: ca for ca in case.alerts}
    assert [(d.event_id, d.decision.value) for d in by_id["a1"].decisions] == [
        ("d1", "escalated"), ("d2", "reported")]
    assert by_id["a2"].decisions == []
    assert [d.event_id for d in case.unmatched_decisions] == ["d3"]
    assert case.summary.decisions == 2
    assert {k.value: v for k, v in case.summary.decisions_by_kind.items()} == {
        "escalated": 1, "reported": 1}
    assert case.summary.undecided_alerts == 1


def test_profile_is_the_newest_value_of_each_field() -> None:
    events = [onboarding("o1", T - timedelta(days=9), "registered", country_of_residence="DE"),
              onboarding("o2", T - timedelta(days=8), "kyc_verified", kyc_tier=2, pep=False,
                         expected_monthly_volume_usd="5000.10"),
              onboarding("o3", T - timedelta(days=2), "profile_updated",
                         country_of_residence="fr"),
              onboarding("o1", T - timedelta(days=9), "registered",
                         country_of_residence="DE"),  # re-sent: a step once
              onboarding("o4", T - timedelta(days=1), "registered")]  # must not undo verified
    case = case_of(onboarding=events)
    profile = case.profile
    assert profile.kyc_status == "verified"
    assert (profile.kyc_tier, profile.country_of_residence, profile.pep) == (2, "FR", False)
    assert profile.expected_monthly_volume_usd == Decimal("5000.10")
    assert profile.nationality is None and profile.sanctions_hit is None
    assert profile.registered_at == T - timedelta(days=9)
    assert profile.updated_at == T - timedelta(days=1)
    assert [e.event_id for e in case.onboarding] == ["o1", "o2", "o3", "o4"]


def test_current_risk_level_is_the_newest_change() -> None:
    case = case_of(risk_changes=[risk("r1", T - timedelta(days=3), "medium", "35"),
                                 risk("r2", T, "high", "72.5")])
    assert (case.summary.risk_level, case.summary.risk_score) == ("high", Decimal("72.5"))
    assert case_of(alerts=[alert("a", T, None, [])]).summary.risk_level == "unrated"


def test_rule_set_versions_named_with_their_published_config_or_not_in_history() -> None:
    history = {"v1": published("v1", 0, tiers={"2": {"large_transfer_usd": "10000"}}),
               "v2": published("v2", 1, tiers={"2": {"large_transfer_usd": "5000"}}),
               "unused": published("unused", 2)}
    case = case_of(alerts=[alert("a1", T, None, [], version="v9"),
                           alert("a2", T, None, [], version="v2"),
                           alert("a3", T, None, [], version="v2")],
                   risk_changes=[risk("r1", T, "medium", "30", version="v1")], history=history)
    assert [(r.version, r.alerts, r.risk_changes) for r in case.rule_sets] == [
        ("v1", 0, 1), ("v2", 2, 0), ("v9", 1, 0)]
    assert case.rule_sets[1].published == history["v2"]
    assert case.rule_sets[2].published is None
    html = render_html(case)
    assert "<h3>Version v9</h3>\n<p class=\"missing\">Not in the history" in html
    assert "large_transfer_usd: &#x27;5000&#x27;" in html  # the config, as YAML
    document = json.loads(render_json(case))
    assert document["rule_sets"][2] == {"version": "v9", "published": None, "alerts": 1,
                                        "risk_changes": 0}
    assert document["rule_sets"][1]["published"]["config"]["tiers"]["2"] == {
        "large_transfer_usd": "5000"}


def _full_case(shuffle: random.Random | None = None) -> CaseFile:
    transactions = [tx(f"t{n}", T - timedelta(hours=n), usd=f"{1000 + n}.{n:02d}")
                    for n in range(30)]
    alerts = [alert(f"a{n}", T - timedelta(hours=n * 5), "24h", [f"t{n * 5}"])
              for n in range(5)]
    decisions = [decision(f"d{n}", f"a{n}", T + timedelta(minutes=n)) for n in range(3)]
    if shuffle is not None:
        shuffle.shuffle(alerts)
        shuffle.shuffle(decisions)
    return case_of(transactions=transactions, alerts=alerts, decisions=decisions,
                   risk_changes=[risk("r1", T, "high", "61")],
                   history={"v1": published("v1", 0, risk={"high_from": 60, "ratio": 0.5})})


def test_json_is_the_same_bytes_for_the_same_records() -> None:
    first = render_json(_full_case())
    assert render_json(_full_case()) == first
    # Alerts and decisions come out in time order whatever order they were read in.
    assert render_json(_full_case(random.Random(7))) == first
    document = json.loads(first)
    assert list(document) == sorted(document)
    assert document["transactions"][0]["event"]["amount"] == "1029.29"  # a decimal string
    assert document["summary"]["risk_score"] == "61"
    assert document["generated_at"] == "2026-11-21T09:30:05Z"
    assert first.endswith(b"}\n")


class _Elements(HTMLParser):
    def __init__(self, document: str) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.feed(document)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.extend(attrs)


def test_html_escapes_what_the_records_say() -> None:
    hostile = alert("a1", T, "24h", ["t1"], summary=f"summary {EVIL}", customer=EVIL,
                    version=f"v{EVIL}")
    case = case_of(
        customer_id=EVIL,
        transactions=[tx("t1", T, customer=EVIL, tx_hash='"><img src=x onerror=alert(1)>')],
        alerts=[hostile],
        decisions=[decision("d1", "a1", T, reason=f"reason {EVIL}", by=f"<b>{EVIL}</b>")
                   .model_copy(update={"customer_id": EVIL})],
        onboarding=[onboarding("o1", T, "registered").model_copy(update={"customer_id": EVIL})])
    html = render_html(case)
    assert "<script" not in html.lower() and "<img" not in html.lower()
    assert "<h1>Case file: &lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;</h1>" in html
    assert "<title>Case file: &lt;script&gt;" in html
    assert "reason &lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
    assert "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in html
    elements = _Elements(html)
    assert "script" not in elements.tags and "img" not in elements.tags
    assert not [name for name, _ in elements.attrs if name.startswith("on") or name == "src"]
    # Self-contained: nothing loaded from elsewhere.
    assert "http://" not in html and "https://" not in html and "@import" not in html


def test_html_holds_every_section() -> None:
    html = render_html(_full_case())
    for anchor in ("summary", "profile", "risk", "alerts", "transactions", "rule-sets",
                   "sources"):
        assert f'<section id="{anchor}">' in html
    assert html.count('<section class="alert high" id="alert-') == 5
    assert "looks like layering" in html and "analyst-7" in html
    assert "1029.29" in html and "25000.50 (usd_total_24h)" in html
    assert "high_from: 60" in html


def test_customer_records_keeps_the_customers_valid_records() -> None:
    mine = orjson.dumps(tx("t1", T).model_dump(mode="json"))
    other_body = orjson.dumps(tx("t2", T, customer="c2").model_dump(mode="json"))
    records = [(b"c1", mine), (b"c2", other_body), (b"c1", b"{not json"),
               (b"c1", other_body),  # keyed c1, says c2: dead-lettered by the worker
               (b"c1", None), (None, mine)]
    kept, unreadable = customer_records("c1", TransactionEvent, records)
    assert [t.event_id for t in kept] == ["t1"]
    assert unreadable == 3


def test_case_file_names_are_safe_and_distinct() -> None:
    assert case_file_stem("cust-42_a.b", GENERATED) == "case-cust-42_a.b-20261121T093005"
    slash = case_file_stem("../etc/passwd", GENERATED)
    underscore = case_file_stem(".._etc_passwd", GENERATED)
    assert "/" not in slash and slash.startswith("case-.._etc_passwd-")
    assert slash != underscore
    at_plus_2 = GENERATED.astimezone(timezone(timedelta(hours=2)))
    assert case_file_stem("c1", at_plus_2) == "case-c1-20261121T093005"  # UTC


def test_the_customers_partition_is_the_one_the_producers_pick() -> None:
    """The case reads one partition per topic: the one aiokafka's default partitioner (the
    worker's producer, through Faust) and Kafka's give the key."""
    partitioner = DefaultPartitioner()
    for n in range(2000):
        key = f"customer-{n}".encode()
        for count in (1, 3, 4, 12):
            assert partitioner(key, list(range(count)), list(range(count))) == partition_of(
                key, count)


def test_empty_records() -> None:
    assert CaseRecords("c1").empty
    assert not CaseRecords("c1", risk_changes=[risk("r", T, "low", "0")]).empty
