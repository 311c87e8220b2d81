"""Score alerts against per-customer labels: recall, false-positive rate, precision, volume.

Pure. Counts are of customers (a customer with ten alerts of a rule is one hit), except
``alerts`` and ``alerts_per_1000_customers``, which count alerts. Only labelled customers are
scored; alerts on unlabelled customers are counted apart. Rates are exact ``Fraction``s, or
None where the denominator is zero.
"""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from typing import Any

from schemas.alerts import Alert
from streams.labels import SUSPICIOUS, Label

ALL_RULES = "all rules"
NO_TYPOLOGY = "(unspecified)"


def _ratio(numerator: int, denominator: int) -> Fraction | None:
    return Fraction(numerator, denominator) if denominator else None


@dataclass(frozen=True)
class Scores:
    """What one rule (or all rules together) did to the labelled customers."""

    name: str
    alerts: int
    suspicious_alerted: int
    normal_alerted: int
    suspicious: int
    normal: int
    sole_hits: int = 0
    """Suspicious customers alerted by this rule and by no other (per-rule rows only)."""

    @property
    def recall(self) -> Fraction | None:
        return _ratio(self.suspicious_alerted, self.suspicious)

    @property
    def false_positive_rate(self) -> Fraction | None:
        return _ratio(self.normal_alerted, self.normal)

    @property
    def precision(self) -> Fraction | None:
        return _ratio(self.suspicious_alerted, self.suspicious_alerted + self.normal_alerted)

    @property
    def alerts_per_1000_customers(self) -> Fraction | None:
        return _ratio(1000 * self.alerts, self.suspicious + self.normal)


@dataclass(frozen=True)
class TypologyScores:
    typology: str
    suspicious: int
    alerted: int
    hits_per_rule: dict[str, int] = field(default_factory=dict)

    @property
    def recall(self) -> Fraction | None:
        return _ratio(self.alerted, self.suspicious)


@dataclass(frozen=True)
class Evaluation:
    overall: Scores
    per_rule: list[Scores]
    """Most suspicious customers alerted first, then by name."""
    per_typology: list[TypologyScores]
    """Empty when no suspicious customer has a typology."""
    unlabelled_alerts: int
    unlabelled_customers_alerted: int


def _scores(name: str, alerted: dict[str, int], labels: dict[str, Label], suspicious: int,
            sole_hits: int = 0) -> Scores:
    hits = sum(1 for c in alerted if labels[c][0] == SUSPICIOUS)
    return Scores(name, sum(alerted.values()), hits, len(alerted) - hits, suspicious,
                  len(labels) - suspicious, sole_hits)


def _typologies(labels: dict[str, Label],
                rules_of: dict[str, set[str]]) -> list[TypologyScores]:
    members: dict[str, list[str]] = defaultdict(list)
    for customer, (label, typology) in labels.items():
        if label == SUSPICIOUS:
            members[typology or NO_TYPOLOGY].append(customer)
    if set(members) <= {NO_TYPOLOGY}:
        return []
    result = []
    for typology, customers in sorted(members.items()):
        hits: dict[str, int] = defaultdict(int)
        for customer in customers:
            for rule in rules_of.get(customer, ()):
                hits[rule] += 1
        result.append(TypologyScores(typology, len(customers),
                                     sum(1 for c in customers if c in rules_of),
                                     dict(sorted(hits.items()))))
    return result


def evaluate(alerts: Iterable[Alert], labels: dict[str, Label],
             rule_ids: Iterable[str] = ()) -> Evaluation:
    """Score ``alerts``; ``rule_ids`` adds a row for each rule even if it raised nothing."""
    per_rule: dict[str, dict[str, int]] = {rule: {} for rule in rule_ids}
    overall: dict[str, int] = {}
    rules_of: dict[str, set[str]] = defaultdict(set)
    unlabelled: dict[str, int] = defaultdict(int)
    for alert in alerts:
        customer = alert.customer_id
        if customer not in labels:
            unlabelled[customer] += 1
            continue
        rule_counts = per_rule.setdefault(alert.rule_id, {})
        rule_counts[customer] = rule_counts.get(customer, 0) + 1
        overall[customer] = overall.get(customer, 0) + 1
        rules_of[customer].add(alert.rule_id)
    suspicious = sum(1 for label, _ in labels.values() if label == SUSPICIOUS)
    sole: dict[str, int] = defaultdict(int)
    for customer, rules in rules_of.items():
        if len(rules) == 1 and labels[customer][0] == SUSPICIOUS:
            sole[next(iter(rules))] += 1
    rows = [_scores(rule, alerted, labels, suspicious, sole[rule])
            for rule, alerted in per_rule.items()]
    rows.sort(key=lambda s: (-s.suspicious_alerted, -s.alerts, s.name))
    return Evaluation(_scores(ALL_RULES, overall, labels, suspicious), rows,
                      _typologies(labels, rules_of), sum(unlabelled.values()), len(unlabelled))


