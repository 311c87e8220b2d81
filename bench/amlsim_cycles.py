"""Plant AMLSim-style cycles into an AMLSim sample's background, to measure the flow rules on
the cycle typology (docs/evaluation.md, "Cycles planted the AMLSim way").

    python -m bench.amlsim_cycles ../shared/data/amlsim/20K_fanin200 /tmp/amlsim-cycles
    amlstream evaluate --amlsim /tmp/amlsim-cycles

What it writes, deterministic for its options:

- the background: every row of ``transactions.csv`` except those between two accounts the
  sample labels suspicious (its own laundering), every account relabelled normal;
- ``--cycles`` cycles, each of 3 to 6 accounts drawn from the whole sample, as AMLSim's cycle
  model with a fixed interval schedules them: member *i* pays member *i + 1* (the last pays
  the first) one amount, drawn once per cycle between ``--min-value`` and ``--max-value``, at
  step ``start + i * (period // members)``; ``start`` is drawn so the cycle ends by the last
  step of the sample. Every member is labelled suspicious.
"""

import csv
import random
from decimal import Decimal
from pathlib import Path

import click

from streams.amlsim import NODES_FILE, TRANSFERS_FILE


def plant_cycles(source: Path, out: Path, cycles: int, min_value: Decimal,
                 max_value: Decimal, period_steps: int, seed: int) -> int:
    """Write the planted sample to ``out``; return how many accounts are on a cycle."""
    rng = random.Random(seed)
    with (source / NODES_FILE).open(newline="") as file:
        nodes = list(csv.DictReader(file))
    suspicious = {n["nodeid"] for n in nodes if n["isFraud"] == "1"}
    with (source / TRANSFERS_FILE).open(newline="") as file:
        rows = [r for r in csv.DictReader(file)
                if not (r["sourceNodeId"] in suspicious and r["targetNodeId"] in suspicious)]
    last_step = max(int(r["time"]) for r in rows)
    members = rng.sample([n["nodeid"] for n in nodes], cycles * 6)
    planted: set[str] = set()
    for _ in range(cycles):
        size = rng.randint(3, 6)
        loop, members = members[:size], members[size:]
        planted.update(loop)
        start = rng.randint(1, max(1, last_step - period_steps))
        cents = rng.randint(int(min_value * 100), int(max_value * 100))
        value = f"{Decimal(cents) / 100:.2f}"
        interval = period_steps // size
        for i, sender in enumerate(loop):
            rows.append({"sourceNodeId": sender, "targetNodeId": loop[(i + 1) % size],
                         "value": value, "time": str(start + i * interval)})
    rows.sort(key=lambda r: int(r["time"]))  # stable: a step's rows keep their order
    out.mkdir(parents=True, exist_ok=True)
    with (out / NODES_FILE).open("w", newline="") as file:
        writer = csv.DictWriter(file, list(nodes[0]))
        writer.writeheader()
        writer.writerows({**n, "isFraud": "1" if n["nodeid"] in planted else "0"} for n in nodes)
    with (out / TRANSFERS_FILE).open("w", newline="") as file:
        writer = csv.DictWriter(file, ["sourceNodeId", "targetNodeId", "value", "time"])
        writer.writeheader()
        writer.writerows({k: r[k] for k in ("sourceNodeId", "targetNodeId", "value", "time")}
                         for r in rows)
    return len(planted)


@click.command()
@click.argument("source", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option("--cycles", default=200, show_default=True, help="Cycles to plant.")
@click.option("--min-value", default="1000", show_default=True, type=Decimal,
              help="Smallest amount of a cycle (the sample's value unit, USD in evaluate).")
@click.option("--max-value", default="5000", show_default=True, type=Decimal,
              help="Largest amount of a cycle.")
@click.option("--period-steps", default=20, show_default=True,
              help="Steps from a cycle's first payment to its last (a step is a day).")
@click.option("--seed", default=7, show_default=True, help="Random seed.")
def main(source: Path, out: Path, cycles: int, min_value: Decimal, max_value: Decimal,
         period_steps: int, seed: int) -> None:
    """Plant AMLSim-style cycles into SOURCE's background; write the sample to OUT."""
    planted = plant_cycles(source, out, cycles, min_value, max_value, period_steps, seed)
    click.echo(f"{planted} accounts on {cycles} cycles planted; "
               f"now: amlstream evaluate --amlsim {out}")


if __name__ == "__main__":
    main()
