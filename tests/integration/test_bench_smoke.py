"""The benchmarks still run end to end (tiny sizes; no speed is asserted: speed is measured by
running the benchmark, never by a timed test)."""

import re

import pytest

from bench import instructions
from bench.run import main

pytestmark = pytest.mark.integration


def test_benchmark_runs_prints_its_table_and_records_it(capsys, tmp_path):
    history = tmp_path / "performance.md"
    history.write_text("# Performance\n\nIntro.\n\n## an older run\n\nold table\n")
    assert main(["--events", "3000", "--customers", "300", "--partitions", "4",
                 "--rate", "500", "--latency-seconds", "3", "--warm-up-seconds", "1",
                 "--record", str(history)]) == 0
    table = capsys.readouterr().out
    for row in ("baseline", "core alone", "worker (all rules", "event-to-alert latency",
                "the worker's send of the alert", "plain consumer", "first 1 s, apart (warm-up)",
                "peak RSS", "RSS over the", "state per customer"):
        assert row in table, table
    recorded = history.read_text()
    assert recorded.startswith("# Performance\n\nIntro.\n\n## ")
    assert "`python -m bench --events 3000" in recorded and "state per customer" in recorded
    assert recorded.index("state per customer") < recorded.index("## an older run")


def test_instruction_count_runs_and_prints_decode_and_apply(capsys):
    assert instructions.main(["--events", "300", "--customers", "60"]) == 0
    table = capsys.readouterr().out
    counts = {name: int(value.replace(",", "")) for name, value in
              re.findall(r"^  (decode|apply|total) +([\d,]+)$", table, re.MULTILINE)}
    assert set(counts) == {"decode", "apply", "total"}, table
    # A transaction costs the interpreter thousands of instructions; fewer means the runs
    # were not told apart (the differences would be noise around zero).
    assert counts["decode"] > 1000 and counts["apply"] > 1000, table
    assert counts["total"] == counts["decode"] + counts["apply"], table


def test_a_warm_up_as_long_as_the_latency_run_is_refused(capsys):
    with pytest.raises(SystemExit) as refused:
        main(["--latency-seconds", "2", "--warm-up-seconds", "2"])
    assert refused.value.code == 2
    assert "--warm-up-seconds must be" in capsys.readouterr().err