def percent(rate: Fraction | None) -> str:
    """``12.3%`` (half-even to 0.1%), or ``-`` for no rate."""
    if rate is None:
        return "-"
    exact = Decimal(rate.numerator * 100) / Decimal(rate.denominator)
    return f"{exact.quantize(Decimal('0.1'), ROUND_HALF_EVEN)}%"


def _decimal(rate: Fraction | None, places: str = "0.1") -> str:
    if rate is None:
        return "-"
    exact = Decimal(rate.numerator) / Decimal(rate.denominator)
    return str(exact.quantize(Decimal(places), ROUND_HALF_EVEN))


_HEADER = ("rule", "alerts", "/1k cust", "suspicious alerted", "recall", "normal alerted",
           "FPR", "precision", "sole hits")


def _row(s: Scores, per_rule: bool) -> tuple[str, ...]:
    return (s.name, str(s.alerts), _decimal(s.alerts_per_1000_customers),
            f"{s.suspicious_alerted}/{s.suspicious}", percent(s.recall),
            f"{s.normal_alerted}/{s.normal}", percent(s.false_positive_rate),
            percent(s.precision), str(s.sole_hits) if per_rule else "")


def _table(rows: Sequence[tuple[str, ...]], left: tuple[int, ...] = (0,)) -> list[str]:
    """Columns ``left`` aligned left, the others right."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) if i in left else cell.rjust(w)
                      for i, (cell, w) in enumerate(zip(row, widths, strict=True))).rstrip()
            for row in rows]


def render(evaluation: Evaluation) -> str:
    """The evaluation as a text table (and a per-typology table when there are typologies)."""
    rows = [_HEADER, _row(evaluation.overall, False)]
    rows += [_row(s, True) for s in evaluation.per_rule]
    lines = _table(rows)
    if evaluation.per_typology:
        lines.append("")
        lines += _table([("typology", "suspicious", "alerted", "recall", "hits per rule")] + [
            (t.typology, str(t.suspicious), str(t.alerted), percent(t.recall),
             ", ".join(f"{rule} {n}" for rule, n in t.hits_per_rule.items()) or "-")
            for t in evaluation.per_typology], left=(0, 4))
    if evaluation.unlabelled_alerts:
        lines.append(f"({evaluation.unlabelled_alerts} alerts on "
                     f"{evaluation.unlabelled_customers_alerted} unlabelled customers not scored)")
    return "\n".join(lines) + "\n"


def _rate(rate: Fraction | None, places: str = "0.000001") -> str | None:
    return None if rate is None else _decimal(rate, places)


def _scores_json(s: Scores) -> dict[str, Any]:
    return {"rule": s.name, "alerts": s.alerts, "suspicious": s.suspicious,
            "suspicious_alerted": s.suspicious_alerted, "normal": s.normal,
            "normal_alerted": s.normal_alerted, "sole_hits": s.sole_hits,
            "recall": _rate(s.recall), "false_positive_rate": _rate(s.false_positive_rate),
            "precision": _rate(s.precision),
            "alerts_per_1000_customers": _rate(s.alerts_per_1000_customers, "0.001")}


def as_json(evaluation: Evaluation) -> dict[str, Any]:
    """JSON-ready: counts as integers, rates as decimal strings (null where undefined)."""
    return {
        "overall": _scores_json(evaluation.overall),
        "per_rule": [_scores_json(s) for s in evaluation.per_rule],
        "per_typology": [{"typology": t.typology, "suspicious": t.suspicious,
                          "alerted": t.alerted, "recall": _rate(t.recall),
                          "hits_per_rule": t.hits_per_rule} for t in evaluation.per_typology],
        "unlabelled_alerts": evaluation.unlabelled_alerts,
        "unlabelled_customers_alerted": evaluation.unlabelled_customers_alerted,
    }
