"""``amlstream backtest`` as a user runs it: summary, diff, sweep, jobs, bad input."""

import shutil
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
import yaml

from agents.cli import main
from agents.cli_backtest import _event_time, _in_range
from streams.jsonl import write_events
from streams.synthetic import planted_scenarios

END = datetime(2026, 11, 21, 12, tzinfo=UTC)
CONFIG = Path(__file__).resolve().parents[2] / "config"


@pytest.fixture
def events_file(tmp_path: Path) -> Path:
    events = [(topic, event) for s in planted_scenarios(END) for topic, event in s.events]
    events.sort(key=lambda te: (te[0] != "onboarding", te[1]["occurred_at"]))
    path = tmp_path / "events.jsonl"
    write_events(path, events)
    with path.open("ab") as out:
        out.write(b"{not json\n")  # line len(events) + 1
    return path


def _rules_copy(tmp_path: Path, setting: tuple[str, str, str], value: str) -> Path:
    """The shipped rule file with one setting changed, its lists beside it."""
    directory = tmp_path / "candidate"
    shutil.copytree(CONFIG / "lists", directory / "lists")
    document = yaml.safe_load((CONFIG / "rules.yaml").read_text())
    group, key, name = setting
    document[group][int(key) if key.isdigit() else key][name] = value
    document["version"] = "candidate"
    path = directory / "rules.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def _alert_ids(directory: Path) -> set[str]:
    return {orjson.loads(line)["alert_id"]
            for line in (directory / "alerts.jsonl").read_bytes().splitlines()}


def test_a_run_prints_its_summary_and_writes_its_alerts(events_file, tmp_path, capsys):
    assert main(["backtest", str(events_file), "--out", str(tmp_path / "out"),
                 "--jobs", "1"]) == 0
    printed = capsys.readouterr().out

    assert "alerts per day" in printed and "structuring" in printed
    [run_dir] = (tmp_path / "out").iterdir()
    assert len(_alert_ids(run_dir)) >= 19
    [letter] = [orjson.loads(line) for line in
                (run_dir / "dead-letters.jsonl").read_bytes().splitlines()]
    assert letter["line"] == len(events_file.read_bytes().splitlines())
    assert letter["error_kind"] == "invalid_json"


def test_compare_shows_what_a_lower_threshold_adds(events_file, tmp_path, capsys):
    candidate = _rules_copy(tmp_path, ("tiers", "2", "large_transfer_usd"), "1000")

    assert main(["backtest", str(events_file), "--compare", str(candidate), "--jobs", "1"]) == 0
    printed = capsys.readouterr().out

    diff = printed[printed.index("diff:"):]
    row = next(line.split() for line in diff.splitlines() if line.strip().startswith(
        "large_transfer"))
    assert int(row[1]) == 0 and int(row[2]) > 0  # only under B
    assert "newly alerted under B" in diff


def test_a_sweep_prints_one_row_per_value(events_file, capsys):
    assert main(["backtest", str(events_file), "--jobs", "1",
                 "--sweep", "tiers.2.large_transfer_usd=1000,50000,1000000"]) == 0
    printed = capsys.readouterr().out

    rows = printed[printed.index("sweep of"):].splitlines()[2:5]
    counts = [int(row.split()[1].replace(",", "")) for row in rows]
    assert [row.split()[0] for row in rows] == ["1000", "50000", "1000000"]
    assert counts[0] > counts[1] >= counts[2]


def test_two_jobs_give_the_alerts_of_one(events_file, tmp_path):
    assert main(["backtest", str(events_file), "--jobs", "1", "--out", str(tmp_path / "one")]) == 0
    assert main(["backtest", str(events_file), "--jobs", "2", "--out", str(tmp_path / "two")]) == 0

    [one], [two] = (list((tmp_path / name).iterdir()) for name in ("one", "two"))
    assert _alert_ids(one) == _alert_ids(two) != set()


@pytest.mark.parametrize("args", [["missing.jsonl"], ["{events}", "--rules", "nope.yaml"],
                                  ["{events}", "--sweep", "structuring.nope=1"],
                                  ["{events}", "--sweep", "margin"]])
def test_a_user_error_is_one_line_naming_the_problem(events_file, args, capsys):
    argv = ["backtest", *(a.replace("{events}", str(events_file)) for a in args)]

    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("amlstream backtest: ")
    assert "Traceback" not in "\n".join(err)
    assert any(word in err[-1] for word in ("missing.jsonl", "nope.yaml", "nope", "margin"))


def test_an_unknown_option_is_refused(events_file, capsys):
    assert main(["backtest", str(events_file), "--no-such-option"]) == 2
    err = capsys.readouterr().err
    assert "No such option: --no-such-option" in err and "Traceback" not in err


def test_a_time_that_is_not_iso_8601_is_a_usage_error(events_file, capsys):
    assert main(["backtest", "--topics", "--since", "yesterday"]) == 2
    err = capsys.readouterr().err
    assert "'yesterday' is not an ISO-8601 time" in err and "--since" in err


@pytest.mark.parametrize(("value", "kept"), [
    (b'{"occurred_at": "2026-11-01T00:00:00Z"}', True),
    (b'{"occurred_at": "2026-11-30T23:59:59+00:00"}', True),
    (b'{"occurred_at": "2026-12-01T00:00:00Z"}', False),   # until is excluded
    (b'{"occurred_at": "2026-10-31T23:59:59Z"}', False),
    (b"{not json", True),                                  # dead-lettered, as by the worker
    (b'{"occurred_at": "2026-11-05T00:00:00"}', True),     # naive: dead-lettered too
])
def test_the_event_time_range_of_a_topic_backtest(value, kept):
    since = _event_time("2026-11-01T00:00:00Z")
    until = _event_time("2026-12-01")
    assert _in_range(value, since, until) is kept


def test_a_report_is_written_with_both_runs_and_the_sweep(events_file, tmp_path, capsys):
    candidate = _rules_copy(tmp_path, ("tiers", "2", "large_transfer_usd"), "1000")
    report = tmp_path / "report.html"

    assert main(["backtest", str(events_file), "--compare", str(candidate), "--jobs", "1",
                 "--sweep", "tiers.2.large_transfer_usd=1000,50000", "--report",
                 str(report)]) == 0

    html = report.read_text(encoding="utf-8")
    for figure in ("alerts-per-day-1", "alerts-per-day-2", "sweep-curve"):
        assert f'id="{figure}"' in html
    assert "candidate" in html and "<svg" in html
