"""The backtest's HTML report: one self-contained file an analyst opens in a browser.

API (all in this module)::

    render_report(title, runs, sweep=None) -> str     # the whole HTML document

- ``ReportRun(label, alerts, dead_letters={}, events_processed=0)``: one backtest run;
  ``label`` names it (the rule-set version or file name), ``alerts`` are its
  :class:`schemas.alerts.Alert` objects, ``dead_letters`` counts inputs that would be
  dead-lettered by reason (``invalid_json``...). ``customers_alerted`` is derived from the
  alerts. ``ReportRun.from_backtest(label, result)`` builds one from a
  :class:`streams.backtest.BacktestResult`.
- ``Sweep(rule_id, parameter, points)``: one rule parameter tried at several values;
  ``points`` are ``(value, alerts, customers alerted)`` tuples, in any order.

What the report holds, for each run: a summary (events processed, alerts, customers alerted,
dead letters), alerts by rule and severity, dead letters by reason, and a figure of alerts per
rule per UTC day of event time (``triggered_at``), stacked by rule. With two runs (a compare)
the two figures stand side by side on one scale with one colour per rule, followed by a diff
table per rule: alerts only under A, only under B (alerts are matched by ``alert_id``, which
names customer, rule and period, not the rule-set version), and in both. With a sweep, a
figure of alerts and customers alerted against the parameter's value, and its table.

Every figure is a ``<figure id=...>`` with a ``<figcaption>`` and an inline ``<svg>``
(matplotlib, no pyplot, text drawn as paths so it reads the same without any font installed).
Figure ids: ``alerts-per-day-1``, ``alerts-per-day-2``... (one per run, in order), and
``sweep-curve``. No script, no stylesheet or image from elsewhere, no ``http(s)://`` reference;
every label, rule id and reason is HTML-escaped.
"""

from __future__ import annotations

import io
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

import matplotlib
from matplotlib import dates as mdates
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from schemas.alerts import Alert, Severity
from streams.html_doc import BASE_CSS, escape, page, table

if TYPE_CHECKING:
    from streams.backtest import BacktestResult

__all__ = ["ReportRun", "Sweep", "render_report"]

SEVERITIES = (Severity.LOW, Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL)


@dataclass(frozen=True)
class ReportRun:
    """One backtest run as the report shows it."""

    label: str
    alerts: Sequence[Alert]
    dead_letters: Mapping[str, int] = field(default_factory=dict)
    """Inputs that would be dead-lettered, by reason (the dead letter's error kind)."""
    events_processed: int = 0

    @property
    def customers_alerted(self) -> int:
        return len({alert.customer_id for alert in self.alerts})

    @classmethod
    def from_backtest(cls, label: str, result: BacktestResult) -> ReportRun:
        reasons = Counter(rejected.kind.value for _, rejected in result.rejected)
        return cls(label, list(result.alerts), dict(reasons), result.events_applied)


@dataclass(frozen=True)
class Sweep:
    """Alerts and customers alerted for one rule parameter at several values."""

    rule_id: str
    parameter: str
    points: Sequence[tuple[float | Decimal, int, int]]
    """(parameter value, alerts, customers alerted)."""


def render_report(title: str, runs: Sequence[ReportRun], sweep: Sweep | None = None) -> str:
    """The whole report as one HTML document (a ``str``; write it with UTF-8)."""
    if not runs and sweep is None:
        raise ValueError("a report needs at least one run or a sweep")
    rules = sorted({alert.rule_id for run in runs for alert in run.alerts})
    colours = _rule_colours(rules)
    days = _day_range(runs)
    ymax = max((max(_daily(run).values(), default=0) for run in runs), default=0)
    body: list[str] = [f"<h1>{_e(title)}</h1>"]
    if len(runs) == 2:
        a, b = runs
        body.append(f'<p class="lead">Compare: <b>A</b> = {_e(a.label)}, '
                    f'<b>B</b> = {_e(b.label)}.</p>')
    # Summaries in one row, figures in the next, so that a compare's two figures line up.
    body.append('<div class="runs">')
    body += [f'<section class="run">{_run_summary(number, run, runs)}</section>'
             for number, run in enumerate(runs, 1)]
    body.append('</div>\n<div class="runs">')
    body += [f'<div class="run">{_run_figure(number, run, days, colours, ymax)}</div>'
             for number, run in enumerate(runs, 1)]
    body.append("</div>")
    if len(runs) == 2:
        body.append(_diff_section(runs[0], runs[1]))
    if sweep is not None:
        body.append(_sweep_section(sweep))
    return page(title, "\n".join(body), _CSS)


