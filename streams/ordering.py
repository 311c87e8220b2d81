"""Apply a customer's onboarding events, transactions and alert decisions in event-time order,
deterministically.

The input topics are keyed by customer and have the same partition count, so partition ``p``
of each holds the same customers and is consumed by the same worker. But Kafka orders records
only within one partition: the consumer may hand us a customer's deposit before the
``kyc_verified`` event that preceded it on the other topic, and the rules would then judge the
deposit against the wrong profile. So the partitions ``p`` of the topics are merged by event
time (shown here for two; a third, the decisions, is merged the same way):

- while both have events waiting, the older head goes first (onboarding first on a tie);
- when only one has, its head waits until the other partition is **caught up**: every record
  it holds has been read, that is our position in it (the offset after the last record read,
  decoded or dead-lettered alike) has reached its end offset. The end offset is learned from
  the broker when the partition is first met after an assignment (``learn``), and afterwards
  from each fetch response (``highwater``). Live, that end must be as fresh as the waiting
  events: the other partition's last fetch response must have come after they were fetched
  (``polled_ms``). Otherwise an older record written to it in between (say, while one of its
  fetches failed during a broker restart) would not be counted, and the newer event would go
  first.

Nothing here depends on time or on how records are split into fetches: the order is a
function of the records and their offsets. For records already in the topics (a backlog, a
replay) it is the merge of the two partitions by event time, whatever the machine's load; a
record written to one topic only after the other topic's newer records were read and applied
is applied when it arrives (as Kafka Streams does with ``max.task.idle.ms`` 0). So an idle
input never holds the other: an idle partition is caught up.

Memory is bounded by back-pressure, not by releasing out of order: a topic partition with more
than ``max_held`` events waiting is reported in ``to_pause`` (the worker stops fetching it) and
in ``to_resume`` once half of them have gone.

Within one topic partition the offset order is kept (the replay check relies on it). Held
events are not acknowledged, so their offsets are not committed until they are applied.
"""

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

TopicPartition = tuple[str, int]


def _head_time(queue: "deque[Held]") -> float:
    return queue[0].occurred_at_s


@dataclass(slots=True)
class Held:
    occurred_at_s: float
    topic: str
    item: Any
    fetched_ms: float | None = None
    """When the worker was handed it (epoch ms, the consumer's clock); None in a replay."""


