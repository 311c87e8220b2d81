"""Instructions per event of the core, counted by valgrind (callgrind), not timed.

    python -m bench.instructions [--events 20000] [--customers 5000]

On a shared machine the seconds of one run move by a third from one run to the next (the same
pure-Python loop took 0.32-0.48 s in five runs on an idle machine here), which hides a change
of 10-20% in the core. The number of instructions the CPU executes for the same program, input
and environment does not move: two versions of the core compare exactly. Three processes run
the same workload under callgrind (in parallel), one stopping after the set-up, one after
decoding the transactions, one after applying them too; the differences, per transaction,
are the cost of decode and of apply. Slower than a timed run (~1 minute for the defaults).
"""

import argparse
import os
import re
import subprocess
import sys
from datetime import UTC, datetime

from agents import gc_policy
from agents.settings import Settings
from bench.workload import build
from streams.backtest import ONBOARDING, PARTITIONS, TRANSACTIONS, place, prepare
from streams.replay import StepOutcome
from streams.ruleset import load_rules

STAGES = ("set-up", "decode", "apply")
END = datetime(2026, 11, 1, tzinfo=UTC)
"""A fixed end time: the same events in every run."""


def run_stage(stage: str, events: int, customers: int) -> None:
    """The workload through the replay path (``streams.replay``) up to ``stage``, what each
    callgrind run executes: set-up (the onboarding applied, the transactions placed), decode
    (and queue for ordering) the transactions, apply them."""
    workload = build(events, customers, END)
    rules = load_rules(Settings().rules_path)
    gc_policy.tune()  # as in the worker
    records = place([*((ONBOARDING, key, raw) for key, raw in workload.onboarding),
                     *((TRANSACTIONS, key, raw) for key, raw in workload.transactions)])
    replay = prepare(records, rules, PARTITIONS, {})
    transfers = [record for record in records if record.topic == TRANSACTIONS]
    replay.admit([record for record in records if record.topic == ONBOARDING], StepOutcome())
    replay.apply_released(StepOutcome())
    if stage == "set-up":
        return
    replay.admit(transfers, StepOutcome())
    if stage == "apply":
        replay.apply_released(StepOutcome())


def count(events: int, customers: int) -> dict[str, int]:
    """Instructions executed by each stage's run."""
    environment = dict(os.environ, PYTHONHASHSEED="0")  # hashing, hence dict layouts, fixed
    runs = {stage: subprocess.Popen(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
         "-m", "bench.instructions", "--stage", stage, "--events", str(events),
         "--customers", str(customers)],
        stderr=subprocess.PIPE, text=True, env=environment) for stage in STAGES}
    totals = {}
    for stage, process in runs.items():
        _, log = process.communicate()
        found = re.search(r"Collected : (\d+)", log)
        if process.returncode != 0 or found is None:
            raise RuntimeError(f"callgrind run of {stage!r} failed:\n{log[-2000:]}")
        totals[stage] = int(found.group(1))
    return totals


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000, help="transactions")
    parser.add_argument("--customers", type=int, default=5_000)
    parser.add_argument("--stage", choices=STAGES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.stage is not None:
        run_stage(args.stage, args.events, args.customers)
        return 0
    totals = count(args.events, args.customers)
    decode = round((totals["decode"] - totals["set-up"]) / args.events)
    applied = round((totals["apply"] - totals["decode"]) / args.events)
    print(f"core instructions per transaction ({args.events:,} transactions, "
          f"{args.customers:,} customers, valgrind callgrind)")
    print(f"  decode  {decode:>10,}")
    print(f"  apply   {applied:>10,}")
    print(f"  total   {decode + applied:>10,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
