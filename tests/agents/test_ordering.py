"""InputAligner: when a held event may go, and in which order."""

import pytest

from agents.ordering import InputAligner

TOPICS = ("onboarding", "transactions")


class Clock:
    def __init__(self) -> None:
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s


@pytest.fixture
def clock() -> Clock:
    return Clock()


def aligner(clock: Clock, highwaters: dict | None = None, committed: int | None = None,
            max_held: int = 1000) -> InputAligner:
    marks = highwaters if highwaters is not None else {}
    return InputAligner(TOPICS, highwater=lambda t, p: marks.get((t, p)),
                        committed=lambda t, p: committed, max_hold_s=2.0, max_held=max_held,
                        clock=clock)


def test_two_waiting_heads_merge_by_event_time(clock):
    a = aligner(clock)
    a.add("transactions", 0, 0, occurred_at_s=50.0, item="deposit")
    a.add("onboarding", 0, 0, occurred_at_s=40.0, item="verified")
    assert a.release() == ["verified"]  # then the deposit is alone again, and waits
    a.add("onboarding", 0, 1, occurred_at_s=60.0, item="profile")
    assert a.release() == ["deposit"]  # "profile" now waits for transactions to pass 60


@pytest.mark.parametrize(("received_next", "highwater", "released"), [
    (5, 5, True),     # everything the other partition has, we have
    (4, 5, False),    # one record still on its way: wait for it
    (None, 0, True),  # the other partition is empty
    (None, 3, False),  # never heard from, records there: wait
])
def test_alone_it_goes_when_the_other_partition_is_caught_up(clock, received_next, highwater,
                                                             released):
    marks = {("transactions", 0): 0}
    a = aligner(clock, highwaters=marks)
    if received_next is not None:
        a.add("onboarding", 0, received_next - 1, occurred_at_s=10.0, item="old")
        assert a.release() == ["old"]  # transactions/0 is empty: caught up
    marks[("onboarding", 0)] = highwater
    a.add("transactions", 0, 0, occurred_at_s=50.0, item="deposit")
    assert (a.release() == ["deposit"]) is released


def test_the_committed_offset_stands_in_for_nothing_received(clock):
    a = aligner(clock, highwaters={("onboarding", 0): 7}, committed=7)
    a.add("transactions", 0, 0, occurred_at_s=50.0, item="deposit")
    assert a.release() == ["deposit"]


def test_unknown_highwater_releases_after_the_hold(clock):
    a = aligner(clock)
    a.add("transactions", 0, 0, occurred_at_s=50.0, item="deposit")
    clock.now_s += 1.9
    assert a.release() == []
    clock.now_s += 0.2
    assert a.release() == ["deposit"]


def test_offset_order_is_kept_within_a_topic_partition(clock):
    """A late event (older event time, later offset) is not moved ahead of earlier offsets:
    the replay check relies on offsets applied in order per partition."""
    a = aligner(clock, highwaters={("onboarding", 0): 0})
    a.add("transactions", 0, 0, occurred_at_s=50.0, item="first")
    a.add("transactions", 0, 1, occurred_at_s=30.0, item="late")
    assert a.release() == ["first", "late"]


def test_a_waiting_partition_does_not_hold_back_another(clock):
    a = aligner(clock)
    a.add("transactions", 0, 0, occurred_at_s=50.0, item="p0")
    a.add("transactions", 1, 0, occurred_at_s=60.0, item="p1")
    a.add("onboarding", 1, 0, occurred_at_s=70.0, item="p1-onboarding")
    assert a.release() == ["p1"]  # p0 waits for onboarding/0, p1's onboarding for more p1
    assert len(a) == 2


def test_memory_bound_releases_the_oldest_first(clock):
    a = aligner(clock, max_held=2)
    for offset, at in enumerate((10.0, 20.0, 30.0)):
        a.add("transactions", 0, offset, occurred_at_s=at, item=at)
    assert a.release() == [10.0]
    assert len(a) == 2


def test_dropping_revoked_partitions_forgets_only_them(clock):
    a = aligner(clock)
    a.add("transactions", 0, 0, occurred_at_s=50.0, item="p0")
    a.add("transactions", 1, 0, occurred_at_s=60.0, item="p1")
    a.drop({0})
    assert len(a) == 1
    clock.now_s += 3  # the hold passes: only p1 is left to release
    assert a.release() == ["p1"]
