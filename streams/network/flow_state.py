"""S3's state for one customer: where the value it holds came from (``docs/network-design.md``
§5), and the wire form of a provenance entry.

All integers: USD in cents, times in epoch seconds, shares in parts per million (ppm).

The customer's **pool** is the value it holds that came in within ``network.horizon_s``:

- ``entries``: traced value, each a ``FlowEntry`` (an origin, the customers that passed it on,
  the share of the origin's value it is, the USD received and the USD still here);
- ``untraced``: value from unlisted sources, in time buckets of ``horizon_s / 8`` (by the
  ``order_s`` it was applied at), dropped when a bucket is wholly older than the horizon;
- ``pending``: internal deposits whose sender has not yet described them (its ``Provenance``
  comes one hop delay later), one item per sender;
- ``recent_out``: internal withdrawals that took from ``pending``, with what they took from each
  pending item, so that the sender's provenance, when it comes, is passed on as catch-ups.

Bounds: entries <= ``entries_per_customer``; a path <= ``max_hops`` hops; pending <=
``PENDING_KEPT``; recent_out <= ``recent_forwards_kept``, each with <= ``PENDING_KEPT`` takes;
untraced <= ``UNTRACED_KEPT`` buckets; alerted <= ``ALERTED_KEPT``. ``max_state_bytes`` builds
the largest state these allow (every amount 19 digits, origins of 256-character addresses) and
measures it. With the default bounds: 15.4 KB for ids of 24 characters, 30.6 KB for
128-character ids (the schema's limit; ids needing JSON escapes grow by up to 6 bytes per
character). Measured: a customer with only external unlisted activity ~110 B; six customers
passing value around every few minutes, full on every bound, ~3.3 KB (12-character ids).
"""

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson

from schemas.network_config import PPM, NetworkBounds
from streams.network.records import FormatError, Snapshot

STATE_FORMAT = 1
UNTRACED_BUCKETS = 8
UNTRACED_KEPT = UNTRACED_BUCKETS + 2
"""Live buckets are at most 9 (a horizon plus the current one); 10 is a safety cap."""
PENDING_KEPT = 8
"""Senders whose internal deposits wait for their provenance; the oldest becomes untraced."""
ALERTED_KEPT = 16
"""Alert ids remembered for the cooldown; beyond it a repeat alert keeps the same id."""
RISKY_LISTS = ("sanctions", "mixer", "chain_risk")

PathHop = tuple[str, str, int, int, int]
"""A customer that passed the value on: (customer_id, event_id of its withdrawal, at_s,
usd_cents passed on, share_ppm of the origin's value passed on)."""
OrderKey = tuple[Any, ...]


class FlowEntry(NamedTuple):
    """Traced value held by a customer (or, in a ``Provenance``, passed on: then
    ``usd_received == usd_left`` is the piece passed on)."""

    origin: str
    """``a:<listed address>`` or ``c:<customer>``: the first customer it was untraced at."""
    lists: tuple[str, ...]
    """The origin's risky lists (``RISKY_LISTS``); empty for a customer origin."""
    start_event: str
    """The transfer the origin's value was first seen in: the deposit from the listed
    address, or the origin customer's withdrawal. With ``origin``, it names the entry."""
    start_at: int
    start_usd: int
    """USD cents of the origin's value (``share_ppm`` is a part of it)."""
    path: tuple[PathHop, ...]
    """Who passed it on, oldest first; the holder is not on it. Longer than ``max_hops``,
    the oldest hops after the first are dropped (the origin customer's hop stays)."""
    hops: int
    """Customers that passed it on, counting those dropped from ``path``."""
    share_ppm: int
    usd_received: int
    usd_left: int
    min_forward_ppm: int
    """The smallest share any intermediate passed on of what it received of this value
    (cumulative: ``1 - usd_left / usd_received`` after its forward); 1,000,000 if none yet."""

    @property
    def risky(self) -> bool:
        return bool(self.lists)

    def customers(self) -> tuple[str, ...]:
        return tuple(hop[0] for hop in self.path)

    def merge_key(self) -> tuple[Any, ...]:
        """Pieces of one origin value that came the same way are one entry."""
        return (self.origin, self.start_event, self.hops, self.customers())

    def rank_key(self) -> tuple[Any, ...]:
        """Kept first: a risky origin, then more USD still here, more hops, then the origin
        key, start event and path (a total order: no tie left to chance)."""
        return (not self.risky, -self.usd_left, -self.hops, self.origin, self.start_event,
                self.path, self.share_ppm, self.usd_received, self.min_forward_ppm)

    def wire(self) -> tuple[Any, ...]:
        """As a plain tuple (``records.Entry``)."""
        return (self.origin, self.lists, self.start_event, self.start_at, self.start_usd,
                self.path, self.hops, self.share_ppm, self.usd_received, self.usd_left,
                self.min_forward_ppm)

    @classmethod
    def from_wire(cls, raw: Any) -> "FlowEntry":
        if not isinstance(raw, list | tuple) or len(raw) != len(cls._fields):
            raise FormatError(f"not a provenance entry: {raw!r}")
        return cls(raw[0], tuple(raw[1]), raw[2], raw[3], raw[4],
                   tuple((h[0], h[1], h[2], h[3], h[4]) for h in raw[5]), *raw[6:])


