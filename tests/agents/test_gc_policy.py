"""The worker's garbage-collector policy (``agents.gc_policy``)."""

import gc

from agents import gc_policy


class _Node:
    def __init__(self) -> None:
        self.other: object = None


def test_the_worker_runs_without_the_automatic_collector_and_frees_cycles_on_schedule():
    was_enabled = gc.isenabled()
    try:
        gc_policy.tune()
        assert not gc.isenabled()

        a, b = _Node(), _Node()
        a.other, b.other = b, a  # a reference cycle: reference counting cannot free it
        del a, b
        freed, seconds = gc_policy.collect_all()

        assert freed >= 2
        assert seconds >= 0
    finally:
        gc.unfreeze()
        if was_enabled:
            gc.enable()
