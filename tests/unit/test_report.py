"""The backtest's HTML report (agents/report.py): self-contained, escaped, one figure per run
and per sweep, and tables whose counts are right."""

import re
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from html.parser import HTMLParser

import pytest

from agents.report import ReportRun, Sweep, render_report
from agents.settings import Settings
from schemas.alerts import Alert, CustomerSnapshot, Evidence, Severity, TriggeringEvent
from streams.backtest import run_backtest
from streams.ruleset import load_rules
from streams.synthetic import bad_messages

T0 = datetime(2026, 11, 10, 12, tzinfo=UTC)
EVIL = "<script>alert(1)</script>"


def alert(alert_id: str, rule_id: str = "large_transfer", customer_id: str = "c1",
          severity: Severity = Severity.HIGH, at: datetime = T0) -> Alert:
    return Alert(
        alert_id=alert_id, customer_id=customer_id, rule_id=rule_id, rule_set_version="v1",
        severity=severity, triggered_at=at, summary="s", observed_value=Decimal(1),
        threshold=Decimal(1), measure="usd", window=None,
        evidence=Evidence(triggering_events=[TriggeringEvent(
            event_id="e1", occurred_at=at, direction="in", amount_usd=Decimal(1))]),
        customer=CustomerSnapshot(kyc_status="verified", kyc_tier=1, country_of_residence="DE",
                                  nationality="DE", pep=False, sanctions_hit=False,
                                  expected_monthly_volume_usd=None),
    )


class Tables(HTMLParser):
    """Every <table> of a document as rows of cell texts (header row first)."""

    def __init__(self, document: str) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self._cell: list[str] | None = None
        self.feed(document)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def find(self, header: str) -> dict[str, list[str]]:
        """The table whose header row holds ``header``, by first cell (header row: "")."""
        table = next(t for t in self.tables if header in t[0])
        return {"": table[0][1:], **{row[0]: row[1:] for row in table[1:]}}


def figures(document: str) -> list[str]:
    return re.findall(r'<figure id="([^"]+)"', document)


def compare_runs() -> tuple[ReportRun, ReportRun]:
    a = ReportRun("rules A", [
        alert("x1", "large_transfer", "c1"), alert("x2", "large_transfer", "c2"),
        alert("x3", "large_transfer", "c3"), alert("s1", "structuring", "c1"),
        alert("v1", "volume_24h", "c4", Severity.MEDIUM),
    ], {"invalid_json": 2, "unpriced_asset": 1}, events_processed=500)
    b = ReportRun("rules B", [
        alert("x2", "large_transfer", "c2"), alert("x3", "large_transfer", "c3"),
        alert("x4", "large_transfer", "c5"), alert("x5", "large_transfer", "c6"),
        alert("s1", "structuring", "c1"), alert("f1", "fan_in", "c7"),
    ], {}, events_processed=500)
    return a, b


def test_self_contained_no_external_reference() -> None:
    a, b = compare_runs()
    sweep = Sweep("large_transfer", "large_transfer_usd", [(1000, 9, 4), (5000, 3, 2)])
    document = render_report("Backtest", [a, b], sweep)
    assert document.startswith("<!DOCTYPE html>")
    lowered = document.lower()
    assert "http://" not in lowered and "https://" not in lowered
    assert "<script" not in lowered
    assert "<link" not in lowered
    assert "@import" not in lowered
    assert not re.search(r'\s(src|href)="(?!data:|#)', lowered)
    assert "url(" not in re.sub(r"url\(#", "", lowered)
    assert lowered.count("<svg") == 3


def test_user_data_is_escaped() -> None:
    evil_run = ReportRun(f"label {EVIL}", [alert("a1", rule_id=f"rule {EVIL}",
                                                 customer_id=EVIL)],
                         {f"reason {EVIL}": 3}, events_processed=1)
    sweep = Sweep(f"rule {EVIL}", f"param {EVIL}", [(1, 1, 1)])
    document = render_report(f"title {EVIL}", [evil_run, evil_run], sweep)
    assert "<script" not in document.lower()
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert f"<title>title {escaped}</title>" in document
    assert f"<h1>title {escaped}</h1>" in document
    assert f"label {escaped}" in document
    assert f"<td>rule {escaped}</td>" in document
    assert f"<td>reason {escaped}</td>" in document
    assert f"param {escaped}" in document


