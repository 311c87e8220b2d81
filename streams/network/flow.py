"""S3 ``flow``, keyed by customer: follow value from customer to customer and alert cycles,
layering chains and indirect exposure (``docs/network-design.md`` §3.4, §5, §6.3).

``apply_flow`` is pure, like ``engine.apply``: the customer's state and one record in, the new
state, alerts and provenance records out. Records come in increasing ``order_key``; one at or
below the state's ``last_key`` is a replay and changes nothing.

What a record does (the pool, entries, pending items: ``flow_state``):

- Own deposit from an address (``a:``) or none: from a sanctioned, mixer or high-risk address
  it starts an entry (share 1,000,000 ppm); otherwise it is untraced value.
- Own deposit from customer X (``c:X``): X describes that value in its ``Provenance``, applied
  here one hop delay after X's withdrawal. Meanwhile it is *pending* from X.
- Own withdrawal of w: the fraction ``min(1, w / pool)`` leaves every entry, untraced bucket
  and pending item (the "haircut", pro rata, in integer cents rounded down; w above the pool
  takes all). To customer C it sends one ``Provenance`` to C with: each entry's part whose
  share of its origin is >= ``min_share_ppm``, with this customer added to its path; and a
  fresh entry ``c:<self>`` for the rest (untraced value, w beyond the pool, parts cut for
  their share, cents lost to rounding) if it is >= ``min_share_ppm`` of w or nothing else is
  sent. Its
  ``usd_cents`` is what it describes: w less the part taken from pending items (described
  later, by a catch-up); nothing is sent when that is 0. A withdrawal that took from pending
  items is remembered (``recent_out``, <= ``recent_forwards_kept``, the oldest forgotten).
- ``Provenance`` from X (or a catch-up): its value first matches X's pending item; the part
  of it the customer had already passed on (pending ``1 - left/received``) is not held, the
  rest is. Its entries are merged in (rules checked, ``flow_rules``), then each remembered
  withdrawal that took from X's pending value gets a **catch-up**: the entries scaled to what
  it took, this customer added to the path with its cumulative forwarded share as the
  intermediate's ratio. Catch-ups never carry more than the provenance did (floors, and
  takes never exceed the pending value received). A catch-up with no entry left after the
  ``min_share_ppm`` cut is not sent; the recipient's pending item then becomes untraced.
  Value that matches no pending value is not held (the customer's deposit leg is missing,
  or its pending item became untraced), so the pool always adds up to what the customer's
  own legs say it holds; the entries are still checked by the rules.

A path lists the customers that passed the value on (the holder joins it when it forwards);
a cycle or a layering chain is judged on the path of an entry as it arrives.

A pending item not described within ``(max_hops + 1) * hop_delay_s`` becomes untraced (the
sender's side was never published, or a chain's catch-ups stopped): a chain whose hops are
all faster than the hop delay is followed for ``max_hops`` hops. Entries whose origin is
older than ``horizon_s`` (by the record's ``order_s``) become untraced too.

A cycle or layering chain found here is told to every other customer on it by a
``PathAlert`` (``flow_rules``), applied there one hop delay later: each customer involved is
alerted, with its own profile, in the finder's cooldown period.

Emission: record ``index`` of a call is ``Envelope(producer, (*cause, index),
envelope.order_s + hop_delay_s, rank, ...)``, rank ``RANK_PROVENANCE`` (``RANK_PATH_ALERT``
for a path alert), ``cause = (order_s, rank, producer, seq)`` of the record applied, where
the seq of a provenance cause is replaced by a 16-hex digest of it: catch-ups of catch-ups
would otherwise nest seqs without bound (a ping-pong between two customers every few minutes
goes on for days). A provenance record holds at most
``entries_per_customer + 1`` entries (``max_provenance_bytes``).
"""

import hashlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from schemas.alerts import Alert
from schemas.network_config import PPM, NetworkBounds
from streams.network.flow_rules import check_entry, member_alert
from streams.network.flow_state import (
    PENDING_KEPT,
    RISKY_LISTS,
    FlowEntry,
    FlowState,
    Forward,
    Pending,
    add_untraced,
    drop_pending,
    expire,
    extend_path,
    keep_entries,
    largest_entry,
    merge_entry,
)
from streams.network.records import (
    RANK_PATH_ALERT,
    RANK_PROVENANCE,
    Envelope,
    Leg,
    PathAlert,
    Provenance,
    encode,
)
from streams.ruleset import CompiledRules

__all__ = ["FlowEntry", "FlowOutcome", "FlowState", "apply_flow", "haircut",
           "max_provenance_bytes"]

@dataclass
class FlowOutcome:
    alerts: list[Alert] = field(default_factory=list)
    emitted: list[Envelope] = field(default_factory=list)
    """Provenance and path alerts to send (to ``flows``, keyed by the recipient)."""
    replayed: bool = False


@dataclass
class _Call:
    """One ``apply_flow`` call: what it reads and what it produces."""

    state: FlowState
    envelope: Envelope
    rules: CompiledRules
    producer: str
    hop_delay_s: int
    outcome: FlowOutcome

    @property
    def bounds(self) -> NetworkBounds:
        return self.rules.config.network

    @property
    def now_s(self) -> int:
        return self.envelope.order_s

    def emit(self, body: Provenance | PathAlert) -> None:
        source = self.envelope
        cause = source.seq if isinstance(source.body, Leg) else _digest(source.seq)
        seq = (source.order_s, source.rank, source.producer, cause, len(self.outcome.emitted))
        rank = RANK_PATH_ALERT if isinstance(body, PathAlert) else RANK_PROVENANCE
        self.outcome.emitted.append(Envelope(self.producer, seq, source.order_s + self.hop_delay_s,
                                             rank, body))


def apply_flow(state: FlowState | None, envelope: Envelope, rules: CompiledRules,
               producer: str, hop_delay_s: int) -> tuple[FlowState, FlowOutcome]:
    """Apply one record addressed to a customer (its own ``Leg``, or a ``Provenance`` to it).
    ``producer`` names this S3 partition (``f3``); ``hop_delay_s`` is the deployment's δ."""
    key = envelope.order_key
    if state is not None and state.last_key is not None and key <= state.last_key:
        return state, FlowOutcome(replayed=True)
    work = FlowState() if state is None else state.copy()
    work.last_key = key
    call = _Call(work, envelope, rules, producer, hop_delay_s, FlowOutcome())
    bounds = call.bounds
    expire(work, call.now_s, bounds, (bounds.max_hops + 1) * hop_delay_s)
    body = envelope.body
    if isinstance(body, Leg):
        work.snapshot = body.snapshot
        _apply_leg(call, body)
    elif isinstance(body, PathAlert):
        call.outcome.alerts += member_alert(work, body, call.now_s, rules)
    else:
        _apply_provenance(call, body)
    keep_entries(work, call.now_s, bounds)
    return work, call.outcome


def _digest(seq: Any) -> str:
    return hashlib.sha256(orjson.dumps(seq)).hexdigest()[:16]


# --- own legs ------------------------------------------------------------------------------


def _apply_leg(call: _Call, leg: Leg) -> None:
    state, bounds, cents, cp = call.state, call.bounds, leg.usd_cents, leg.cp_key
    if leg.untraced_cents > 0:  # the customer's unlisted deposits since its previous leg
        add_untraced(state, leg.untraced_cents, call.now_s, bounds)
    if cents <= 0 or cp == f"c:{leg.customer_id}":
        return  # nothing moved, or between the customer's own accounts
    if leg.out:
        _withdraw(call, leg)
    elif cp is not None and cp.startswith("c:"):
        _add_pending(state, cp[2:], cents, call.now_s, bounds)
    elif cp is not None and (lists := tuple(n for n in RISKY_LISTS if n in leg.listed)):
        merge_entry(state, FlowEntry(cp, lists, leg.event_id, leg.at_s, cents, (), 0, PPM,
                                     cents, cents, PPM))
    else:
        add_untraced(state, cents, call.now_s, bounds)


