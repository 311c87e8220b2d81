"""Apply the records of an internal topic partition in order-key order, deterministically.

The twin of ``streams.ordering`` for the network stages' internal topics. A receiving partition
is written by several producer partitions: S1 ``c0..c{N-1}`` write to every ``cp-legs``
partition (read by S2, stage ``"counterparty"``) and to every ``flows`` partition, where S3
``f0..f{N-1}`` write too (read by S3, stage ``"flow"``). Kafka keeps each producer's records
and markers to one partition in the order sent, but interleaves producers by arrival, and
fetches split the stream anywhere. So records are held here, in a heap by order key
``(order_s, rank, producer, seq)``, and a ``Marker`` of a producer promises that it will never
again send a record with ``order_s`` below ``promise_s`` (the highest promise heard counts).

The **frontier** of a partition is the ``order_s`` below which every record addressed to it is
already held: a producer never heard from counts as -inf; an idle one (nothing to send) is
left out; on a flow partition, an S3 producer is never left out (idleness would be circular)
but is known to send nothing below ``T0 + hop_delay_s``, ``T0`` the lowest ``order_s`` any S1
producer ever sent or may still send (the least of their latest ``floor_s``, known once every
S1 producer was heard and one has a floor): every S3 record is caused by one applied at
``>= T0`` and stamped
its cause's ``order_s`` + ``hop_delay_s``. ``release`` lets go every held record below the
frontier, in key order, and remembers how far it went (the *applied* frontier). Each producer
kept its promises, so what goes is always a prefix of the records addressed to the partition
sorted by order key: a function of the inputs, never of timing or fetch boundaries.

The one exception (design §3.5): an idle producer that wakes up may send a record below the
applied frontier. It is applied at once, re-keyed ``(applied frontier, RANK_RECIPIENT_LATE,
producer, seq)``, and counted (``late``). A record below its own producer's promise, or with
the ``(producer, seq)`` of a held one, is a re-emission (that producer's records up to its
promise all came before the promise): dropped and reported in ``finished``.

Memory is bounded by back-pressure, as in ``streams.ordering``: a partition holding more than
``max_held`` records is reported by ``to_pause``, and by ``to_resume`` once down to half.
Times are epoch seconds (int); the frontiers may be -inf or +inf. No clock is read here.
"""

import heapq
import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from streams.network.records import RANK_RECIPIENT_LATE, Envelope, Marker

OrderKey = tuple[int, int, str, tuple[Any, ...]]
STAGES = ("counterparty", "flow")


@dataclass(slots=True)
class _Receiver:
    """What one receiving partition holds and knows of its producers."""

    heap: list[tuple[OrderKey, Envelope, Any]] = field(default_factory=list)
    ids: set[tuple[str, tuple[Any, ...]]] = field(default_factory=set)
    """``(producer, seq)`` of the held records (late ones included): the duplicate check."""
    promise: dict[str, int] = field(default_factory=dict)
    """Producers heard from (by a marker): their highest promise, epoch s."""
    idle: dict[str, bool] = field(default_factory=dict)
    floor: dict[str, int] = field(default_factory=dict)
    """S1 producers: their latest ``floor_s`` (each one a bound of everything they sent and
    will send: it may rise, as a producer that sent nothing to ``flows`` yet reports its
    promise)."""
    applied: float = -math.inf
    """Every record below it has been released (the applied frontier)."""
    ceiling: float = -math.inf
    """The highest ``order_s`` of any record held here so far, or reported held by an S3
    producer (``Marker.ceiling_s``)."""
    late: list[tuple[Envelope, Any]] = field(default_factory=list)
    done: list[Any] = field(default_factory=list)