@pytest.mark.parametrize(("runs", "with_sweep", "expected"), [
    (1, False, ["alerts-per-day-1"]),
    (2, False, ["alerts-per-day-1", "alerts-per-day-2"]),
    (2, True, ["alerts-per-day-1", "alerts-per-day-2", "sweep-curve"]),
    (1, True, ["alerts-per-day-1", "sweep-curve"]),
    (0, True, ["sweep-curve"]),
])
def test_one_figure_per_run_and_per_sweep(runs: int, with_sweep: bool,
                                          expected: list[str]) -> None:
    sweep = Sweep("structuring", "margin_pct", [(10, 5, 2)]) if with_sweep else None
    document = render_report("r", list(compare_runs()[:runs]), sweep)
    assert figures(document) == expected
    for body in re.findall(r"<figure [^>]*>(.*?)</figure>", document, flags=re.S):
        assert re.search(r"<svg [^>]*viewBox=", body)
        assert re.search(r"<figcaption>[^<]+</figcaption>", body)


def test_a_run_without_alerts_still_has_its_figure() -> None:
    document = render_report("r", [ReportRun("empty", [], {}, 10)])
    assert figures(document) == ["alerts-per-day-1"]
    assert "No alerts." in document and "No dead letters." in document


def test_nothing_to_report_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one run"):
        render_report("r", [])


def test_compare_diff_table_counts() -> None:
    a, b = compare_runs()
    diff = Tables(render_report("r", [a, b])).find("only under A")
    assert diff[""] == ["alerts A", "alerts B", "only under A", "only under B", "in both"]
    assert diff["large_transfer"] == ["3", "4", "1", "2", "2"]
    assert diff["structuring"] == ["1", "1", "0", "0", "1"]
    assert diff["volume_24h"] == ["1", "0", "1", "0", "0"]
    assert diff["fan_in"] == ["0", "1", "0", "1", "0"]
    assert diff["all rules"] == ["5", "6", "2", "3", "3"]


def test_no_diff_table_for_one_run() -> None:
    document = render_report("r", [compare_runs()[0]])
    assert "only under A" not in document


def test_summary_counts_by_rule_severity_and_dead_letters() -> None:
    run = ReportRun("r", [
        alert("1", "large_transfer", "c1", Severity.HIGH),
        alert("2", "large_transfer", "c1", Severity.CRITICAL),
        alert("3", "large_transfer", "c2", Severity.HIGH),
        alert("4", "volume_24h", "c3", Severity.MEDIUM),
    ], {"schema_violation": 4, "invalid_json": 1}, events_processed=77)
    assert run.customers_alerted == 3
    tables = Tables(render_report("r", [run]))
    by_rule = tables.find("critical")
    assert by_rule[""] == ["low", "medium", "high", "critical", "alerts", "customers"]
    assert by_rule["large_transfer"] == ["0", "0", "2", "1", "3", "2"]
    assert by_rule["volume_24h"] == ["0", "1", "0", "0", "1", "1"]
    assert by_rule["all rules"] == ["0", "1", "2", "1", "4", "3"]
    dead = tables.find("reason")
    assert dead["schema_violation"] == ["4"] and dead["invalid_json"] == ["1"]
    assert dead["all reasons"] == ["5"]
    document = render_report("r", [run])
    assert "<dt>events processed</dt><dd>77</dd>" in document
    assert "<dt>customers alerted</dt><dd>3</dd>" in document


def test_sweep_table_sorted_by_value_and_decimal_values() -> None:
    sweep = Sweep("structuring", "margin_pct",
                  [(Decimal("15"), 20, 9), (Decimal("5"), 3, 1), (Decimal("7.5"), 8, 3)])
    table = Tables(render_report("r", [], sweep)).find("customers alerted")
    assert list(table) == ["", "5", "7.5", "15"]
    assert table["7.5"] == ["8", "3"]


def test_from_backtest_counts_dead_letters_by_reason() -> None:
    end = datetime(2026, 11, 21, tzinfo=UTC)
    bad = bad_messages(end)
    result = run_backtest(((m.topic, m.key, m.value) for m, _ in bad),
                          load_rules(Settings().rules_path))
    run = ReportRun.from_backtest("bad", result)
    expected: dict[str, int] = {}
    for _, kind in bad:
        expected[kind] = expected.get(kind, 0) + 1
    assert run.dead_letters == expected
    assert run.events_processed == 0 and list(run.alerts) == []


def test_days_are_utc_days_of_event_time() -> None:
    # 23:30 at UTC-2 is 01:30 UTC the next day: the plot spans two UTC days, not one.
    late = datetime(2026, 11, 10, 23, 30, tzinfo=timezone(timedelta(hours=-2)))
    one_day = render_report("r", [ReportRun("r", [alert("1", at=T0), alert("2", at=T0)])])
    two_days = render_report("r", [ReportRun("r", [alert("1", at=T0), alert("2", at=late)])])
    # One bar per rule of the report and day; matplotlib writes each bar as one patch.
    assert two_days.count('id="patch_') - one_day.count('id="patch_') == 1
