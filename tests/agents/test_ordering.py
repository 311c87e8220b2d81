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


def aligner(clock: Clock, committed: int | None = None, max_held: int = 1000) -> InputAligner:
    return InputAligner(TOPICS, committed=lambda topic, partition: committed, max_hold_s=2.0,
                        max_held=max_held, clock=clock)


def test_released_once_the_other_input_passes_its_event_time(clock):
    a = aligner(clock)
    a.add("transactions", 0, 0, occurred_at_s=50.0, item="deposit")
    assert a.release() == []
    a.add("onboarding", 0, 0, occurred_at_s=40.0, item="verified")
    assert a.release() == ["verified"]  # the deposit still waits: onboarding may go on
    a.add("onboarding", 0, 1, occurred_at_s=60.0, item="profile")
    assert a.release() == ["deposit"]  # "profile" now waits for transactions to pass 60


@pytest.mark.parametrize(("received_next", "highwater", "released"), [
    (5, 5, True),     # everything the other partition has, we have
    (4, 5, False),    # one record still on its way: wait for it
    (None, 0, True),  # the other partition is empty
])
def test_released_when_a_fresh_highwater_shows_the_other_caught_up(clock, received_next,
                                                                   highwater, released):
    a = aligner(clock)
    if received_next is not None:
        a.add("onboarding", 0, received_next - 1, occurred_at_s=10.0, item="old")
        clock.now_s += 3  # released by the hold: nothing is known of transactions/0
        assert a.release() == ["old"]
    a.add("transactions", 0, 0, occurred_at_s=50.0, item="deposit")
    assert a.waiting_on() == {("onboarding", 0)}
    a.update_highwaters({("onboarding", 0): highwater}, asked_at_s=clock())
    assert (a.release() == ["deposit"]) is released


def test_a_highwater_asked_before_the_event_arrived_is_not_trusted(clock):
    a = aligner(clock, committed=0)
    a.update_highwaters({("onboarding", 0): 0}, asked_at_s=clock())
    clock.now_s += 1
    a.add("transactions", 0, 0, occurred_at_s=50.0, item="deposit")
    assert a.release() == []


def test_the_committed_offset_stands_in_for_nothing_received(clock):
    a = aligner(clock, committed=7)
    a.add("transactions", 0, 0, occurred_at_s=50.0, item="deposit")
    a.update_highwaters({("onboarding", 0): 7}, asked_at_s=clock())
    assert a.release() == ["deposit"]


def test_unknown_highwater_releases_after_the_hold(clock):
    a = aligner(clock)
    a.add("transactions", 0, 0, occurred_at_s=50.0, item="deposit")
    clock.now_s += 1.9
    assert a.release() == []
    clock.now_s += 0.2
    assert a.release() == ["deposit"]


def test_a_waiting_partition_does_not_hold_back_another(clock):
    a = aligner(clock)
    a.add("transactions", 0, 0, occurred_at_s=50.0, item="p0")
    a.add("transactions", 1, 0, occurred_at_s=60.0, item="p1")
    a.add("onboarding", 1, 0, occurred_at_s=70.0, item="p1-onboarding")
    assert a.release() == ["p1"]  # p0 waits for onboarding/0, p1's onboarding for more p1
    assert len(a) == 2


def test_memory_bound_releases_the_oldest(clock):
    a = aligner(clock, max_held=2)
    for offset, at in enumerate((30.0, 10.0, 20.0)):
        a.add("transactions", 0, offset, occurred_at_s=at, item=at)
    assert a.release() == [10.0]
    assert len(a) == 2