_CSS = BASE_CSS + """\
.runs { display: flex; flex-wrap: wrap; gap: 2em; }
.run { flex: 1 1 540px; min-width: 0; }
figure { margin: 1em 0; }
figure svg { display: block; width: 100%; max-width: 820px; height: auto; }
figcaption { color: #444; font-size: .92em; margin-top: .3em; }
"""

_e = escape
_table = table


def _utc_day(alert: Alert) -> date:
    return alert.triggered_at.astimezone(UTC).date()


def _daily(run: ReportRun) -> Counter[date]:
    return Counter(_utc_day(alert) for alert in run.alerts)


def _day_range(runs: Sequence[ReportRun]) -> list[date]:
    """Every UTC day from the first alert of any run to the last (one shared axis)."""
    days = {_utc_day(alert) for run in runs for alert in run.alerts}
    if not days:
        return []
    first, last = min(days), max(days)
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def _rule_colours(rules: list[str]) -> dict[str, tuple[float, float, float, float]]:
    """One colour per rule, the same in every figure (tab20, then tab20b if more rules)."""
    cmaps = [matplotlib.colormaps["tab20"], matplotlib.colormaps["tab20b"]]
    palette = [cmap(i) for cmap in cmaps for i in range(cmap.N)]
    return {rule: palette[i % len(palette)] for i, rule in enumerate(rules)}


def _run_summary(number: int, run: ReportRun, runs: Sequence[ReportRun]) -> str:
    name = f"{'AB'[number - 1]}: " if len(runs) == 2 else ""
    dead_total = sum(run.dead_letters.values())
    parts = [
        f"<h2>{_e(name)}{_e(run.label)}</h2>",
        '<dl class="totals">',
        f"<dt>events processed</dt><dd>{run.events_processed}</dd>",
        f"<dt>alerts</dt><dd>{len(run.alerts)}</dd>",
        f"<dt>customers alerted</dt><dd>{run.customers_alerted}</dd>",
        f"<dt>dead letters</dt><dd>{dead_total}</dd>",
        "</dl>",
        "<h3>Alerts by rule and severity</h3>",
    ]
    by_rule_severity = Counter((alert.rule_id, alert.severity) for alert in run.alerts)
    customers: dict[str, set[str]] = {}
    for alert in run.alerts:
        customers.setdefault(alert.rule_id, set()).add(alert.customer_id)
    rows: list[list[object]] = []
    for rule in sorted(customers):
        counts = [by_rule_severity[(rule, severity)] for severity in SEVERITIES]
        rows.append([rule, *counts, sum(counts), len(customers[rule])])
    if rows:
        foot: list[object] = ["all rules"]
        foot += [sum(by_rule_severity[(r, s)] for r in customers) for s in SEVERITIES]
        foot += [len(run.alerts), run.customers_alerted]
        parts.append(_table(["rule", *(s.value for s in SEVERITIES), "alerts", "customers"],
                            rows, foot))
    else:
        parts.append("<p>No alerts.</p>")
    parts.append("<h3>Dead letters by reason</h3>")
    if dead_total:
        dead_rows = [[reason, count] for reason, count in sorted(run.dead_letters.items())]
        parts.append(_table(["reason", "inputs"], dead_rows, ["all reasons", dead_total]))
    else:
        parts.append("<p>No dead letters.</p>")
    return "\n".join(parts)


def _svg(figure: Figure, salt: str) -> str:
    """The figure as an ``<svg>`` element to put in HTML: no XML prolog, metadata or
    namespace URLs (an HTML parser needs none), ids unique to this figure."""
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "path", "svg.hashsalt": salt}):
        figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None,
                                                      "Format": None, "Type": None})
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.S)
    svg = re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", svg)
    return svg.strip()


def _figure(figure_id: str, svg: str, caption: str) -> str:
    return (f'<figure id="{figure_id}">\n{svg}\n'
            f"<figcaption>{caption}</figcaption>\n</figure>")


