"""S2's state: what one counterparty (``a:<address>`` or ``c:<customer id>``) has seen.

Times are epoch seconds, USD integer cents. "Now" is the ``order_s`` of the leg being
applied (monotone per counterparty), so every window here is in order time: an entry's
``last_s``, the day buckets and ``first_seen_s``/``last_seen_s`` use it. A transfer's own
event time (``at_s``) is kept for evidence and for retroactive screening.

- ``payers`` / ``payees``: the customers who paid it (a withdrawal to it, ``leg.out``) / were
  paid by it (a deposit from it), at most ``network.customers_per_counterparty`` each, least
  recently seen first (the first one is forgotten when a new one comes). Each keeps the
  customer's latest snapshot and its last ``TRANSFERS_KEPT`` transfers with the counterparty.
  A customer in the window = an entry with ``last_s`` in it: exact while no customer of the
  window was forgotten.
- ``distinct_payers_total`` / ``distinct_payees_total``: customers ever entered on that side,
  exact while nobody was forgotten; a forgotten customer who comes back counts again.
- ``days``: USD paid to / by it per UTC day of order time, only days with activity, at most
  ``DAYS_KEPT``: the days that intersect the last 30 days.
- ``alerted``: per rule, the period last alerted in and the customers alerted in it (only
  those still kept on the rule's sides: at most the cap per side).
- ``screened``: the listings already screened (``listing key:listed_at_s``), newest last.

Encoded (``to_bytes``) as one orjson array, first element the format version:
``[1, cp_type, first_seen_s, last_seen_s, last_key, days, payers, payees,
distinct_payers_total, distinct_payees_total, alerted, screened]`` with ``days`` as
``[[day, usd_to, usd_from], ...]``, a customer entry as ``[customer_id, last_s, count,
usd_cents, snapshot, [[event_id, at_s, usd_cents], ...]]`` (its side gives the direction) and
``alerted`` as ``{rule_id: [period, [customer_id, ...]]}``.

Measured sizes (``tests/unit/test_counterparty_stage.py``): a one-off address (one customer,
one leg, a 36-character event id): **258 B** (asserted < 400 B). Worst case at the default
caps, every cap full (64 payers and 64 payees with 3 transfers each, 31 day buckets, 3 rules
alerted for all 128, 16 listings screened), with 12-character customer ids, 36-character
event ids and 11-digit amounts: **44,409 B** (asserted < ``WORST_CASE_BYTES``). Where it goes:
a customer entry ~300 B (id, snapshot ~75 B, 3 transfers ~62 B each), 128 of them ~38 KB;
``alerted`` ~3.9 KB; days and screened ~1 KB each. With 12-character event ids: 35,193 B;
with every identifier at its schema maximum (128 characters): 124,281 B. Entries and
``alerted`` scale with ``customers_per_counterparty`` (at its maximum, 256, ~4 times as much).
"""

from dataclasses import dataclass, field
from typing import Any

import orjson

from streams.network.records import FormatError, Leg, Snapshot

FORMAT = 1
DAY_S = 86400
D7_S = 7 * DAY_S
D30_S = 30 * DAY_S
DAYS_KEPT = 31
TRANSFERS_KEPT = 3
SCREENED_KEPT = 16
WORST_CASE_BYTES = 48_000
"""Encoded worst case at the default caps, 12-character customer and 36-character event ids."""

CpTransfer = tuple[str, int, bool, int]
"""A customer's transfer with the counterparty: (event_id, at_s, out, usd_cents)."""

OrderKey = tuple[Any, ...]
"""``Envelope.order_key``: (order_s, rank, producer, seq)."""

Period = int | str
"""A cooldown period (``order_s // cooldown_s``), or the triggering event id (cooldown 0)."""


@dataclass(slots=True)
class CustomerEntry:
    """One customer on one side of the counterparty."""

    last_s: int
    """Order time of its latest leg on this side."""
    count: int
    usd_cents: int
    """Legs and USD on this side since it was entered (not windowed)."""
    snapshot: Snapshot
    """The customer as its latest leg (on either side) described it."""
    transfers: list[CpTransfer] = field(default_factory=list)
    """The last ``TRANSFERS_KEPT``, in the order applied."""

    @property
    def latest(self) -> CpTransfer:
        return self.transfers[-1]


def _tuples(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_tuples(item) for item in value)
    return value


def _encode_side(entries: dict[str, CustomerEntry]) -> list[Any]:
    return [[customer_id, entry.last_s, entry.count, entry.usd_cents, entry.snapshot,
             [[event_id, at_s, usd_cents] for event_id, at_s, _, usd_cents in entry.transfers]]
            for customer_id, entry in entries.items()]


def _decode_side(rows: list[Any], out: bool) -> dict[str, CustomerEntry]:
    return {customer_id: CustomerEntry(last_s, count, usd_cents, tuple(snapshot),
                                       [(event_id, at_s, out, usd) for event_id, at_s, usd
                                        in transfers])
            for customer_id, last_s, count, usd_cents, snapshot, transfers in rows}


