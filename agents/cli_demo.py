"""``amlstream demo``: a local broker, a worker and a synthetic stream (``agents.demo``)."""

from pathlib import Path

import click

from agents.cli_common import Command


@click.command(
    cls=Command, short_help="Local broker, worker and synthetic stream; alerts as they come.",
    help="Start a fresh local Kafka broker and a worker, feed a synthetic stream with planted "
    "behaviour, and print the alerts as they arrive.")
@click.option("--customers", type=int, default=3000, show_default=True,
              help="Background customers (besides the planted ones).")
@click.option("--keep-running", is_flag=True,
              help="Leave the worker and the broker running at the end (Ctrl-C stops them).")
@click.option("--jsonl", type=click.Path(path_type=Path), default=None, metavar="FILE",
              help="Only write the demo's stream to FILE as JSON Lines (no broker), for "
              "amlstream backtest.")
def demo(customers: int, keep_running: bool, jsonl: Path | None) -> int:
    from agents.demo import run_demo

    return run_demo(customers=customers, keep_running=keep_running, jsonl=jsonl)
