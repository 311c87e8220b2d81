"""The case file of one customer (``schemas.case.CaseFile``), from the customer's records,
and its two renderings: JSON (stable: sorted keys, decimals as strings, the same bytes for the
same records) and one self-contained HTML document for people (printable, inline CSS, no
script, nothing loaded from elsewhere, every text from the records escaped).

No Kafka and no clock here: ``agents.case_file`` reads the topics and passes the records and
the time of generation in.

What goes in:

- the profile: the onboarding events folded in the order they were published (the newest
  value of each field; the KYC status as the worker derives it);
- the alerts (by time), each with the decisions naming its ``alert_id`` (by time);
- for each alert, the transactions with ``occurred_at`` in ``[triggered_at - window,
  triggered_at]`` (its ``window``: 1h, 24h, 7d, 30d...), plus its triggering events by id
  (all it has when it has no window); together, each transaction once, by time;
- every rule-set version the alerts and risk changes name, with the rule set as published
  where the rules history has it.

Records re-sent (at-least-once delivery) are counted once: events and decisions by
``event_id``, alerts by ``alert_id``, risk changes by ``change_id`` (the first one kept).
"""

import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from schemas.alerts import Alert, NetworkTransfer, Severity
from schemas.case import (
    CaseAlert,
    CaseFile,
    CaseProfile,
    CaseRuleSet,
    CaseSummary,
    CaseTransaction,
    TopicRead,
)
from schemas.config_types import parse_duration_s
from schemas.decisions import AlertDecision, DecisionKind
from schemas.events import OnboardingEvent, OnboardingType, TransactionEvent
from schemas.risk import RiskChange
from schemas.rules import PublishedRuleSet
from streams.engine import kyc_status_after
from streams.html_doc import BASE_CSS, escape, page, table

__all__ = ["CaseRecords", "build_case", "case_file_stem", "customer_records", "render_html",
           "render_json"]

_Record = TypeVar("_Record", bound=BaseModel)
_Item = TypeVar("_Item")

SEVERITIES = tuple(Severity)
PROFILE_FIELDS = ("kyc_tier", "country_of_residence", "nationality", "pep", "sanctions_hit",
                  "expected_monthly_volume_usd")
"""Onboarding fields that stay as they were when an event leaves them out (null)."""


@dataclass(frozen=True)
class CaseRecords:
    """One customer's records, each list in the order of its topic partition."""

    customer_id: str
    onboarding: Sequence[OnboardingEvent] = ()
    transactions: Sequence[TransactionEvent] = ()
    risk_changes: Sequence[RiskChange] = ()
    alerts: Sequence[Alert] = ()
    decisions: Sequence[AlertDecision] = ()
    history: Mapping[str, PublishedRuleSet] = field(default_factory=dict)
    """The rules history: version -> the rule set as published (every customer's)."""
    sources: Sequence[TopicRead] = ()

    @property
    def empty(self) -> bool:
        """No record of the customer on any of its topics (the rules history aside)."""
        return not (self.onboarding or self.transactions or self.risk_changes or self.alerts
                    or self.decisions)


def customer_records(customer_id: str, model: type[_Record],
                     records: Iterable[tuple[bytes | None, bytes | None]],
                     ) -> tuple[list[_Record], int]:
    """The ``(key, value)`` records keyed by ``customer_id`` that are valid ``model`` records
    of that customer, in order; and how many keyed by it are not (the worker dead-letters
    such inputs: they changed nothing)."""
    key = customer_id.encode()
    kept: list[_Record] = []
    unreadable = 0
    for record_key, value in records:
        if record_key != key:
            continue
        try:
            parsed = model.model_validate_json(value) if value is not None else None
        except ValidationError:
            parsed = None
        if parsed is None or getattr(parsed, "customer_id", None) != customer_id:
            unreadable += 1
        else:
            kept.append(parsed)
    return kept, unreadable


