"""The network stages in the worker: S2 (counterparty) and S3 (flow) in the same agent and
step as S1, and the promises every producer sends (``streams.network``).

The one agent reads the inputs and the two internal topics; Faust's assignor gives a worker
the same partition numbers of all four (they share the partition count), so a worker owns
S1, S2 and S3 partition ``p`` together, and one checkpoint makes all three durable. The
stages themselves are the backtest's (``streams.network.stage``); this module adds Kafka:

- the internal records each step produced are sent, each to the partition its key hashes to
  (murmur2, as Kafka's default partitioner), with the step's alerts;
- **promises**: after each step, every producer partition this worker owns (S1 ``c<p>``, S3
  ``f<q>``) has a promise; it is *sent* only once every internal record of that step and of
  the steps before is on the broker (durable), as a marker to every partition of the topics
  it writes, when it moves and every ``network_marker_interval_s``. A receiver that has a
  producer's marker therefore holds every record of it below the promise;
- the partition clocks (S1: its newest event time; S3: its promise) are written with the cut,
  in the stage tables under a key per partition, and read back after a restart or a
  rebalance, so a promise never goes back.
"""

import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from agents import metrics
from agents.state_table import StateTable
from streams.intel import Listing
from streams.network.emit import CP_LEGS, FLOWS, Emitter, PartitionClock, s1_marker
from streams.network.records import Marker, encode
from streams.network.stage import StageReplay
from streams.ordering import InputAligner
from streams.partitioning import partition_of
from streams.replay import StepOutcome

log = logging.getLogger(__name__)

SendRecords = Callable[[str, int, list[tuple[bytes | None, bytes]]],
                      Awaitable[list[Awaitable[Any]]]]
"""Start sending (key, value) records, in order, to a topic's partition, in bulk; the
awaitables returned resolve once the broker has them (``agents.app._bulk_sender``)."""


@dataclass(frozen=True, slots=True)
class ListingRef:
    """Where a listing was read: stands for the input record of its screening's alerts."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes


def clock_key(partition: int) -> bytes:
    """S1's clock of a partition, in the customer table (no customer id starts with NUL)."""
    return b"\x00network-clock/%d" % partition


def promise_key(partition: int) -> bytes:
    """S3's promise of a partition, in the flow table (no customer id starts with NUL)."""
    return b"\x00flow-promise/%d" % partition


