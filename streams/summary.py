"""What a backtest shows an analyst: a run's summary, the diff of two runs, a sweep's curve.

Alerts are compared by ``alert_id``, a hash of customer, rule and period (or event) that does
not depend on the rule set, so the same breach under two rule sets is the same alert.
"""

from collections import Counter
from dataclasses import dataclass, field

from schemas.alerts import Alert
from streams.backtest import BacktestResult


@dataclass
class RunSummary:
    label: str
    events: int
    alerts: int
    by_rule_severity: Counter[tuple[str, str]]
    customers_alerted: int
    per_day: Counter[str]
    """UTC day of the alert's event time (``YYYY-MM-DD``) -> alerts."""
    dead_letters: Counter[str]
    risk_changes: int


@dataclass
class RunDiff:
    only_a: Counter[str] = field(default_factory=Counter)
    """rule -> alerts raised under A only."""
    only_b: Counter[str] = field(default_factory=Counter)
    newly_alerted: list[str] = field(default_factory=list)
    """Customers alerted under B and not under A."""
    no_longer_alerted: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SweepPoint:
    value: str
    alerts: int
    customers_alerted: int


def summarize(label: str, result: BacktestResult) -> RunSummary:
    alerts = result.alerts
    return RunSummary(
        label=label,
        events=sum(result.consumed.values()),
        alerts=len(alerts),
        by_rule_severity=Counter((a.rule_id, a.severity.value) for a in alerts),
        customers_alerted=len({a.customer_id for a in alerts}),
        per_day=Counter(a.triggered_at.date().isoformat() for a in alerts),
        dead_letters=Counter(rejected.kind.value for _, rejected in result.rejected),
        risk_changes=len(result.risk_changes),
    )


def diff(a: list[Alert], b: list[Alert]) -> RunDiff:
    ids_a = {alert.alert_id: alert for alert in a}
    ids_b = {alert.alert_id: alert for alert in b}
    customers_a = {alert.customer_id for alert in a}
    customers_b = {alert.customer_id for alert in b}
    return RunDiff(
        only_a=Counter(alert.rule_id for i, alert in ids_a.items() if i not in ids_b),
        only_b=Counter(alert.rule_id for i, alert in ids_b.items() if i not in ids_a),
        newly_alerted=sorted(customers_b - customers_a),
        no_longer_alerted=sorted(customers_a - customers_b),
    )


def render_summary(summary: RunSummary) -> str:
    lines = [f"{summary.label}: {summary.events:,} events, {summary.alerts:,} alerts, "
             f"{summary.customers_alerted:,} customers alerted, "
             f"{summary.risk_changes:,} risk changes"]
    if summary.by_rule_severity:
        lines.append(f"  {'rule':<26} {'severity':<9} {'alerts':>8}")
        lines += [f"  {rule:<26} {severity:<9} {count:>8,}" for (rule, severity), count
                  in sorted(summary.by_rule_severity.items())]
    if summary.per_day:
        days = sorted(summary.per_day.items())
        lines.append(f"  alerts per day ({days[0][0]} .. {days[-1][0]}): "
                     + " ".join(str(count) for _, count in days))
    if summary.dead_letters:
        lines.append("  dead letters: " + ", ".join(
            f"{reason} {count:,}" for reason, count in sorted(summary.dead_letters.items())))
    return "\n".join(lines)


def render_diff(result: RunDiff, label_a: str, label_b: str, show: int = 20) -> str:
    rules = sorted(set(result.only_a) | set(result.only_b))
    lines = [f"diff: {label_a} (A) against {label_b} (B)"]
    if not rules:
        lines.append("  the same alerts")
    else:
        lines.append(f"  {'rule':<26} {'only A':>8} {'only B':>8}")
        lines += [f"  {rule:<26} {result.only_a[rule]:>8,} {result.only_b[rule]:>8,}"
                  for rule in rules]
    for title, customers in (("newly alerted under B", result.newly_alerted),
                             ("no longer alerted under B", result.no_longer_alerted)):
        more = f" (first {show})" if len(customers) > show else ""
        lines.append(f"  {title}: {len(customers):,}{more}"
                     + (": " + ", ".join(customers[:show]) if customers else ""))
    return "\n".join(lines)


def render_sweep(parameter: str, points: list[SweepPoint]) -> str:
    lines = [f"sweep of {parameter}", f"  {'value':>12} {'alerts':>8} {'customers':>10}"]
    lines += [f"  {p.value:>12} {p.alerts:>8,} {p.customers_alerted:>10,}" for p in points]
    return "\n".join(lines)