class Pending(NamedTuple):
    """Internal deposits from one sender not yet described by its provenance."""

    slot: int
    """Names the item in ``Forward.takes`` (a counter of the state)."""
    sender: str
    received: int
    """USD cents deposited and not yet matched by a provenance."""
    left: int
    """Of it, USD cents still here (withdrawals took the rest pro rata)."""
    last_s: int
    """``order_s`` of the latest deposit; the item becomes untraced ``pending_ttl_s`` after."""


class Forward(NamedTuple):
    """An internal withdrawal that took value from pending items (for catch-ups)."""

    event_id: str
    to: str
    at_s: int
    takes: tuple[tuple[int, int], ...]
    """(slot, USD cents taken from that pending item and not yet described)."""


@dataclass
class FlowState:
    """One customer's provenance state (the ``<app>-flow-state`` table value)."""

    last_key: OrderKey | None = None
    """Order key of the last record applied: one at or below it is a replay."""
    snapshot: Snapshot | None = None
    """The customer as its latest own leg described it (for alerts)."""
    untraced: list[tuple[int, int]] = field(default_factory=list)
    """(bucket = order_s // bucket width, USD cents), oldest first."""
    entries: list[FlowEntry] = field(default_factory=list)
    pending: list[Pending] = field(default_factory=list)
    recent_out: list[Forward] = field(default_factory=list)
    alerted: list[tuple[int, str]] = field(default_factory=list)
    """(until order_s, alert id) of alerts in their cooldown period, oldest first."""
    next_slot: int = 0

    def copy(self) -> "FlowState":
        """A copy whose lists can change without touching this one (items are immutable)."""
        return FlowState(self.last_key, self.snapshot, self.untraced[:], self.entries[:],
                         self.pending[:], self.recent_out[:], self.alerted[:], self.next_slot)

    def pool(self) -> int:
        """USD cents held: traced, untraced and pending."""
        return (sum(e.usd_left for e in self.entries) + sum(c for _, c in self.untraced)
                + sum(p.left for p in self.pending))

    def to_bytes(self) -> bytes:
        return orjson.dumps([
            STATE_FORMAT, self.last_key, self.snapshot, self.untraced,
            [e.wire() for e in self.entries], [tuple(p) for p in self.pending],
            [tuple(f) for f in self.recent_out], self.alerted, self.next_slot])

    @classmethod
    def from_bytes(cls, raw: bytes) -> "FlowState":
        try:
            fields = orjson.loads(raw)
            version = fields[0]
        except (orjson.JSONDecodeError, TypeError, IndexError, KeyError) as exc:
            raise FormatError(f"not a flow state: {exc}") from None
        if version != STATE_FORMAT or len(fields) != 9:
            raise FormatError(f"flow state format {version!r} is not known to this version "
                              f"(it reads format {STATE_FORMAT})")
        _, last_key, snapshot, untraced, entries, pending, recent, alerted, next_slot = fields
        return cls(
            last_key=None if last_key is None else _tuples(last_key),
            snapshot=None if snapshot is None else tuple(snapshot),
            untraced=[(b, c) for b, c in untraced],
            entries=[FlowEntry.from_wire(e) for e in entries],
            pending=[Pending(*p) for p in pending],
            recent_out=[Forward(f[0], f[1], f[2], tuple((s, c) for s, c in f[3]))
                        for f in recent],
            alerted=[(u, a) for u, a in alerted],
            next_slot=next_slot,
        )


def _tuples(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_tuples(item) for item in value)
    return value


# --- untraced value ------------------------------------------------------------------------