def _add_pending(state: FlowState, sender: str, cents: int, now_s: int,
                 bounds: NetworkBounds) -> None:
    for index, item in enumerate(state.pending):
        if item.sender == sender:
            state.pending[index] = item._replace(received=item.received + cents,
                                                 left=item.left + cents, last_s=now_s)
            return
    state.pending.append(Pending(state.next_slot, sender, cents, cents, now_s))
    state.next_slot += 1
    if len(state.pending) > PENDING_KEPT:
        drop_pending(state, min(state.pending, key=lambda p: (p.last_s, p.slot)), now_s, bounds)


def haircut(parts: list[int], w: int) -> list[int]:
    """What a withdrawal of ``w`` cents takes from each part of a pool: all of it if ``w`` is
    at least the pool, else ``part * w / pool`` rounded down, the cents left over going one
    each to the parts with the largest remainders (ties: the first), so the takes add up to
    exactly ``w`` and none exceeds its part."""
    pool = sum(parts)
    if w >= pool:
        return list(parts)
    takes = [part * w // pool for part in parts]
    short = w - sum(takes)
    if short:
        order = sorted(range(len(parts)), key=lambda i: (-(parts[i] * w % pool), i))
        for i in order[:short]:
            takes[i] += 1
    return takes


def _withdraw(call: _Call, leg: Leg) -> None:
    """Take ``leg.usd_cents`` from the pool pro rata; to another customer, describe it."""
    state, bounds, me, w = call.state, call.bounds, leg.customer_id, leg.usd_cents
    n_entries, n_untraced = len(state.entries), len(state.untraced)
    takes = haircut([e.usd_left for e in state.entries] + [held for _, held in state.untraced]
                    + [p.left for p in state.pending], w)
    forwarded: list[FlowEntry] = []
    entries = []
    for entry, x in zip(state.entries, takes[:n_entries], strict=True):
        left = entry.usd_left - x
        entries.append(entry._replace(usd_left=left))
        if x == 0:
            continue
        share = entry.share_ppm * x // entry.usd_received
        if share < bounds.min_share_ppm:
            continue  # passed on as this customer's own value
        ratio = (entry.usd_received - left) * PPM // entry.usd_received
        forwarded.append(entry._replace(
            path=extend_path(entry.path, (me, leg.event_id, leg.at_s, x, share),
                             bounds.max_hops),
            hops=entry.hops + 1, share_ppm=share, usd_received=x, usd_left=x,
            min_forward_ppm=min(entry.min_forward_ppm, ratio)))
    state.entries = entries
    state.untraced = [(bucket, held - x) for (bucket, held), x
                      in zip(state.untraced, takes[n_entries:n_entries + n_untraced], strict=True)
                      if held > x]
    pending_takes = []
    pending_part = takes[n_entries + n_untraced:]
    for index, (item, x) in enumerate(zip(list(state.pending), pending_part, strict=True)):
        if x:
            state.pending[index] = item._replace(left=item.left - x)
            pending_takes.append((item.slot, x))
    pending_taken = sum(x for _, x in pending_takes)
    cp = leg.cp_key
    if cp is None or not cp.startswith("c:"):
        return  # the value leaves the network
    recipient = cp[2:]
    described = w - pending_taken
    fresh = described - sum(e.usd_received for e in forwarded)  # untraced, cut, beyond pool
    if fresh and (fresh * PPM >= bounds.min_share_ppm * w or not forwarded):
        forwarded.append(FlowEntry(f"c:{me}", (), leg.event_id, leg.at_s, fresh,
                                   ((me, leg.event_id, leg.at_s, fresh, PPM),), 1, PPM,
                                   fresh, fresh, PPM))
    if pending_takes and bounds.recent_forwards_kept:
        state.recent_out = [*state.recent_out, Forward(leg.event_id, recipient, leg.at_s,
                                                       tuple(pending_takes))]
        state.recent_out = state.recent_out[-bounds.recent_forwards_kept:]
    if described > 0:
        call.emit(Provenance(recipient, me, leg.event_id, leg.at_s, described,
                             tuple(e.wire() for e in forwarded)))


# --- provenance ----------------------------------------------------------------------------


def _apply_provenance(call: _Call, prov: Provenance) -> None:
    """Hold what is still here of the provenance's value, merge its entries, catch up."""
    state, bounds, me, u = call.state, call.bounds, prov.recipient, prov.usd_cents
    if u <= 0 or prov.sender == me:
        return
    item = next((p for p in state.pending if p.sender == prov.sender), None)
    r, left = (item.received, item.left) if item else (0, 0)
    m = min(u, r)
    incoming = [e for e in map(FlowEntry.from_wire, prov.entries)
                if e.start_at + bounds.horizon_s >= call.now_s and e.usd_received > 0]
    # the parts of the provenance: its entries, then the rest (untraced here)
    parts = [e.usd_received for e in incoming]
    parts.append(u - sum(parts))
    matched = haircut(parts, m)  # of each part, what meets pending value
    # of that, what is still here; what meets no pending value is not held: the pool
    # follows the customer's own legs (the deposit leg is missing, or the pending item it
    # made was described already or became untraced)
    held = [x * left // r if r else 0 for x in matched]
    add_untraced(state, held[-1], call.now_s, bounds)
    for entry, here in zip(incoming, held, strict=False):
        merged = merge_entry(state, entry._replace(usd_left=here))
        alerts, told = check_entry(state, me, merged, call.now_s, call.rules)
        call.outcome.alerts += alerts
        for path_alert in told:
            call.emit(path_alert)
    if item is None or m == 0:
        return
    ratio = (r - left) * PPM // r  # what this customer passed on of the pending value
    rest = item._replace(received=r - m, left=left - sum(held))
    room = rest.received - rest.left  # takes may not exceed what left the pending item
    forwards = []
    for forward in reversed(state.recent_out):  # newest first: trimmed first if need be
        takes = []
        for slot, t in forward.takes:
            if slot == item.slot:
                _catch_up(call, prov, forward, incoming, matched, m * t // r, t, r, ratio)
                t = min(room, t - -(-t * m // r))  # less the part described, rounded up
                room -= t
            if t > 0:
                takes.append((slot, t))
        if takes:
            forwards.append(forward._replace(takes=tuple(takes)))
    state.recent_out = forwards[::-1]
    if rest.received > 0:
        state.pending = [rest if p.slot == item.slot else p for p in state.pending]
    else:
        drop_pending(state, rest, call.now_s, bounds)


def _catch_up(call: _Call, prov: Provenance, forward: Forward, incoming: list[FlowEntry],
              matched: list[int], cents: int, take: int, received: int, ratio: int) -> None:
    """Send ``forward``'s recipient its part, ``take / received``, of the pending value the
    provenance matched (``matched`` cents per entry, ``cents`` in all)."""
    me, bounds = prov.recipient, call.bounds
    entries = []
    for entry, part in zip(incoming, matched, strict=False):
        x = part * take // received
        share = entry.share_ppm * x // entry.usd_received
        if x == 0 or share < bounds.min_share_ppm:
            continue
        entries.append(entry._replace(
            path=extend_path(entry.path, (me, forward.event_id, forward.at_s, x, share),
                             bounds.max_hops),
            hops=entry.hops + 1, share_ppm=share, usd_received=x, usd_left=x,
            min_forward_ppm=min(entry.min_forward_ppm, ratio)).wire())
    if entries and cents > 0:
        call.emit(Provenance(forward.to, me, forward.event_id, forward.at_s, cents,
                             tuple(entries), catch_up=True))


def max_provenance_bytes(bounds: NetworkBounds, id_chars: int) -> int:
    """Bytes of the largest provenance record (entries_per_customer + 1 largest entries)."""
    ident = "x" * id_chars
    entry = largest_entry(bounds, id_chars).wire()
    body = Provenance(ident, ident, ident, 9_999_999_999, 2**63 - 1,
                      (entry,) * (bounds.entries_per_customer + 1), True)
    seq = (9_999_999_999, 9, ident, "f" * 16, 2**31)
    return len(encode(Envelope(ident, seq, 9_999_999_999, RANK_PROVENANCE, body)))