def _run_figure(number: int, run: ReportRun, days: list[date],
                colours: Mapping[str, tuple[float, float, float, float]], ymax: int) -> str:
    figure_id = f"alerts-per-day-{number}"
    fig = Figure(figsize=(6.4, 6.0), layout="constrained")
    ax = fig.add_subplot()
    counts = Counter((alert.rule_id, _utc_day(alert)) for alert in run.alerts)
    per_rule = Counter(alert.rule_id for alert in run.alerts)
    if days and run.alerts:
        x = [float(mdates.date2num(  # type: ignore[no-untyped-call]
            datetime(d.year, d.month, d.day, tzinfo=UTC))) for d in days]
        bottom = [0] * len(days)
        # Every rule of the report in the legend (with this run's count), so that the figures
        # of a compare have the same layout, colours and scale.
        # Only non-empty bars are drawn (a long run would otherwise write rules x days paths).
        for rule, colour in colours.items():
            heights = [counts[(rule, d)] for d in days]
            drawn = [i for i, height in enumerate(heights) if height]
            ax.bar([x[i] for i in drawn], [heights[i] for i in drawn], width=0.8,
                   bottom=[bottom[i] for i in drawn], color=colour,
                   label=f"{rule} ({per_rule[rule]})", align="center")
            bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
        locator = mdates.AutoDateLocator(minticks=3, maxticks=10)  # type: ignore[no-untyped-call]
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(
            mdates.ConciseDateFormatter(locator, tz=UTC))  # type: ignore[no-untyped-call]
        ax.set_xlim(x[0] - 0.6, x[-1] + 0.6)  # date numbers are in days
        ax.set_ylim(0, max(ymax, 1) * 1.08)
        fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", fontsize=9,
                   frameon=False, ncols=2 if len(colours) > 4 else len(colours))
    else:
        ax.text(0.5, 0.5, "no alerts", ha="center", va="center", fontsize=14,
                transform=ax.transAxes, color="#777")
        ax.set_xticks([])
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("alerts per day")
    ax.set_xlabel("day of event time (UTC)")
    ax.grid(axis="y", color="#dddddd", linewidth=0.8)
    ax.set_axisbelow(True)
    ax.set_title(_short(run.label), fontsize=11, loc="left")
    svg = _svg(fig, salt=figure_id)
    caption = (f"Alerts per rule per UTC day of event time, stacked by rule: "
               f"{_e(run.label)} ({len(run.alerts)} alerts, {run.customers_alerted} "
               f"customers).")
    return _figure(figure_id, svg, caption)


def _short(text: str, limit: int = 70) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _diff_section(a: ReportRun, b: ReportRun) -> str:
    ids_a: dict[str, set[str]] = {}
    ids_b: dict[str, set[str]] = {}
    for alerts, ids in ((a.alerts, ids_a), (b.alerts, ids_b)):
        for alert in alerts:
            ids.setdefault(alert.rule_id, set()).add(alert.alert_id)
    rows: list[list[object]] = []
    totals = [0] * 5
    for rule in sorted(ids_a.keys() | ids_b.keys()):
        in_a, in_b = ids_a.get(rule, set()), ids_b.get(rule, set())
        row = [len(in_a), len(in_b), len(in_a - in_b), len(in_b - in_a), len(in_a & in_b)]
        totals = [t + v for t, v in zip(totals, row, strict=True)]
        rows.append([rule, *row])
    parts = [
        "<h2>Difference per rule</h2>",
        f"<p>A = {_e(a.label)}, B = {_e(b.label)}. Alerts are matched by alert id (customer, "
        "rule and period), so an alert the two rule sets both raise counts as in both.</p>",
    ]
    if rows:
        parts.append(_table(["rule", "alerts A", "alerts B", "only under A", "only under B",
                             "in both"], rows, ["all rules", *totals]))
    else:
        parts.append("<p>No alerts under either.</p>")
    return f'<section class="diff">{"".join(parts)}</section>'


def _sweep_section(sweep: Sweep) -> str:
    points = sorted((float(value), alerts, customers)
                    for value, alerts, customers in sweep.points)
    fig = Figure(figsize=(6.4, 4.0), layout="constrained")
    ax = fig.add_subplot()
    if points:
        xs = [p[0] for p in points]
        ax.plot(xs, [p[1] for p in points], marker="o", color="#1f77b4", label="alerts")
        ax.plot(xs, [p[2] for p in points], marker="s", color="#d62728",
                label="customers alerted")
        ax.legend(frameon=False)
        ax.set_ylim(bottom=0)
    else:
        ax.text(0.5, 0.5, "no points", ha="center", va="center", transform=ax.transAxes)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(_short(f"{sweep.rule_id}: {sweep.parameter}"))
    ax.set_ylabel("count")
    ax.grid(color="#dddddd", linewidth=0.8)
    ax.set_axisbelow(True)
    figure_id = "sweep-curve"
    caption = (f"Alerts and customers alerted by rule {_e(sweep.rule_id)} against its "
               f"parameter {_e(sweep.parameter)}.")
    rows = [[_number(value), alerts, customers] for value, alerts, customers in points]
    return (f'<section class="sweep"><h2>Sweep: {_e(sweep.rule_id)} / '
            f"{_e(sweep.parameter)}</h2>"
            f"{_figure(figure_id, _svg(fig, salt=figure_id), caption)}"
            f"{_table([sweep.parameter, 'alerts', 'customers alerted'], rows)}</section>")


def _number(value: float) -> str:
    return f"{value:g}"