def _unique(items: Iterable[_Item], key: Callable[[_Item], Hashable]) -> list[_Item]:
    """``items`` without the later ones of equal ``key`` (re-sent records), in order."""
    seen: set[Hashable] = set()
    out: list[_Item] = []
    for item in items:
        k = key(item)
        if k not in seen:
            seen.add(k)
            out.append(item)
    return out


def _window(alert: Alert) -> timedelta | None:
    """The alert's window (``24h``, ``7d``...); None if it has none or it does not parse."""
    if alert.window is None:
        return None
    try:
        return timedelta(seconds=int(parse_duration_s(alert.window)))
    except ValueError:
        return None


def _profile(events: Sequence[OnboardingEvent]) -> CaseProfile:
    status = "unknown"
    values: dict[str, Any] = {}
    for event in events:
        status = kyc_status_after(status, event)
        if event.type is OnboardingType.REGISTERED and "registered_at" not in values:
            values["registered_at"] = event.occurred_at
        for name in PROFILE_FIELDS:
            value = getattr(event, name)
            if value is not None:
                values[name] = value
    if events:
        values["updated_at"] = max(event.occurred_at for event in events)
    return CaseProfile.model_validate({"kyc_status": status, **values})


def build_case(records: CaseRecords, generated_at: datetime,
               amlstream_version: str) -> CaseFile:
    """The case file of ``records.customer_id`` as of ``generated_at`` (timezone-aware)."""
    if generated_at.tzinfo is None:
        raise ValueError("generated_at must carry a timezone")
    onboarding = _unique(records.onboarding, lambda e: e.event_id)
    risk = _unique(records.risk_changes, lambda c: c.change_id)
    alerts = sorted(_unique(records.alerts, lambda a: a.alert_id),
                    key=lambda a: (a.triggered_at, a.alert_id))
    decisions = sorted(_unique(records.decisions, lambda d: d.event_id),
                       key=lambda d: (d.occurred_at, d.event_id))
    transactions = sorted(_unique(records.transactions, lambda t: t.event_id),
                          key=lambda t: (t.occurred_at, t.event_id))
    known = {t.event_id for t in transactions}

    decided: dict[str, list[AlertDecision]] = {}
    for decision in decisions:
        decided.setdefault(decision.alert_id, []).append(decision)
    alerts_of: dict[str, list[str]] = {}
    case_alerts: list[CaseAlert] = []
    for alert in alerts:
        window = _window(alert)
        window_from = None if window is None else alert.triggered_at - window
        wanted = [e.event_id for e in alert.evidence.triggering_events]
        chosen = [t.event_id for t in transactions if t.event_id in wanted or (
            window_from is not None and window_from <= t.occurred_at <= alert.triggered_at)]
        for event_id in chosen:
            alerts_of.setdefault(event_id, []).append(alert.alert_id)
        case_alerts.append(CaseAlert(
            alert=alert, decisions=decided.get(alert.alert_id, []), window_from=window_from,
            transaction_ids=chosen,
            missing_event_ids=_unique((i for i in wanted if i not in known), lambda i: i)))
    alert_ids = {alert.alert_id for alert in alerts}
    matched = [d for d in decisions if d.alert_id in alert_ids]

    by_rule: dict[str, dict[Severity, int]] = {}
    for alert in alerts:
        counts = by_rule.setdefault(alert.rule_id, dict.fromkeys(SEVERITIES, 0))
        counts[alert.severity] += 1
    summary = CaseSummary(
        alerts=len(alerts), alerts_by_rule=by_rule, decisions=len(matched),
        decisions_by_kind=dict(Counter(d.decision for d in matched)),
        undecided_alerts=sum(1 for alert in alerts if alert.alert_id not in decided),
        transactions=len(alerts_of),
        risk_level=risk[-1].level.value if risk else "unrated",
        risk_score=risk[-1].score if risk else None)
    return CaseFile(
        customer_id=records.customer_id, generated_at=generated_at,
        amlstream_version=amlstream_version, summary=summary, profile=_profile(onboarding),
        onboarding=onboarding, risk_history=risk, alerts=case_alerts,
        unmatched_decisions=[d for d in decisions if d.alert_id not in alert_ids],
        transactions=[CaseTransaction(event=t, alert_ids=alerts_of[t.event_id])
                      for t in transactions if t.event_id in alerts_of],
        rule_sets=_rule_sets(alerts, risk, records.history),
        sources=list(records.sources))


