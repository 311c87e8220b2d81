"""S1's side of the network stages: the legs an applied transfer sends on, and each input
partition's promise.

Each transactions partition ``p`` of S1 is one producer, ``c<p>``. Its legs are stamped with
the order key ``(order_s, RANK_LEG, "c<p>", (offset, index))``: ``order_s`` is the transfer's
event time, or the partition's promise if the transfer is older than that (*source-late*:
re-timed, counted, its real time kept in the leg). The promise is the highest event time
applied in the partition less ``lateness_s``: the partition never again sends a leg below it.
Both depend only on the partition's (deterministic) order of events, so the legs and their keys
are functions of the input topics. The partition's clock is persisted with the customer states
(``PartitionClock``), so that a restart goes on from where the last cut left it.

Which legs:

- to ``cp-legs`` (S2, keyed by counterparty): every transfer with another customer, or an
  address not of a service type (``network.service_types``: exchanges, merchants, banks,
  and addresses the intel lists as ``service``): S2's rules leave those out, and one
  exchange's hot wallet would otherwise make one S2 partition carry a large share of all
  transfers;
- to ``flows`` (S3, keyed by the customer): the transfers of a customer that is *network
  active* (it moved value to or from another customer of ours, or a listed address, within
  the provenance horizon), except its deposits from unlisted addresses: those only add
  untraced value, so their sum rides on the customer's next leg there (``untraced_cents``).
  Other customers' transfers cannot start or carry provenance, so S3 does not need them (it
  counts a customer's value from its first network transfer on).

A transfer the customer windows skip as too late is skipped here too.
"""

from dataclasses import dataclass, field

import orjson

from streams.intake import Transfer
from streams.intel import listed_lists
from streams.network.alerts import snapshot_of_state
from streams.network.records import RANK_LEG, Envelope, Leg, Marker
from streams.partitioning import partition_of
from streams.reference_lists import canonical_address
from streams.ruleset import CompiledRules
from streams.state import CustomerState

CP_LEGS = "cp-legs"
FLOWS = "flows"
NO_PROMISE_S = -(2**62)
"""The promise of a partition that applied no transfer yet."""
NETWORK_LISTS = frozenset(("sanctions", "mixer", "chain_risk"))
"""Lists whose addresses start provenance (``service`` does not)."""


@dataclass(slots=True)
class PartitionClock:
    """One S1 partition's network progress (epoch s)."""

    high_s: int | None = None
    """The highest event time of a transfer applied in the partition."""
    flows_floor_s: int | None = None
    """The lowest ``order_s`` it ever sent to ``flows``: where flow promises may start."""

    def to_bytes(self) -> bytes:
        return orjson.dumps([1, self.high_s, self.flows_floor_s])

    @classmethod
    def from_bytes(cls, raw: bytes) -> "PartitionClock":
        _, high_s, flows_floor_s = orjson.loads(raw)
        return cls(high_s, flows_floor_s)


def s1_marker(partition: int, clock: PartitionClock, lateness_s: int, idle: bool) -> Marker:
    """What S1 partition ``partition`` promises (worker and backtest alike): nothing more
    below its newest event time less ``lateness_s``; its floor, the lowest ``order_s`` it
    sent to ``flows`` or may still send (none if it applied nothing and is idle; no bound
    while it applied nothing yet and still reads)."""
    promise_s = NO_PROMISE_S if clock.high_s is None else clock.high_s - lateness_s
    floor_s = clock.flows_floor_s
    if floor_s is not None or clock.high_s is not None:
        floor_s = promise_s if floor_s is None else min(floor_s, promise_s)
    elif not idle:
        floor_s = NO_PROMISE_S
    return Marker(f"c{partition}", promise_s, idle, floor_s)


@dataclass(slots=True)
class Emitted:
    topic: str
    """``cp-legs`` or ``flows``."""
    partition: int
    key: bytes
    envelope: Envelope