class InternalAligner:
    def __init__(self, stage: str, partitions: int, hop_delay_s: int = 3600,
                 max_held: int = 200_000) -> None:
        if stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}, not {stage!r}")
        if partitions < 1 or hop_delay_s < 1:
            raise ValueError("partitions and hop_delay_s must be positive")
        self.stage = stage
        self.partitions = partitions
        self.hop_delay_s = hop_delay_s
        self.max_held = max_held
        """Records held by one partition before its fetching is paused."""
        self.cs = tuple(f"c{i}" for i in range(partitions))
        self.fs = tuple(f"f{i}" for i in range(partitions)) if stage == "flow" else ()
        self.producers = frozenset(self.cs + self.fs)
        self.receivers: dict[int, _Receiver] = {}
        self.paused: set[int] = set()
        self.late_total = 0

    def assign(self, partition: int) -> None:
        """Start receiving this partition, knowing nothing (a no-op if it is assigned)."""
        if not 0 <= partition < self.partitions:
            raise ValueError(f"partition {partition} is not in 0..{self.partitions - 1}")
        if partition not in self.receivers:
            self.receivers[partition] = _Receiver()

    def drop(self, partitions: Iterable[int]) -> list[Any]:
        """Forget these partitions (revoked): their held records, promises and frontier. Return
        every ref still kept for them (held, late, finished not yet reported): none is to be
        acknowledged, the new owner reads them again."""
        refs: list[Any] = []
        for partition in partitions:
            receiver = self.receivers.pop(partition, None)
            self.paused.discard(partition)
            if receiver is not None:
                refs += [ref for _, _, ref in sorted(receiver.heap, key=lambda h: h[0])]
                refs += [ref for _, ref in receiver.late] + receiver.done
        return refs

    def add(self, partition: int, item: Envelope | Marker, ref: Any) -> None:
        """A decoded record of ``partition`` (assigned now if it was not). ``ref`` comes back
        from ``release`` (applied), ``finished`` (nothing to apply) or ``drop``."""
        if item.producer not in self.producers:
            raise ValueError(f"{item.producer!r} does not write to the {self.stage} stage's "
                             f"input with {self.partitions} partitions")
        receiver = self.receivers.get(partition)
        if receiver is None:
            self.assign(partition)
            receiver = self.receivers[partition]
        if isinstance(item, Marker):
            self._promise(receiver, item)
            receiver.done.append(ref)
            return
        rid = (item.producer, item.seq)
        if rid in receiver.ids or item.order_s < receiver.promise.get(item.producer, -math.inf):
            receiver.done.append(ref)  # a re-emission
        elif item.order_s < receiver.applied:
            receiver.ids.add(rid)
            receiver.late.append((item, ref))
            self.late_total += 1
        else:
            receiver.ids.add(rid)
            heapq.heappush(receiver.heap, (item.order_key, item, ref))
            receiver.ceiling = max(receiver.ceiling, item.order_s)

    def _promise(self, receiver: _Receiver, marker: Marker) -> None:
        name = marker.producer
        receiver.promise[name] = max(marker.promise_s, receiver.promise.get(name, marker.promise_s))
        receiver.idle[name] = marker.idle
        if name in self.cs:
            if marker.floor_s is None:
                receiver.floor.pop(name, None)
            else:
                receiver.floor[name] = marker.floor_s
        if marker.ceiling_s is not None and name in self.fs:
            receiver.ceiling = max(receiver.ceiling, marker.ceiling_s)

    def _upstream(self, receiver: _Receiver) -> float:
        """Least promise of the S1 producers that are not idle: -inf while one is unheard,
        +inf when all are idle."""
        least = math.inf
        for name in self.cs:
            promise = receiver.promise.get(name)
            if promise is None:
                return -math.inf
            if not receiver.idle[name]:
                least = min(least, promise)
        return least

    def _flows(self, receiver: _Receiver) -> float:
        """Least of what each S3 producer may still send (+inf on a counterparty partition)."""
        heard = [receiver.promise.get(name) for name in self.cs]
        start = -math.inf
        if receiver.floor and None not in heard:
            start = min(receiver.floor.values()) + self.hop_delay_s  # T0 + hop delay
        return min((max(receiver.promise.get(name, -math.inf), start) for name in self.fs),
                   default=math.inf)

    def frontier(self, partition: int) -> float:
        """Every record addressed to ``partition`` with a lower ``order_s`` is held or applied
        (-inf when it is not assigned). It never goes below the applied frontier; it moves
        back only from +inf (every producer idle) when one wakes up."""
        receiver = self.receivers.get(partition)
        if receiver is None:
            return -math.inf
        return max(min(self._upstream(receiver), self._flows(receiver)), receiver.applied)

    def release(self) -> list[tuple[int, Envelope, Any]]:
        """What can be applied now: per partition (in assignment order), the held records below
        its frontier in order-key order, then its recipient-late records re-keyed to the new
        applied frontier (by producer and seq)."""
        out: list[tuple[int, Envelope, Any]] = []
        for partition, receiver in self.receivers.items():
            bound = self.frontier(partition)
            heap = receiver.heap
            last: Envelope | None = None
            while heap and heap[0][0][0] < bound:
                _, last, ref = heapq.heappop(heap)
                receiver.ids.discard((last.producer, last.seq))
                out.append((partition, last, ref))
            if bound < math.inf:
                receiver.applied = bound
            elif last is not None:  # every producer idle: up to what was applied (whole s)
                receiver.applied = max(receiver.applied, last.order_s + 1)
            receiver.late.sort(key=lambda late: (late[0].producer, late[0].seq))
            for envelope, ref in receiver.late:
                receiver.ids.discard((envelope.producer, envelope.seq))
                clamped = replace(envelope, order_s=int(receiver.applied),
                                  rank=RANK_RECIPIENT_LATE)
                out.append((partition, clamped, ref))
            receiver.late.clear()
        return out

    def finished(self) -> list[Any]:
        """Refs done without being applied (markers, re-emissions) since the last call."""
        refs: list[Any] = []
        for receiver in self.receivers.values():
            refs += receiver.done
            receiver.done = []
        return refs

    def held(self, partition: int) -> int:
        receiver = self.receivers.get(partition)
        return 0 if receiver is None else len(receiver.heap) + len(receiver.late)

    def held_min(self, partition: int) -> float:
        """The least ``order_s`` held (late records aside), +inf if none."""
        receiver = self.receivers.get(partition)
        return receiver.heap[0][0][0] if receiver is not None and receiver.heap else math.inf

    def flow_promise(self, partition: int, own_previous: float) -> float:
        """The promise S3 ``partition`` may send now (epoch s; -inf: none yet), never below
        ``own_previous`` (its last one): ``min(held_min, L, the S3 producers' values, applied
        frontier)`` + ``hop_delay_s``, capped at ``M`` + ``hop_delay_s``.

        Why it holds: every record S3 q sends from now on is caused by a record q applies from
        now on, stamped with that cause's ``order_s`` + ``hop_delay_s``. Such a cause is held
        now (>= ``held_min``) or still to come: from an S1 producer that is not idle (>= its
        promise, so >= ``L``, the least of them), or from an S3 producer (>= the value the
        frontier counts it at: its promise, never below T0 + delay since every S3 record
        descends from an S1 record at >= T0). A record of an idle S1 producer that wakes up
        is at or above the applied frontier, or recipient-late and re-keyed to it: hence the
        applied frontier in the minimum. With ``release`` called first that term changes
        nothing (the applied frontier is then at least ``min(L, S3 values)``; unless an idle
        producer woke up, the whole minimum equals it); it keeps a caller that did not
        release first safe.
        The cap is ``max(M, G)`` + ``hop_delay_s``: ``M`` the highest promise of an S1
        producer, ``G`` the highest ``order_s`` ever held by this or (as their markers report)
        another S3 partition. When every S1 partition is idle the promises do not run into the
        future on their own, yet rise far enough to complete every provenance record held (a
        chain's later hops lie beyond S1's last event time).
        """
        if self.stage != "flow":
            raise ValueError("only the flow stage sends promises of its own")
        receiver = self.receivers.get(partition)
        if receiver is None:
            return own_previous
        cause = min(self.held_min(partition), self._upstream(receiver), self._flows(receiver),
                    receiver.applied)
        heard = [receiver.promise[name] for name in self.cs if name in receiver.promise]
        cap = max(max(heard, default=-math.inf), receiver.ceiling)
        return max(own_previous, min(cause, cap) + self.hop_delay_s)

    def ceiling(self, partition: int) -> int | None:
        """What this partition's S3 marker reports as ``ceiling_s`` (None: nothing held yet)."""
        receiver = self.receivers.get(partition)
        if receiver is None or receiver.ceiling == -math.inf:
            return None
        return int(receiver.ceiling)

    def late(self) -> int:
        """Recipient-late records received so far (all partitions, drops included)."""
        return self.late_total

    def to_pause(self) -> set[int]:
        """Partitions holding more than ``max_held`` records, not paused yet (counted as paused
        from now)."""
        over = {partition for partition in self.receivers
                if self.held(partition) > self.max_held} - self.paused
        self.paused |= over
        return over

    def to_resume(self) -> set[int]:
        """Paused partitions down to half of ``max_held`` (counted as resumed)."""
        drained = {partition for partition in self.paused
                   if self.held(partition) <= self.max_held // 2}
        self.paused -= drained
        return drained