class InputAligner:
    def __init__(self, topics: tuple[str, ...], highwater: Callable[[str, int], int | None],
                 max_held: int = 20_000,
                 polled_ms: Callable[[str, int], float | None] | None = None) -> None:
        self.topics = topics
        self.highwater = highwater
        """The end offset a topic partition had at the last fetch response, if any."""
        self.polled_ms = polled_ms
        """When that last fetch response came (epoch ms), if any; None: not checked (replay)."""
        self.max_held = max_held
        """Events waiting in one topic partition before its fetching is paused."""
        self.queues: dict[int, dict[str, deque[Held]]] = {}
        self.size = 0
        self.position: dict[TopicPartition, int] = {}
        """The offset after the last record read from a topic partition (or, before any, where
        reading started)."""
        self.end: dict[TopicPartition, int] = {}
        """The end offset learned when the topic partition was first met (``learn``)."""
        self.paused: set[TopicPartition] = set()

    def read(self, topic: str, partition: int, offset: int) -> None:
        """A record was read (whether it decoded or not): the position moves past it."""
        tp = (topic, partition)
        if offset >= self.position.get(tp, 0):
            self.position[tp] = offset + 1

    def add(self, topic: str, partition: int, offset: int, occurred_at_s: float,
            item: Any, fetched_ms: float | None = None) -> None:
        """A decoded event waits here until ``release`` lets it go."""
        self.read(topic, partition, offset)
        queues = self.queues.get(partition)
        if queues is None:
            queues = self.queues[partition] = {name: deque() for name in self.topics}
        queues[topic].append(Held(occurred_at_s, topic, item, fetched_ms))
        self.size += 1

    def meet(self, partition: int) -> None:
        """An assigned partition, met even before any record of it: its bounds get learned,
        so that it can be caught up (the network stages wait for every partition's word)."""
        if partition not in self.queues:
            self.queues[partition] = {name: deque() for name in self.topics}

    def idle(self, partition: int) -> bool:
        """Both topics of ``partition`` read to their end, nothing held."""
        queues = self.queues.get(partition)
        return (queues is not None and not any(queues.values())
                and all(self.caught_up((topic, partition)) for topic in self.topics))

    def unlearned(self) -> list[TopicPartition]:
        """Topic partitions (both topics of each partition met) whose end is not known yet."""
        return [(topic, partition) for partition in self.queues for topic in self.topics
                if (topic, partition) not in self.end]

    def learn(self, topic: str, partition: int, start: int, end: int) -> None:
        """The broker's word on a topic partition when first met: reading started at ``start``
        (the committed offset, or the earliest), and it then ended at ``end``."""
        tp = (topic, partition)
        self.end[tp] = end
        if tp not in self.position:
            self.position[tp] = start

    def caught_up(self, tp: TopicPartition, since_ms: float | None = None) -> bool:
        """Every record of ``tp`` up to its end is read; with ``since_ms``, an end known from
        a fetch response that came after then."""
        end = self.end.get(tp)
        if end is None:
            return False  # not learned yet: it may hold anything
        highwater = self.highwater(*tp)
        if highwater is not None and highwater > end:
            end = highwater
        if self.position.get(tp, 0) < end:
            return False
        if since_ms is None or self.polled_ms is None:
            return True
        polled = self.polled_ms(*tp)
        return polled is None or polled >= since_ms  # None: never fetched, the learned end

    def _release_partition(self, partition: int, queues: dict[str, deque[Held]],
                           out: list[Held]) -> None:
        """Merge the topics' queues by event time (the first topic first on a tie). A head
        goes only while every topic with nothing waiting is caught up (``caught_up`` since the
        newest waiting event was fetched): nothing older can come from it."""
        topics = self.topics
        if not (any(queues.values()) and all((name, partition) in self.end for name in topics)):
            return
        while True:
            waiting = [queues[name] for name in topics if queues[name]]
            if not waiting:
                return
            newest_ms = max((q[-1].fetched_ms for q in waiting if q[-1].fetched_ms is not None),
                            default=None)
            if not all(self.caught_up((name, partition), newest_ms)
                       for name in topics if not queues[name]):
                return
            if len(waiting) == 1:  # nothing can come before any of it now: all of it goes
                alone = waiting[0]
                out.extend(alone)
                self.size -= len(alone)
                alone.clear()
                return
            while all(waiting):  # until one of them runs dry
                queue = min(waiting, key=_head_time)
                out.append(queue.popleft())
                self.size -= 1

    def release(self) -> list[Any]:
        """Items that can be applied now, partition by partition, each in merged order.

        Only the order within a partition matters: it holds every event of its customers."""
        released: list[Held] = []
        for partition, queues in self.queues.items():
            self._release_partition(partition, queues, released)
        return [held.item for held in released]

    def to_pause(self) -> set[TopicPartition]:
        """Topic partitions holding more than ``max_held`` events, not paused yet (they are
        counted as paused from now)."""
        over = {(topic, partition) for partition, queues in self.queues.items()
                for topic, queue in queues.items() if len(queue) > self.max_held}
        over -= self.paused
        self.paused |= over
        return over

    def to_resume(self) -> set[TopicPartition]:
        """Paused topic partitions down to half of ``max_held`` (counted as resumed)."""
        drained = {tp for tp in self.paused
                   if len(self.queues[tp[1]][tp[0]]) <= self.max_held // 2}
        self.paused -= drained
        return drained

    def drop(self, partitions: set[int]) -> set[TopicPartition]:
        """Forget the held events and positions of these partition numbers (both topics);
        return the topic partitions that were paused among them."""
        for partition in partitions:
            queues = self.queues.pop(partition, None)
            if queues is not None:
                self.size -= sum(len(queue) for queue in queues.values())
            for topic in self.topics:
                self.position.pop((topic, partition), None)
                self.end.pop((topic, partition), None)
        dropped = {tp for tp in self.paused if tp[1] in partitions}
        self.paused -= dropped
        return dropped

    def __len__(self) -> int:
        return self.size
