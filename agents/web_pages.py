"""The investigators' HTML pages: the customer view and one alert, from the JSON the API gives
(``streams.customer_view``). Plain server-rendered HTML, no script, every value escaped."""

import html
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · amlstream</title>
<style>
body {{ font-family: "DejaVu Sans", Arial, sans-serif; margin: 1.2em 2em; color: #1a1a1a;
       font-size: 15px; max-width: 72em; }}
header {{ border-bottom: 2px solid #24507a; margin-bottom: 1em; }}
header a {{ color: #24507a; text-decoration: none; font-weight: bold; }}
h1 {{ font-size: 1.5em; margin: .3em 0; overflow-wrap: anywhere; }}
h2 {{ font-size: 1.15em; margin: 1.3em 0 .4em; }}
table {{ border-collapse: collapse; margin: .3em 0 1em; font-size: .92em; }}
th, td {{ border: 1px solid #c8c8c8; padding: .25em .6em; text-align: left;
         vertical-align: top; overflow-wrap: anywhere; }}
thead th {{ background: #eef1f5; }}
dl {{ display: grid; grid-template-columns: max-content auto; gap: .2em 1.2em; }}
dt {{ color: #555; }} dd {{ margin: 0; overflow-wrap: anywhere; }}
.level-high, .sev-critical, .sev-high {{ color: #a40000; font-weight: bold; }}
.level-medium, .sev-medium {{ color: #8a5a00; font-weight: bold; }}
.note {{ color: #555; font-size: .9em; }}
form input {{ font-size: 1em; padding: .2em; width: 22em; }}
</style>
</head>
<body>
<header><a href="/">amlstream · investigators</a></header>
{body}
</body>
</html>
"""


def _e(value: object) -> str:
    return "—" if value is None else html.escape(str(value), quote=True)


def _page(title: str, body: str) -> str:
    return _PAGE.format(title=_e(title), body=body)


def _table(head: Sequence[str], rows: Sequence[Sequence[object]], raw: int = -1) -> str:
    """Rows of escaped cells; column ``raw`` holds HTML already escaped (a link)."""
    if not rows:
        return '<p class="note">None.</p>'
    heads = "".join(f"<th>{_e(h)}</th>" for h in head)
    body = "".join(
        "<tr>" + "".join(f"<td>{cell if n == raw else _e(cell)}</td>"
                         for n, cell in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{heads}</tr></thead><tbody>{body}</tbody></table>"


def _fields(values: dict[str, Any]) -> str:
    items = "".join(f"<dt>{_e(k.replace('_', ' '))}</dt><dd>{_e(v)}</dd>"
                    for k, v in values.items())
    return f"<dl>{items}</dl>"


def customer_href(customer_id: str) -> str:
    return f"/customers/{quote(customer_id, safe='')}"


def _alert_link(customer_id: str, alert: dict[str, Any]) -> str:
    href = f"{customer_href(customer_id)}/alerts/{quote(alert['alert_id'], safe='')}"
    return f'<a href="{_e(href)}">{_e(alert["rule_id"])}</a>'


def index_page() -> str:
    return _page("Investigators", """<h1>Customer lookup</h1>
<form action="/customer" method="get">
<label for="id">Customer id</label>
<input id="id" name="id" required autofocus>
<button type="submit">Open</button>
</form>
<p class="note">JSON for systems: /api/customers/ID and /api/customers/ID/alerts/ALERT_ID.
The case file for a report: <code>amlstream case ID</code>.</p>""")


def customer_page(view: dict[str, Any]) -> str:
    customer_id = view["customer_id"]
    risk = view["risk"]
    level = _e(risk["level"])
    summary = (f'<h1>Customer {_e(customer_id)}</h1><p>Risk <span class="level-{level}">'
               f'{level}</span> (score {_e(risk["score"])}), as of {_e(view["as_of"])}.'
               f' {len(view["alerts"])} recent alert(s), {len(view["decisions"])} decision(s).'
               "</p>")
    windows = [(name, w["deposits"], w["deposits_usd"], w["withdrawals"], w["withdrawals_usd"])
               for name, w in view["windows"].items()]
    alerts = [(a["triggered_at"], f'<span class="sev-{_e(a["severity"])}">'
               f'{_e(a["severity"])}</span>', _alert_link(customer_id, a), a["summary"],
               ", ".join(d["decision"] for d in a["decisions"]) or "open")
              for a in view["alerts"]]
    sections = [
        summary,
        "<h2>Profile and KYC</h2>", _fields(view["profile"]),
        "<h2>Risk: reasons</h2>",
        _table(["reason"], [(r,) for r in risk["reasons"]]),
        "<h2>Risk: published assessments</h2>",
        _table(["at", "from", "to", "score", "triggering event"],
               [(h["at"], h["previous_level"], h["level"], h["score"],
                 h["triggering_event_id"]) for h in risk["history"]]),
        "<h2>Windows</h2>",
        _table(["window", "deposits", "deposits USD", "withdrawals", "withdrawals USD"],
               windows),
        "<h2>Counterparties</h2>", _fields(view["counterparties"]),
        "<h2>Recent alerts</h2>",
        _alerts_table(alerts),
        "<h2>Decisions</h2>",
        _table(["decided at", "decision", "by", "rule", "alert", "reason"],
               [(d["decided_at"], d["decision"], d["decided_by"], d["rule_id"], d["alert_id"],
                 d["reason"]) for d in view["decisions"]]),
        "<h2>Whitelisted counterparties</h2>",
        _table(["rule", "until"], [(w["rule_id"], w["until"]) for w in view["whitelisted"]]),
        "<h2>Recent transfers</h2>",
        _table(["at", "direction", "USD", "event"],
               [(t["occurred_at"], t["direction"], t["amount_usd"], t["event_id"])
                for t in view["recent_transfers"]]),
        '<p class="note">Alerts of the network rules (counterparty and flow stages) are on the '
        "alerts topic and in the case file (<code>amlstream case "
        f"{_e(customer_id)}</code>).</p>",
    ]
    return _page(f"Customer {customer_id}", "\n".join(sections))


def _alerts_table(rows: list[tuple[Any, ...]]) -> str:
    if not rows:
        return '<p class="note">None.</p>'
    head = "".join(f"<th>{h}</th>" for h in ("triggered at", "severity", "rule", "summary",
                                             "decision"))
    body = "".join(f"<tr><td>{_e(at)}</td><td>{severity}</td><td>{link}</td><td>{_e(text)}"
                   f"</td><td>{_e(decided)}</td></tr>"
                   for at, severity, link, text, decided in rows)
    return f'<table id="alerts"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def alert_page(customer_id: str, alert: dict[str, Any]) -> str:
    evidence = alert.get("evidence") or {"triggering_events": [], "aggregates": {},
                                         "matches": {}}
    back = f'<p><a href="{_e(customer_href(customer_id))}">← customer {_e(customer_id)}</a></p>'
    sections = [
        back, f"<h1>{_e(alert['rule_id'])}: {_e(alert['summary'])}</h1>",
        _fields({"alert id": alert["alert_id"], "severity": alert["severity"],
                 "triggered at": alert["triggered_at"],
                 "observed": f"{alert['observed_value']} ({alert['measure']})",
                 "threshold": alert["threshold"], "window": alert["window"],
                 "rule set": alert["rule_set_version"]}),
        "<h2>Triggering events</h2>",
        _table(["event", "at", "direction", "USD"],
               [(t["event_id"], t["occurred_at"], t["direction"], t["amount_usd"])
                for t in evidence["triggering_events"]]),
        "<h2>Aggregates</h2>", _fields(evidence["aggregates"]) if evidence["aggregates"]
        else '<p class="note">None.</p>',
        "<h2>List matches</h2>", _fields(evidence["matches"]) if evidence["matches"]
        else '<p class="note">None.</p>',
        "<h2>Decisions</h2>",
        _table(["decided at", "decision", "by", "reason"],
               [(d["decided_at"], d["decision"], d["decided_by"], d["reason"])
                for d in alert["decisions"]]),
    ]
    return _page(f"Alert {alert['alert_id']}", "\n".join(sections))
