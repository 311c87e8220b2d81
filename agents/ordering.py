"""Apply a customer's onboarding and transaction events in event-time order.

Both input topics are keyed by customer and have the same partition count, so partition ``p``
of each holds the same customers and is consumed by the same worker. But Kafka orders records
only within one partition: the consumer may hand us a customer's deposit before the
``kyc_verified`` event that preceded it on the other topic, and the rules would then judge the
deposit against the wrong profile. As in Kafka Streams' timestamp synchronisation, the two
partitions ``p`` are merged by event time: while both have events waiting, the older head goes
first; when only one has, its head waits until the other partition cannot still deliver
anything older:

- it has delivered an event at least as recent (its event-time watermark passed), or
- it is caught up: what we have received from it reaches its high-water mark as last reported
  by the broker (one fetch response carries the marks of every partition on that broker).

While the other partition is known to be behind, the head waits for it, however long: its
records are on their way. When its state is unknown (no mark yet, no position), the head waits
at most ``max_hold_s``; more than ``max_held`` events waiting release the oldest (memory).

Within one topic partition the offset order is kept (the replay check relies on it). Held
events are not acknowledged, so their offsets are not committed until they are applied.
"""

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

TopicPartition = tuple[str, int]


@dataclass(slots=True)
class Held:
    occurred_at_s: float
    arrived_s: float
    topic: str
    item: Any


class InputAligner:
    def __init__(self, topics: tuple[str, str], highwater: Callable[[str, int], int | None],
                 committed: Callable[[str, int], int | None], max_hold_s: float,
                 max_held: int = 200_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.topics = topics
        self.other = {topics[0]: topics[1], topics[1]: topics[0]}
        self.highwater = highwater
        self.committed = committed
        self.max_hold_s = max_hold_s
        self.max_held = max_held
        self.clock = clock
        self.queues: dict[int, dict[str, deque[Held]]] = {}
        self.size = 0
        self.seen_time_s: dict[TopicPartition, float] = {}
        self.seen_next_offset: dict[TopicPartition, int] = {}

    def add(self, topic: str, partition: int, offset: int, occurred_at_s: float,
            item: Any) -> None:
        tp = (topic, partition)
        if occurred_at_s > self.seen_time_s.get(tp, float("-inf")):
            self.seen_time_s[tp] = occurred_at_s
        self.seen_next_offset[tp] = max(offset + 1, self.seen_next_offset.get(tp, 0))
        queues = self.queues.get(partition)
        if queues is None:
            queues = self.queues[partition] = {name: deque() for name in self.topics}
        queues[topic].append(Held(occurred_at_s, self.clock(), topic, item))
        self.size += 1

    def _caught_up(self, tp: TopicPartition) -> bool | None:
        """True or False if known, None if the broker's mark or our position is unknown."""
        highwater = self.highwater(*tp)
        if highwater is None:
            return None
        received = self.seen_next_offset.get(tp)
        if received is None:
            received = self.committed(*tp)
        if received is None:
            return True if highwater == 0 else None
        return received >= highwater

    def _alone_can_go(self, held: Held, other: TopicPartition, other_caught_up: bool | None,
                      now_s: float) -> bool:
        """Whether the head ``held`` goes while ``other`` (not caught up, or not known to
        be) has nothing waiting."""
        if self.seen_time_s.get(other, float("-inf")) >= held.occurred_at_s:
            return True
        if self.size > self.max_held:
            return True
        if other_caught_up is None:
            return now_s - held.arrived_s >= self.max_hold_s
        return False

    def _release_partition(self, partition: int, queues: dict[str, deque[Held]],
                           now_s: float, out: list[Held]) -> None:
        first, second = (queues[name] for name in self.topics)
        while first or second:
            if first and second:
                queue = first if first[0].occurred_at_s <= second[0].occurred_at_s else second
            else:
                queue = first or second
                other = (self.other[queue[0].topic], partition)
                caught_up = self._caught_up(other)
                if caught_up:
                    # Nothing older can come from the other partition now: all of this one
                    # goes (the usual case; checked once, not for every event).
                    out.extend(queue)
                    self.size -= len(queue)
                    queue.clear()
                    return
                if not self._alone_can_go(queue[0], other, caught_up, now_s):
                    return
            out.append(queue.popleft())
            self.size -= 1

    def release(self) -> list[Any]:
        """Items that can be applied now, partition by partition, each in merged order.

        Only the order within a partition matters: it holds every event of its customers."""
        now_s = self.clock()
        released: list[Held] = []
        for partition, queues in self.queues.items():
            self._release_partition(partition, queues, now_s, released)
        return [held.item for held in released]

    def drop(self, partitions: set[int]) -> None:
        """Forget the held events and progress of these partition numbers (both topics)."""
        for partition in partitions:
            queues = self.queues.pop(partition, None)
            if queues is not None:
                self.size -= sum(len(queue) for queue in queues.values())
            for topic in self.topics:
                self.seen_time_s.pop((topic, partition), None)
                self.seen_next_offset.pop((topic, partition), None)

    def __len__(self) -> int:
        return self.size