def _rule_sets(alerts: Sequence[Alert], risk: Sequence[RiskChange],
               history: Mapping[str, PublishedRuleSet]) -> list[CaseRuleSet]:
    """Every version named, those in the history first (in publishing order), then the
    others by name."""
    by_alerts = Counter(alert.rule_set_version for alert in alerts)
    by_risk = Counter(change.rule_set_version for change in risk)
    versions = sorted(by_alerts.keys() | by_risk.keys(), key=lambda v: (
        (0, history[v].offset, v) if v in history else (1, 0, v)))
    return [CaseRuleSet(version=v, published=history.get(v), alerts=by_alerts[v],
                        risk_changes=by_risk[v]) for v in versions]


def render_json(case: CaseFile) -> bytes:
    """The case as JSON, UTF-8: keys sorted, amounts as decimal strings, times ISO-8601."""
    text = json.dumps(case.model_dump(mode="json"), sort_keys=True, indent=2,
                      ensure_ascii=False)
    return (text + "\n").encode("utf-8")


def case_file_stem(customer_id: str, generated_at: datetime) -> str:
    """``case-<customer>-<yyyymmddThhmmss>`` (UTC): the customer id with every character but
    letters, digits, ``.``, ``_`` and ``-`` replaced by ``_``, and then, so that two ids do
    not share a name, 8 hex digits of its SHA-256."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", customer_id)
    if safe != customer_id or not safe:
        safe = f"{safe}-{hashlib.sha256(customer_id.encode()).hexdigest()[:8]}"
    return f"case-{safe}-{generated_at.astimezone(UTC):%Y%m%dT%H%M%S}"


# ---------------------------------------------------------------------------------------------
# HTML

_CSS = BASE_CSS + """\
p.lead { color: #444; margin-top: 0; }
nav ol { columns: 2; max-width: 40em; }
dl.facts { display: grid; grid-template-columns: max-content auto; gap: .15em 1em;
           margin: .3em 0 .8em; }
dl.facts dt { color: #555; }
dl.facts dd { margin: 0; }
th, td { text-align: left; }
td, dd { overflow-wrap: anywhere; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; background: #f6f6f6;
      border: 1px solid #e0e0e0; padding: .6em; font-size: .82em; }
section.alert { border-left: 5px solid #c8c8c8; padding: .1em 0 .1em .9em; margin: 1.4em 0; }
section.alert.low { border-color: #6a9f58; }
section.alert.medium { border-color: #e0a000; }
section.alert.high { border-color: #e05a00; }
section.alert.critical { border-color: #b00020; }
span.severity { font-size: .8em; padding: .05em .4em; border-radius: .2em; color: #fff;
                background: #777; text-transform: uppercase; }
.low span.severity { background: #6a9f58; }
.medium span.severity { background: #b07d00; }
.high span.severity { background: #c24e00; }
.critical span.severity { background: #b00020; }
h4 { font-size: .95em; margin: .8em 0 .2em; }
.missing { color: #b00020; }
@media print {
  body { margin: 0; font-size: 11px; }
  nav { display: none; }
  .scroll { overflow: visible; }
  h2, h3, h4 { break-after: avoid-page; }
  section.alert, tr { break-inside: avoid-page; }
}
"""

_NONE = "—"
_LABELS = {"kyc_status": "KYC status", "kyc_tier": "KYC tier", "pep": "PEP",
           "expected_monthly_volume_usd": "expected monthly volume (USD)"}


def _time(at: datetime | None) -> str:
    return _NONE if at is None else f"{at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


def _text(value: object) -> str:
    """A value as a reader sees it: None as a dash, booleans as yes/no, decimals as written."""
    if value is None:
        return _NONE
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return _time(value)
    return str(value)


def _facts(pairs: Iterable[tuple[str, object]]) -> str:
    items = "".join(f"<dt>{escape(name)}</dt><dd>{escape(_text(value))}</dd>"
                    for name, value in pairs)
    return f'<dl class="facts">{items}</dl>'


def _or_none(html: str, rows: Sequence[object], none: str) -> str:
    return html if rows else f"<p>{escape(none)}</p>"


def render_html(case: CaseFile) -> str:
    """The case as one HTML document (a ``str``; write it with UTF-8)."""
    number = {ca.alert.alert_id: n for n, ca in enumerate(case.alerts, 1)}
    sections = [
        ("summary", "Summary", _summary_section(case)),
        ("profile", "Profile and onboarding", _profile_section(case)),
        ("risk", "Risk history", _risk_section(case)),
        ("alerts", "Alerts", _alerts_section(case)),
        ("transactions", "Transactions in the alerted windows",
         _transactions_section(case, number)),
        ("rule-sets", "Rule-set versions", _rule_sets_section(case)),
        ("sources", "Sources", _sources_section(case)),
    ]
    body = [f"<h1>Case file: {escape(case.customer_id)}</h1>",
            f'<p class="lead">Generated {escape(_time(case.generated_at))} by amlstream '
            f"{escape(case.amlstream_version)} from the records on the topics "
            '(<a href="#sources">sources</a>).</p>',
            "<nav><ol>" + "".join(f'<li><a href="#{anchor}">{escape(title)}</a></li>'
                                  for anchor, title, _ in sections) + "</ol></nav>"]
    body += [f'<section id="{anchor}"><h2>{escape(title)}</h2>\n{html}</section>'
             for anchor, title, html in sections]
    return page(f"Case file: {case.customer_id}", "\n".join(body), _CSS)


def _summary_section(case: CaseFile) -> str:
    summary, profile = case.summary, case.profile
    score = "" if summary.risk_score is None else f" (score {summary.risk_score})"
    parts = [_facts([
        ("customer", case.customer_id),
        ("KYC status", profile.kyc_status),
        ("KYC tier", profile.kyc_tier),
        ("country of residence", profile.country_of_residence),
        ("PEP", profile.pep),
        ("sanctions hit", profile.sanctions_hit),
        ("current risk level", summary.risk_level + score),
        ("alerts", summary.alerts),
        ("decisions", summary.decisions),
        ("alerts without a decision", summary.undecided_alerts),
        ("transactions in the alerted windows", summary.transactions),
    ]), "<h3>Alerts by rule and severity</h3>"]
    rows = [[rule, *(counts[s] for s in SEVERITIES), sum(counts.values())]
            for rule, counts in sorted(summary.alerts_by_rule.items())]
    foot = ["all rules", *(sum(c[s] for c in summary.alerts_by_rule.values())
                           for s in SEVERITIES), summary.alerts]
    parts.append(_or_none(table(["rule", *(s.value for s in SEVERITIES), "alerts"], rows, foot),
                          rows, "No alerts."))
    parts.append("<h3>Decisions</h3>")
    kinds = [[kind.value, summary.decisions_by_kind.get(kind, 0)] for kind in DecisionKind]
    parts.append(_or_none(table(["decision", "count"], kinds, ["all", summary.decisions]),
                          [k for k in kinds if k[1]], "No decisions recorded."))
    if case.unmatched_decisions:
        parts.append(f'<p class="missing">{len(case.unmatched_decisions)} decision(s) name an '
                     "alert that is not among this customer's alerts (listed under Alerts).</p>")
    return "\n".join(parts)


def _profile_section(case: CaseFile) -> str:
    profile = case.profile
    parts = [_facts([(_LABELS.get(name, name.replace("_", " ")), getattr(profile, name))
                     for name in ("kyc_status", *PROFILE_FIELDS, "registered_at", "updated_at")]),
             "<h3>Onboarding steps</h3>"]
    rows = [[_time(e.occurred_at), e.type.value, e.event_id,
             "; ".join(f"{name}: {_text(getattr(e, name))}" for name in PROFILE_FIELDS
                       if getattr(e, name) is not None) or _NONE]
            for e in case.onboarding]
    parts.append(_or_none(table(["time", "step", "event id", "fields given"], rows), rows,
                          "No onboarding events."))
    return "\n".join(parts)


def _risk_section(case: CaseFile) -> str:
    rows = [[_time(c.changed_at), c.previous_level, c.level.value, c.score, "; ".join(c.reasons),
             c.triggering_event_id, c.rule_set_version] for c in case.risk_history]
    return _or_none(table(["changed at", "from", "to", "score", "reasons", "triggering event",
                           "rule set"], rows), rows, "No risk changes.")


def _alerts_section(case: CaseFile) -> str:
    parts = [_alert_section(n, ca) for n, ca in enumerate(case.alerts, 1)] or ["<p>No alerts.</p>"]
    if case.unmatched_decisions:
        parts.append("<h3>Decisions on alerts not found</h3>"
                     "<p>These decisions name an alert id that is not among this customer's "
                     "alerts on the alerts topic.</p>" + _decisions_table(case.unmatched_decisions,
                                                                         with_alert=True))
    return "\n".join(parts)


def _decisions_table(decisions: Sequence[AlertDecision], with_alert: bool = False) -> str:
    head = ["decided at", "decision", "by", "reason", "counterparty", "whitelist days"]
    rows = [
        [_time(d.occurred_at), d.decision.value, d.decided_by, d.reason, _text(d.counterparty),
         _text(d.whitelist_days)] + ([d.alert_id] if with_alert else []) for d in decisions]
    return table(head + (["alert id"] if with_alert else []), rows)


def _transfers_table(transfers: Sequence[NetworkTransfer]) -> str:
    rows = [[t.customer_id, t.event_id, _time(t.occurred_at), t.direction, t.amount_usd,
             _text(t.share_pct)] for t in transfers]
    return table(["customer", "event id", "time", "direction", "USD", "share %"], rows)


def _alert_section(n: int, case_alert: CaseAlert) -> str:
    alert = case_alert.alert
    evidence = alert.evidence
    severity = alert.severity.value
    if case_alert.window_from is None:
        selected = "its triggering events (the alert has no window)"
    else:
        selected = (f"{_time(case_alert.window_from)} to {_time(alert.triggered_at)} "
                    f"(window {alert.window}), and its triggering events")
    parts = [
        f'<section class="alert {escape(severity)}" id="alert-{n}">',
        f"<h3>{n}. {escape(alert.rule_id)} <span class=\"severity\">{escape(severity)}</span> "
        f"{escape(_time(alert.triggered_at))}</h3>",
        f'<p class="summary">{escape(alert.summary)}</p>',
        _facts([
            ("alert id", alert.alert_id),
            ("rule", alert.rule_id),
            ("severity", severity),
            ("rule-set version", alert.rule_set_version),
            ("triggered at", alert.triggered_at),
            ("observed", f"{alert.observed_value} ({alert.measure})"),
            ("threshold", alert.threshold),
            ("window", alert.window),
            ("transactions selected", selected),
            ("customer then", f"KYC {alert.customer.kyc_status}, tier {alert.customer.kyc_tier}"
                              f", risk {alert.customer.risk_level}, residence "
                              f"{_text(alert.customer.country_of_residence)}, PEP "
                              f"{_text(alert.customer.pep)}, sanctions hit "
                              f"{_text(alert.customer.sanctions_hit)}"),
        ]),
        "<h4>Triggering events</h4>",
        table(["event id", "time", "direction", "USD"],
              [[e.event_id, _time(e.occurred_at), e.direction, e.amount_usd]
               for e in evidence.triggering_events]),
    ]
    if case_alert.missing_event_ids:
        parts.append('<p class="missing">Not found among the customer\'s transactions on the '
                     f"topic: {escape(', '.join(case_alert.missing_event_ids))}</p>")
    if evidence.aggregates:
        parts += ["<h4>Aggregates</h4>",
                  table(["measure", "value"], sorted(evidence.aggregates.items()))]
    if evidence.matches:
        parts += ["<h4>List matches</h4>",
                  table(["match", "value"], sorted(evidence.matches.items()))]
    network = evidence.network
    if network is not None:
        parts += ["<h4>Network evidence</h4>", _facts([
            ("counterparty", network.counterparty), ("counterparty type",
                                                     network.counterparty_type),
            ("origin", network.origin), ("other customers involved", network.others_total)])]
        if network.path:
            parts += ["<p>Path of the value, hop by hop:</p>", _transfers_table(network.path)]
        if network.others:
            parts += ["<p>Other customers' transfers:</p>", _transfers_table(network.others)]
    parts.append("<h4>Decisions</h4>")
    parts.append(_decisions_table(case_alert.decisions) if case_alert.decisions
                 else "<p>No decision recorded.</p>")
    parts.append("</section>")
    return "\n".join(parts)


def _transactions_section(case: CaseFile, number: Mapping[str, int]) -> str:
    rows = []
    for item in case.transactions:
        t, cp = item.event, item.event.counterparty
        rows.append([_time(t.occurred_at), t.event_id, t.direction.value, t.asset, t.amount,
                     _text(t.amount_usd), t.channel.value, _text(cp.address), cp.type.value,
                     _text(cp.country), _text(cp.customer_id), _text(t.tx_hash),
                     ", ".join(f"#{number[a]}" for a in item.alert_ids)])
    return _or_none(table(["time", "event id", "direction", "asset", "amount", "USD", "channel",
                           "counterparty", "type", "country", "our customer", "tx hash",
                           "alerts"], rows), rows, "No transactions in the alerted windows.")


def _rule_sets_section(case: CaseFile) -> str:
    parts = []
    for n, rule_set in enumerate(case.rule_sets, 1):
        named = f"named by {rule_set.alerts} alert(s) and {rule_set.risk_changes} risk change(s)"
        parts.append(f'<section class="rule-set" id="rule-set-{n}">'
                     f"<h3>Version {escape(rule_set.version)}</h3>")
        published = rule_set.published
        if published is None:
            parts.append(f'<p class="missing">Not in the history ({escape(named)}): its rule '
                         "configuration is not known here.</p>")
        else:
            config = yaml.safe_dump(published.config, sort_keys=False, allow_unicode=True)
            parts.append(f"<p>Published {escape(_time(published.published_at))} (rules "
                         f"history offset {published.offset}); {escape(named)}.</p>"
                         f"<pre>{escape(config)}</pre>")
        parts.append("</section>")
    return "\n".join(parts) or "<p>No rule-set version named.</p>"


def _sources_section(case: CaseFile) -> str:
    rows = [[s.topic, _NONE if s.partition is None else f"{s.partition} of {s.partitions}",
             s.start_offset, s.end_offset, s.records, s.customer_records, s.unreadable]
            for s in case.sources]
    absent = [s.topic for s in case.sources if s.partition is None]
    note = (f"<p>Not on the broker (nothing read): {escape(', '.join(absent))}.</p>"
            if absent else "")
    return ("<p>Each keyed topic was read in the customer's partition only, from its first "
            "offset to its end offset at the time of reading; the rules history whole.</p>"
            + table(["topic", "partition", "first offset", "end offset", "records read",
                     "this customer's", "unreadable"], rows) + note)