def counterparty_key(transfer: Transfer) -> str | None:
    """``c:<customer>`` for another customer of ours, ``a:<canonical address>`` for an
    address, None for neither (or a transfer between the customer's own accounts)."""
    other = transfer.cp_customer_id
    if other is not None:
        return None if other == transfer.customer_id else f"c:{other}"
    if transfer.cp_address:
        return f"a:{canonical_address(transfer.cp_address)}"
    return None


def note_network_activity(state: CustomerState, transfer: Transfer,
                          rules: CompiledRules) -> None:
    """Part of S1's core (``streams.engine.apply``): a transfer with another customer or a
    listed address makes the customer network active for the provenance horizon."""
    listed = transfer.cp_listed = listed_lists(transfer.cp_address, rules)
    if not rules.config.network.enabled:
        return
    internal = (transfer.cp_customer_id is not None
                and transfer.cp_customer_id != transfer.customer_id)
    risky = bool(NETWORK_LISTS.intersection(listed))
    if internal or risky:
        state.network_active_until_s = max(state.network_active_until_s,
                                           transfer.at_s + rules.config.network.horizon_s)
    if transfer.at_s > state.network_active_until_s:
        return
    if not (transfer.out or internal or risky):
        # A deposit from an unlisted address only adds untraced value: it goes with the
        # customer's next leg to the flow stage, not on its own.
        state.network_untraced_cents += transfer.usd_cents
        return
    transfer.to_flows = True
    transfer.untraced_cents, state.network_untraced_cents = state.network_untraced_cents, 0


@dataclass
class Emitter:
    partitions: int
    lateness_s: int
    clocks: dict[int, PartitionClock] = field(default_factory=dict)
    """Partition -> its clock, for the partitions met since the last ``forget``."""
    changed: set[int] = field(default_factory=set)
    source_late: int = 0

    def promise(self, partition: int) -> int | None:
        """Partition's promise: no leg with ``order_s`` below it will come (None: no bound
        yet, nothing applied)."""
        high_s = self.clocks[partition].high_s
        return None if high_s is None else high_s - self.lateness_s

    def legs(self, transfer: Transfer, state: CustomerState, rules: CompiledRules,
             partition: int, offset: int) -> list[Emitted]:
        """What an applied, in-window transfer at (``partition``, ``offset``) of transactions
        sends on; ``state`` is its customer's, after the transfer (its network activity is
        updated here)."""
        clock = self.clocks[partition]
        at_s = transfer.at_s
        promise_s = None if clock.high_s is None else clock.high_s - self.lateness_s
        order_s = at_s if promise_s is None or at_s >= promise_s else promise_s
        if order_s != at_s:
            self.source_late += 1
        if clock.high_s is None or at_s > clock.high_s:
            clock.high_s = at_s
        self.changed.add(partition)
        network = rules.config.network
        if not network.enabled:
            return []
        cp_key = counterparty_key(transfer)
        listed = transfer.cp_listed
        if listed is None:  # applied without the core's note (a late transfer is not sent)
            listed = listed_lists(transfer.cp_address, rules)
        active = transfer.to_flows
        if cp_key is None and not active:
            return []
        producer = f"c{partition}"
        leg = Leg(transfer.customer_id, transfer.event_id, at_s, transfer.out,
                  transfer.usd_cents, cp_key, transfer.cp_type, transfer.cp_country, listed,
                  snapshot_of_state(state), transfer.untraced_cents if active else 0)
        emitted = []
        if cp_key is not None and (
                cp_key.startswith("c:") or (transfer.cp_type not in network.service_types
                                            and "service" not in listed)):
            key = cp_key.encode()
            emitted.append(Emitted(CP_LEGS, partition_of(key, self.partitions), key,
                                   Envelope(producer, (offset, 0), order_s, RANK_LEG, leg)))
        if active:
            key = transfer.customer_id.encode()
            emitted.append(Emitted(FLOWS, partition_of(key, self.partitions), key,
                                   Envelope(producer, (offset, 1), order_s, RANK_LEG, leg)))
            if clock.flows_floor_s is None or order_s < clock.flows_floor_s:
                clock.flows_floor_s = order_s
        return emitted