def bucket_width(bounds: NetworkBounds) -> int:
    return max(1, bounds.horizon_s // UNTRACED_BUCKETS)


def add_untraced(state: FlowState, cents: int, now_s: int, bounds: NetworkBounds) -> None:
    if cents <= 0:
        return
    bucket = now_s // bucket_width(bounds)
    if state.untraced and state.untraced[-1][0] >= bucket:
        last, held = state.untraced[-1]
        state.untraced[-1] = (last, held + cents)
    else:
        state.untraced.append((bucket, cents))
    while len(state.untraced) > UNTRACED_KEPT:  # merge the two oldest
        (_, a), (b, c) = state.untraced[0], state.untraced[1]
        state.untraced[:2] = [(b, a + c)]


def expire(state: FlowState, now_s: int, bounds: NetworkBounds, pending_ttl_s: int) -> None:
    """Drop what is older than the horizon: untraced buckets wholly older, entries whose
    origin is older (their value stays, untraced), pending items not described within
    ``pending_ttl_s`` (untraced too, and their forwards get no catch-up)."""
    horizon = bounds.horizon_s
    width = bucket_width(bounds)
    while state.untraced and (state.untraced[0][0] + 1) * width + horizon <= now_s:
        del state.untraced[0]  # buckets are oldest first
    if any(e.start_at + horizon < now_s for e in state.entries):
        kept = [e for e in state.entries if e.start_at + horizon >= now_s]
        gone = sum(e.usd_left for e in state.entries) - sum(e.usd_left for e in kept)
        state.entries = kept
        add_untraced(state, gone, now_s, bounds)
    for item in [p for p in state.pending if p.last_s + pending_ttl_s < now_s]:
        drop_pending(state, item, now_s, bounds)
    if any(until <= now_s for until, _ in state.alerted):
        state.alerted = [(until, a) for until, a in state.alerted if until > now_s]


def drop_pending(state: FlowState, item: Pending, now_s: int, bounds: NetworkBounds) -> None:
    """The item will not be described: what is left of it is untraced value."""
    state.pending = [p for p in state.pending if p.slot != item.slot]
    add_untraced(state, item.left, now_s, bounds)
    forwards = []
    for forward in state.recent_out:
        takes = tuple(t for t in forward.takes if t[0] != item.slot)
        if takes:
            forwards.append(forward._replace(takes=takes))
    state.recent_out = forwards


# --- entries -------------------------------------------------------------------------------


def merge_entry(state: FlowState, entry: FlowEntry) -> FlowEntry:
    """Add ``entry`` to the state, merged with the entry of the same ``merge_key``: USD and
    shares add up (per hop too, with the newer hop's event), the smallest forwarded share is
    the larger of the two (the later piece carries the cumulative ratio). Returns the result."""
    key = entry.merge_key()
    for index, held in enumerate(state.entries):
        if held.merge_key() == key:
            path = tuple((c, ev, at, u1 + u2, min(PPM, s1 + s2)) for (_, _, _, u1, s1), (
                c, ev, at, u2, s2) in zip(held.path, entry.path, strict=True))
            merged = held._replace(
                path=path, share_ppm=min(PPM, held.share_ppm + entry.share_ppm),
                usd_received=held.usd_received + entry.usd_received,
                usd_left=held.usd_left + entry.usd_left,
                min_forward_ppm=max(held.min_forward_ppm, entry.min_forward_ppm))
            state.entries[index] = merged
            return merged
    state.entries.append(entry)
    return entry


def keep_entries(state: FlowState, now_s: int, bounds: NetworkBounds) -> None:
    """Entries with value left; beyond ``entries_per_customer``, the first by ``rank_key``
    (the value of the others stays, untraced). Otherwise in the order they came."""
    entries = [e for e in state.entries if e.usd_left > 0]
    if len(entries) > bounds.entries_per_customer:
        entries.sort(key=FlowEntry.rank_key)
        add_untraced(state, sum(e.usd_left for e in entries[bounds.entries_per_customer:]),
                     now_s, bounds)
        del entries[bounds.entries_per_customer:]
    state.entries = entries


def extend_path(path: tuple[PathHop, ...], hop: PathHop, max_hops: int) -> tuple[PathHop, ...]:
    """``path`` then ``hop``, at most ``max_hops`` long: the first hop (the origin's) and the
    newest are kept."""
    longer = (*path, hop)
    if len(longer) <= max_hops:
        return longer
    return (longer[0], *longer[len(longer) - max_hops + 1:])


# --- size bounds ---------------------------------------------------------------------------

_MAX_CENTS = 2**63 - 1
_MAX_S = 9_999_999_999


def largest_entry(bounds: NetworkBounds, id_chars: int, address_chars: int = 256) -> FlowEntry:
    """An entry as large as the bounds allow, ids of ``id_chars`` ASCII characters."""
    ident = "x" * id_chars
    hop: PathHop = (ident, ident, _MAX_S, _MAX_CENTS, PPM)
    return FlowEntry("a:" + "x" * address_chars, RISKY_LISTS, ident, _MAX_S, _MAX_CENTS,
                     (hop,) * bounds.max_hops, 2**31, PPM, _MAX_CENTS, _MAX_CENTS, PPM)


def max_state_bytes(bounds: NetworkBounds, id_chars: int, snapshot_chars: int = 32) -> int:
    """Bytes of the largest state the bounds allow (ids of ``id_chars`` ASCII characters;
    ids needing JSON escapes are larger, by at most 6 bytes per character)."""
    ident = "x" * id_chars
    key = (_MAX_S, 9, ident, (_MAX_S, 9, ident, "f" * 16, 2**31), 2**31)
    state = FlowState(
        last_key=key,
        snapshot=("x" * snapshot_chars, 3, "XX", "XX", False, False, _MAX_CENTS,
                  "x" * snapshot_chars),
        untraced=[(_MAX_S, _MAX_CENTS)] * UNTRACED_KEPT,
        entries=[largest_entry(bounds, id_chars)] * bounds.entries_per_customer,
        pending=[Pending(2**31, ident, _MAX_CENTS, _MAX_CENTS, _MAX_S)] * PENDING_KEPT,
        recent_out=[Forward(ident, ident, _MAX_S, ((2**31, _MAX_CENTS),) * PENDING_KEPT)]
        * bounds.recent_forwards_kept,
        alerted=[(_MAX_S, "f" * 32)] * ALERTED_KEPT,
        next_slot=2**31,
    )
    return len(state.to_bytes())