@dataclass
class CounterpartyState:
    """One counterparty's state (see the module docstring)."""

    cp_type: str
    first_seen_s: int
    last_seen_s: int
    last_key: OrderKey | None = None
    """Order key of the last leg applied: a leg at or below it is a replay."""
    days: dict[int, list[int]] = field(default_factory=dict)
    """UTC day of order time -> [USD paid to it, USD paid by it], oldest day first."""
    payers: dict[str, CustomerEntry] = field(default_factory=dict)
    payees: dict[str, CustomerEntry] = field(default_factory=dict)
    distinct_payers_total: int = 0
    distinct_payees_total: int = 0
    alerted: dict[str, tuple[Period, list[str]]] = field(default_factory=dict)
    screened: list[str] = field(default_factory=list)

    def side(self, out: bool) -> dict[str, CustomerEntry]:
        """The payers (``out``: customers who paid it) or the payees."""
        return self.payers if out else self.payees

    def forgotten(self) -> int:
        """Customers entered and since forgotten, both sides."""
        return (self.distinct_payers_total - len(self.payers)
                + self.distinct_payees_total - len(self.payees))

    def record(self, leg: Leg, now_s: int, kept: int) -> None:
        """Add ``leg`` (order time ``now_s``); keep at most ``kept`` customers per side."""
        entries = self.side(leg.out)
        entry = entries.pop(leg.customer_id, None)
        if entry is None:
            entry = CustomerEntry(now_s, 0, 0, leg.snapshot)
            if leg.out:
                self.distinct_payers_total += 1
            else:
                self.distinct_payees_total += 1
        entry.last_s = now_s
        entry.count += 1
        entry.usd_cents += leg.usd_cents
        entry.snapshot = leg.snapshot
        entry.transfers.append((leg.event_id, leg.at_s, leg.out, leg.usd_cents))
        del entry.transfers[:-TRANSFERS_KEPT]
        entries[leg.customer_id] = entry  # most recent last
        while len(entries) > kept:
            del entries[next(iter(entries))]
        other = self.side(not leg.out).get(leg.customer_id)
        if other is not None:
            other.snapshot = leg.snapshot
        day = now_s // DAY_S
        bucket = self.days.setdefault(day, [0, 0])
        bucket[0 if leg.out else 1] += leg.usd_cents
        for old in list(self.days):
            if (old + 1) * DAY_S > now_s - D30_S:
                break
            del self.days[old]
        self.last_seen_s = now_s

    def entry(self, customer_id: str, sides: tuple[bool, ...]) -> CustomerEntry:
        """The customer's most recent entry on ``sides`` (the first side on a tie)."""
        best: CustomerEntry | None = None
        for out in sides:
            entry = self.side(out).get(customer_id)
            if entry is not None and (best is None or entry.last_s > best.last_s):
                best = entry
        if best is None:
            raise KeyError(customer_id)
        return best

    def transfers(self, customer_id: str, sides: tuple[bool, ...],
                  after_s: int | None = None) -> list[CpTransfer]:
        """The customer's kept transfers on ``sides`` (at ``at_s > after_s`` if given), the
        newest ``TRANSFERS_KEPT`` by event time, newest first."""
        found = [transfer for out in sides if (entry := self.side(out).get(customer_id))
                 for transfer in entry.transfers if after_s is None or transfer[1] > after_s]
        return sorted(found, key=lambda t: (t[1], t[0]), reverse=True)[:TRANSFERS_KEPT]

    def within(self, out: bool, window_s: int, now_s: int) -> list[str]:
        """Customers on that side seen in ``(now_s - window_s, now_s]``, most recent first."""
        since_s = now_s - window_s
        found = []
        for customer_id, entry in reversed(self.side(out).items()):
            if entry.last_s <= since_s:
                break  # entries are in last_s order
            found.append(customer_id)
        return found

    def users(self, window_s: int, now_s: int) -> list[str]:
        """Customers on either side within the window, most recent first (ties by id)."""
        last: dict[str, int] = {}
        for out in (True, False):
            for customer_id in self.within(out, window_s, now_s):
                last[customer_id] = max(last.get(customer_id, 0),
                                        self.side(out)[customer_id].last_s)
        return sorted(last, key=lambda customer_id: (-last[customer_id], customer_id))

    def usd(self, out: bool, window_s: int, now_s: int) -> int:
        """USD paid to it (``out``) or by it over the UTC days that intersect
        ``(now_s - window_s, now_s]``: at most one day more than the window."""
        since_s = now_s - window_s
        column = 0 if out else 1
        return sum(bucket[column] for day, bucket in self.days.items()
                   if (day + 1) * DAY_S > since_s)

    def to_bytes(self) -> bytes:
        alerted = {rule_id: [period, ids] for rule_id, (period, ids) in self.alerted.items()}
        return orjson.dumps([
            FORMAT, self.cp_type, self.first_seen_s, self.last_seen_s, self.last_key,
            [[day, *bucket] for day, bucket in self.days.items()],
            _encode_side(self.payers), _encode_side(self.payees),
            self.distinct_payers_total, self.distinct_payees_total, alerted, self.screened,
        ])

    @classmethod
    def from_bytes(cls, raw: bytes) -> "CounterpartyState":
        try:
            fields = orjson.loads(raw)
            version = fields[0]
        except (orjson.JSONDecodeError, TypeError, IndexError, KeyError) as exc:
            raise FormatError(f"not a counterparty state: {exc}") from None
        if version != FORMAT:
            raise FormatError(f"counterparty state format {version!r} is not known to this "
                              f"version of amlstream (it reads format {FORMAT})")
        (_, cp_type, first_seen_s, last_seen_s, last_key, days, payers, payees, payers_total,
         payees_total, alerted, screened) = fields
        return cls(
            cp_type=cp_type, first_seen_s=first_seen_s, last_seen_s=last_seen_s,
            last_key=None if last_key is None else (*last_key[:3], _tuples(last_key[3])),
            days={day: [usd_to, usd_from] for day, usd_to, usd_from in days},
            payers=_decode_side(payers, True), payees=_decode_side(payees, False),
            distinct_payers_total=payers_total, distinct_payees_total=payees_total,
            alerted={rule_id: (period, ids) for rule_id, (period, ids) in alerted.items()},
            screened=screened,
        )
