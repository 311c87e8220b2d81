"""Ctrl-C ends a long backtest cleanly, with the summary of what was read, whether it runs in
one process or several (every process of the terminal's group gets the signal)."""

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # as in a terminal (a shell's & ignores it)


def _progress(stderr: Path) -> int:
    """Events read so far, from the last progress line (``label: 12,000/350,000 events``)."""
    done = [int(m.replace(",", "")) for m in re.findall(r": ([\d,]+)/[\d,]+ events",
                                                         stderr.read_text())]
    return max(done, default=0)


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_ctrl_c_ends_with_the_partial_summary(tmp_path: Path, jobs: str):
    events = tmp_path / "events.jsonl"
    subprocess.run([sys.executable, "-m", "agents.cli", "demo", "--jsonl", str(events),
                    "--customers", "20000"], check=True, capture_output=True)
    one_copy = len(events.read_bytes().splitlines())
    with events.open("ab") as out:
        out.write(events.read_bytes() * 2)  # ~350,000 events: tens of seconds
    err = (tmp_path / "stderr").open("w+b")
    run = subprocess.Popen([sys.executable, "-m", "agents.cli", "backtest", str(events),
                            "--jobs", jobs], stdout=subprocess.PIPE, stderr=err,
                           start_new_session=True, preexec_fn=_default_sigint)
    # Interrupt once (a job's share of) the first copy is read: its onboarding events come
    # first in the file and wait for the transactions' times (the aligner) before any is
    # applied, so an earlier Ctrl-C could rightly report 0 events.
    deadline = time.monotonic() + 120
    while _progress(tmp_path / "stderr") <= one_copy // int(jobs):  # per job
        assert run.poll() is None and time.monotonic() < deadline, (
            tmp_path / "stderr").read_text()
        time.sleep(0.2)
    started = time.monotonic()
    subprocess.run(["kill", "-INT", "--", f"-{run.pid}"], check=True)
    out, _ = run.communicate(timeout=60)
    stderr = (tmp_path / "stderr").read_text()

    assert run.returncode == 130, stderr
    assert time.monotonic() - started < 30
    assert "interrupted" in stderr and "Traceback" not in stderr, stderr
    summary = out.decode().splitlines()[0]
    read = int(summary.split(":")[1].split("events")[0].replace(",", ""))
    assert 0 < read < len(events.read_bytes().splitlines()), summary
