"""Apply a customer's onboarding and transaction events in event-time order.

Both input topics are keyed by customer and have the same partition count, so partition ``p``
of each holds the same customers and is consumed by the same worker. But Kafka orders records
only within one partition: the consumer may hand us a customer's deposit before the
``kyc_verified`` event that preceded it on the other topic, and the rules would then judge the
deposit against the wrong profile. As in Kafka Streams' timestamp synchronisation, an event is
held until the *other* input's partition ``p`` cannot still deliver anything older:

- it has delivered an event at least as recent (its event-time watermark passed), or
- it is caught up: its high-water mark, asked for after the held event arrived, is no further
  than what we have received (or, if we have received nothing from it yet, than the offset
  this consumer group had committed on it), or
- the broker could not tell us for ``max_hold_s`` (a safety net), or more than
  ``max_held`` events are waiting (a memory bound; the oldest go first).

While the other partition is known to be behind, events wait for it however long that takes:
its records are on their way. Released events come out in event-time order. Held events are
not acknowledged, so their offsets are not committed until they are applied.
"""

import heapq
import itertools
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

TopicPartition = tuple[str, int]


@dataclass(order=True)
class Held:
    occurred_at_s: float
    sequence: int
    arrived_s: float = field(compare=False)
    topic: str = field(compare=False)
    partition: int = field(compare=False)
    item: Any = field(compare=False)


class InputAligner:
    def __init__(self, topics: tuple[str, str], committed: Callable[[str, int], int | None],
                 max_hold_s: float, max_held: int = 200_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.other = {topics[0]: topics[1], topics[1]: topics[0]}
        self.committed = committed
        self.max_hold_s = max_hold_s
        self.max_held = max_held
        self.clock = clock
        self.held: dict[int, list[Held]] = {}
        """Per partition number, a heap of held events in event-time order."""
        self.size = 0
        self.seen_time_s: dict[TopicPartition, float] = {}
        self.seen_next_offset: dict[TopicPartition, int] = {}
        self.highwaters: dict[TopicPartition, tuple[int, float]] = {}
        """(high-water offset, clock time it was asked for) per partition."""
        self._sequence = itertools.count()

    def add(self, topic: str, partition: int, offset: int, occurred_at_s: float,
            item: Any) -> None:
        tp = (topic, partition)
        if occurred_at_s > self.seen_time_s.get(tp, float("-inf")):
            self.seen_time_s[tp] = occurred_at_s
        self.seen_next_offset[tp] = max(offset + 1, self.seen_next_offset.get(tp, 0))
        heapq.heappush(self.held.setdefault(partition, []),
                       Held(occurred_at_s, next(self._sequence), self.clock(), topic, partition,
                            item))
        self.size += 1

    def _other_of(self, held: Held) -> TopicPartition:
        return (self.other[held.topic], held.partition)

    def _passed_by_event_time(self, held: Held) -> bool:
        return self.seen_time_s.get(self._other_of(held), float("-inf")) >= held.occurred_at_s

    def _fresh_highwater(self, held: Held) -> int | None:
        known = self.highwaters.get(self._other_of(held))
        return None if known is None or known[1] < held.arrived_s else known[0]

    def _received(self, tp: TopicPartition) -> int:
        received = self.seen_next_offset.get(tp)
        return received if received is not None else (self.committed(*tp) or 0)

    def _can_release(self, held: Held, now_s: float) -> bool:
        if self._passed_by_event_time(held):
            return True
        highwater = self._fresh_highwater(held)
        if highwater is None:
            return now_s - held.arrived_s >= self.max_hold_s
        return self._received(self._other_of(held)) >= highwater

    def waiting_on(self) -> set[TopicPartition]:
        """Partitions whose fresh high-water marks would tell whether held events may go."""
        return {self._other_of(heap[0]) for heap in self.held.values()
                if heap and not self._passed_by_event_time(heap[0])}

    def update_highwaters(self, highwaters: Mapping[TopicPartition, int],
                          asked_at_s: float) -> None:
        for tp, offset in highwaters.items():
            self.highwaters[tp] = (offset, asked_at_s)

    def release(self) -> list[Any]:
        """Items that can be applied now, oldest event time first.

        An item that must wait holds back the later items of its own partition only.
        """
        now_s = self.clock()
        released: list[Held] = []
        for heap in self.held.values():
            while heap and (self.size > self.max_held or self._can_release(heap[0], now_s)):
                released.append(heapq.heappop(heap))
                self.size -= 1
        released.sort()
        return [held.item for held in released]

    def __len__(self) -> int:
        return self.size