class NetworkStages:
    def __init__(self, topics: dict[str, str], emitter: Emitter, inputs: InputAligner,
                 counterparty: StageReplay, flow: StageReplay, customer_table: StateTable,
                 flow_table: StateTable, send_records: SendRecords,
                 assigned: Callable[[], set[int]],
                 marker_interval_s: float, idle_after_s: float) -> None:
        self.topics = topics
        """``cp-legs`` and ``flows`` -> their topic names."""
        self.kinds = {name: kind for kind, name in topics.items()}
        self.emitter = emitter
        self.inputs = inputs
        self.counterparty = counterparty
        self.flow = flow
        self.customer_table = customer_table
        self.flow_table = flow_table
        self.send_records = send_records
        self.assigned = assigned
        """Partition numbers assigned to this worker now."""
        self.marker_interval_s = marker_interval_s
        self.idle_after_s = idle_after_s
        self._caught_up_since: dict[int, float] = {}
        self._listings: list[tuple[Listing, Any]] = []
        self._late_counted = {"source": 0, "recipient": 0}
        self.flow_promised: dict[int, float] = {}
        """Owned flow partition -> the highest promise computed (and so sent or to be sent)."""
        self._steps: deque[tuple[dict[str, Marker], list[Awaitable[Any]]]] = deque()
        self._sent: dict[str, Marker] = {}
        self._sent_at = 0.0
        self._owned: set[int] = set()

    # -- a step ---------------------------------------------------------------------------

    def split(self, messages: Sequence[Any]) -> tuple[list[Any], list[Any], list[Any]]:
        """(input messages, ``cp-legs`` messages, ``flows`` messages)."""
        inputs, legs, flows = [], [], []
        for message in messages:
            kind = self.kinds.get(message.topic)
            (legs if kind == CP_LEGS else flows if kind == FLOWS else inputs).append(message)
        return inputs, legs, flows

    def meet_partitions(self, messages: Sequence[Any]) -> None:
        """Partitions newly assigned (or met in a batch): every stage starts them, with their
        clocks as stored."""
        owned = self.assigned() | self._owned | {message.partition for message in messages}
        for partition in owned - self._owned:
            self.inputs.meet(partition)
            self.counterparty.aligner.assign(partition)
            self.flow.aligner.assign(partition)
            if partition not in self.emitter.clocks:
                raw = self.customer_table.read_meta(clock_key(partition), partition)
                self.emitter.clocks[partition] = (PartitionClock() if raw is None
                                                  else PartitionClock.from_bytes(raw))
            raw = self.flow_table.read_meta(promise_key(partition), partition)
            self.flow_promised[partition] = (float("-inf") if raw is None
                                             else float(raw.decode()))
        self._owned = owned

    def admit(self, legs: Sequence[Any], flows: Sequence[Any], outcome: StepOutcome) -> None:
        self.counterparty.admit(legs, outcome)
        self.flow.admit(flows, outcome)

    def apply_released(self, outcome: StepOutcome) -> int:
        return self.counterparty.apply_released(outcome) + self.flow.apply_released(outcome)

    async def send(self, outcome: StepOutcome) -> list[Awaitable[Any]]:
        """Send the step's internal records, in bulk per topic partition (in the order the
        stages made them)."""
        by_partition: dict[tuple[str, int], list[tuple[bytes | None, bytes]]] = {}
        for emitted, _ in outcome.internal:
            by_partition.setdefault((emitted.topic, emitted.partition), []).append(
                (emitted.key, encode(emitted.envelope)))
        deliveries = []
        for (kind, partition), records in by_partition.items():
            deliveries += await self.send_records(self.topics[kind], partition, records)
            metrics.NETWORK_RECORDS.labels(kind).inc(len(records))
        return deliveries

    def sent(self, deliveries: list[Awaitable[Any]]) -> None:
        """A step's outputs were handed to the producer: its promises wait for them."""
        self._steps.append((self._promises(), deliveries))
        metrics.NETWORK_HELD.set(self.held())
        late = {"source": self.emitter.source_late,
                "recipient": self.counterparty.aligner.late() + self.flow.aligner.late()}
        for stage, count in late.items():
            if count > self._late_counted[stage]:
                metrics.NETWORK_LATE.labels(stage).inc(count - self._late_counted[stage])
                self._late_counted[stage] = count

    # -- promises -------------------------------------------------------------------------

    def _promises(self) -> dict[str, Marker]:
        """What each producer partition of this worker may promise after this step."""
        markers = {}
        for partition in self._owned:
            clock = self.emitter.clocks.get(partition)
            if clock is None:
                continue
            markers[f"c{partition}"] = s1_marker(partition, clock, self.emitter.lateness_s,
                                                 self._idle(partition))
            promised = self.flow.aligner.flow_promise(partition, self.flow_promised[partition])
            if promised > self.flow_promised[partition]:
                self.flow_promised[partition] = promised
            if self.flow_promised[partition] != float("-inf"):
                markers[f"f{partition}"] = Marker(
                    f"f{partition}", int(self.flow_promised[partition]),
                    ceiling_s=self.flow.aligner.ceiling(partition))
        return markers

    def _idle(self, partition: int) -> bool:
        """Read to the end and quiet for ``idle_after_s`` (a pause between two fetches of a
        live stream is not idleness)."""
        if not self.inputs.idle(partition):
            self._caught_up_since.pop(partition, None)
            return False
        since = self._caught_up_since.setdefault(partition, time.monotonic())
        return time.monotonic() - since >= self.idle_after_s

    async def send_markers(self) -> list[Awaitable[Any]]:
        """Send the durable promises that moved (all of them every marker interval)."""
        durable = None
        while self._steps and all(_done(d) for d in self._steps[0][1]):
            durable = self._steps.popleft()[0]
        if durable is None and not self._steps:
            durable = self._promises()
        if durable is None:
            return []
        now = time.monotonic()
        refresh = now - self._sent_at >= self.marker_interval_s
        if refresh:
            self._sent_at = now
        by_topic: dict[str, list[tuple[bytes | None, bytes]]] = {CP_LEGS: [], FLOWS: []}
        for producer, marker in durable.items():
            if not refresh and self._sent.get(producer) == marker:
                continue
            self._sent[producer] = marker
            value = encode(marker)
            for kind in (CP_LEGS, FLOWS) if producer.startswith("c") else (FLOWS,):
                by_topic[kind].append((None, value))
        deliveries = []
        for kind, markers in by_topic.items():
            if markers:
                for partition in range(self.emitter.partitions):
                    deliveries += await self.send_records(self.topics[kind], partition,
                                                          markers)
                metrics.NETWORK_MARKERS.inc(len(markers) * self.emitter.partitions)
        return deliveries

    def before_cut(self) -> None:
        """The partition clocks go into the tables with the cut."""
        for partition in sorted(self.emitter.changed):
            clock = self.emitter.clocks.get(partition)
            if clock is not None and partition in self._owned:
                self.customer_table.put_meta(clock_key(partition), partition, clock.to_bytes())
        self.emitter.changed.clear()
        for partition, promised in self.flow_promised.items():
            if promised != float("-inf") and partition in self._owned:
                self.flow_table.put_meta(promise_key(partition), partition,
                                         str(int(promised)).encode())

    # -- rebalances -----------------------------------------------------------------------

    def revoked(self, partitions: set[int]) -> list[Any]:
        """Forget what the revoked partitions held (read again by their next owner)."""
        dropped = [*self.counterparty.aligner.drop(partitions),
                   *self.flow.aligner.drop(partitions)]
        for partition in partitions:
            self.emitter.clocks.pop(partition, None)
            self.flow_promised.pop(partition, None)
            self._sent.pop(f"c{partition}", None)
            self._sent.pop(f"f{partition}", None)
        self._owned -= partitions
        self._steps.clear()
        return dropped

    def listed(self, listing: Listing, ref: Any) -> None:
        """A listing read from the address-intel topic after start-up: screened at the next
        step (``screen``)."""
        self._listings.append((listing, ref))

    def screen(self, outcome: StepOutcome) -> None:
        """Retroactive screening: customers who used a newly listed address within the look-
        back get an alert (once per customer and listing: the id says which listing). Only
        this worker's counterparty partitions; the others' workers screen theirs."""
        listings, self._listings = self._listings, []
        for listing, ref in listings:
            cp_key = f"a:{listing.address}"
            partition = partition_of(cp_key.encode(), self.emitter.partitions)
            if partition not in self._owned:
                continue
            record = replace(ref, partition=partition)
            outcome.alerts.extend((alert, record)
                                  for alert in self.counterparty.screen(cp_key, listing, record))

    def held(self) -> int:
        return sum(self.counterparty.aligner.held(p) + self.flow.aligner.held(p)
                   for p in self._owned)


def _done(delivery: Awaitable[Any]) -> bool:
    done = getattr(delivery, "done", None)
    return bool(done()) if done is not None else True
