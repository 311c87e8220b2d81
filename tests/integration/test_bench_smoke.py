"""The benchmark still runs end to end (tiny sizes; its figures are not asserted: speed is
measured by running the benchmark, never by a timed test)."""

import pytest

from bench.run import main

pytestmark = pytest.mark.integration


def test_benchmark_runs_and_prints_its_table(capsys):
    assert main(["--events", "3000", "--customers", "300", "--partitions", "4",
                 "--rate", "500", "--latency-seconds", "3"]) == 0
    table = capsys.readouterr().out
    for row in ("baseline", "core alone", "worker (all rules", "event-to-alert latency",
                "the worker's send of the alert", "plain consumer", "peak RSS", "RSS over the",
                "state per customer"):
        assert row in table, table
