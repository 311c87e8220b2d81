"""AMLSim-style cycles planted into a sample's background (``bench.amlsim_cycles``): the rows
and labels it writes, and the flow rules alerting every customer on each cycle."""

import csv
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

from bench.amlsim_cycles import plant_cycles
from streams.amlsim import AmlsimOptions, events, read_sample
from streams.backtest import run_backtest

ACCOUNTS = 40


def background(tmp_path: Path) -> Path:
    """40 accounts; 0 and 1 labelled suspicious, with one row between them (their laundering)
    and one each with an ordinary account; a few small ordinary rows."""
    source = tmp_path / "source"
    source.mkdir()
    nodes = ["nodeid,isFraud,init_balance,fraudStep"]
    nodes += [f"{n},{1 if n < 2 else 0},100.00,-1" for n in range(ACCOUNTS)]
    rows = ["sourceNodeId,targetNodeId,value,time", "0,1,4.50,3", "0,7,120.00,4",
            "8,1,130.00,5"]
    rows += [f"{n},{(n * 7) % ACCOUNTS},{50 + n}.00,{n % 30 + 1}" for n in range(2, ACCOUNTS)]
    (source / "nodes.csv").write_text("\n".join(nodes) + "\n", encoding="utf-8")
    (source / "transactions.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return source


def read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


def test_rows_and_labels(tmp_path):
    out = tmp_path / "out"
    planted = plant_cycles(background(tmp_path), out, 4, Decimal("1000"), Decimal("5000"), 20, 7)
    labels = {n["nodeid"]: n["isFraud"] for n in read(out / "nodes.csv")}
    members = {k for k, v in labels.items() if v == "1"}
    assert len(labels) == ACCOUNTS and len(members) == planted and 12 <= planted <= 24
    rows = read(out / "transactions.csv")
    pairs = [(r["sourceNodeId"], r["targetNodeId"]) for r in rows]
    assert ("0", "1") not in pairs  # the sample's own laundering, between two labelled accounts
    assert ("0", "7") in pairs and ("8", "1") in pairs  # their other rows stay
    assert [int(r["time"]) for r in rows] == sorted(int(r["time"]) for r in rows)
    cycle_rows = [r for r in rows if Decimal(r["value"]) >= 1000]
    assert len(cycle_rows) == planted
    by_value = defaultdict(list)
    for r in cycle_rows:
        by_value[r["value"]].append(r)
    assert len(by_value) == 4
    for loop in by_value.values():  # each cycle: one amount, every member sends once, receives once
        senders = [r["sourceNodeId"] for r in loop]
        assert sorted(senders) == sorted(r["targetNodeId"] for r in loop)
        assert len(set(senders)) == len(loop) and 3 <= len(loop) <= 6
        steps = [int(r["time"]) for r in loop]
        assert max(steps) - min(steps) < 20 and max(steps) <= 34
    again = tmp_path / "again"
    plant_cycles(tmp_path / "source", again, 4, Decimal("1000"), Decimal("5000"), 20, 7)
    assert (again / "transactions.csv").read_bytes() == (out / "transactions.csv").read_bytes()


def test_every_customer_on_a_planted_cycle_alerts(tmp_path, default_rules):
    """Through the AMLSim converter and the backtest with the shipped rules: flow_cycle alerts
    every member of every cycle (found at one, told to the others), and no one else."""
    out = tmp_path / "out"
    plant_cycles(background(tmp_path), out, 4, Decimal("1000"), Decimal("5000"), 20, 7)
    members = {f"amlsim-{n['nodeid']}" for n in read(out / "nodes.csv") if n["isFraud"] == "1"}
    result = run_backtest(list(events(read_sample(out), AmlsimOptions())), default_rules)
    cycle = {a.customer_id for a in result.alerts if a.rule_id == "flow_cycle"}
    assert cycle == members
    found = [a for a in result.alerts if a.rule_id == "flow_cycle"
             and "found_at" not in a.evidence.matches]
    assert len(found) == 4  # one finder per cycle
