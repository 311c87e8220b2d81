"""The records that join the network stages, and their total order.

An internal record is an ``Envelope``: who produced it (``producer``: stage letter and
partition, e.g. ``c3``), a ``seq`` unique and deterministic for that producer, and the order
key ``(order_s, rank, producer, seq)``, which depends only on the input topics. A receiver
applies its records in order-key order (``internal_order``), so what it computes does not
depend on when the records arrived. A ``Marker`` is a producer's promise: it will never again
send a record with ``order_s`` below ``promise_s``.

Encoded as compact JSON arrays (orjson), first element the kind. An unknown kind or version,
or a malformed record, makes ``decode`` raise ``FormatError``: the stage dead-letters it and
goes on.
"""

from dataclasses import dataclass
from typing import Any

import orjson

VERSION = 1

RANK_LEG = 0
RANK_PROVENANCE = 2
RANK_PATH_ALERT = 3
RANK_RECIPIENT_LATE = 9

Snapshot = tuple[Any, ...]
"""Who the customer is, as of the leg: (kyc_status, kyc_tier, country_of_residence,
nationality, pep, sanctions_hit, expected_monthly_usd_cents or None, risk_level)."""

Hop = tuple[str, str, int]
"""One customer on a path: (customer_id, event_id of its transfer, at_s)."""

Entry = tuple[Any, ...]
"""A provenance entry, as ``streams.network.flow`` defines it (JSON-able values only)."""


class FormatError(ValueError):
    """An internal record this version cannot read."""


@dataclass(slots=True)
class Leg:
    """One transfer of one customer, as S1 applied it."""

    customer_id: str
    event_id: str
    at_s: int
    """Event time (epoch s), as the event says; the order key may be later (source-late)."""
    out: bool
    usd_cents: int
    cp_key: str | None
    """``a:<canonical address>``, ``c:<customer id>`` (another customer of ours), or None."""
    cp_type: str
    cp_country: str | None
    listed: tuple[str, ...]
    """Lists the counterparty was on when S1 applied the leg: ``sanctions``, ``mixer``,
    ``chain_risk`` (a provider's score at or above the high band)."""
    snapshot: Snapshot
    untraced_cents: int = 0
    """Flows legs only: the customer's deposits from unlisted addresses since its previous
    flows leg, which S1 did not send one by one (they only add untraced value); counted at
    this leg's time."""


@dataclass(slots=True)
class Provenance:
    """Value a sender passed on to a recipient, with where it came from."""

    recipient: str
    sender: str
    event_id: str
    """The sender's withdrawal (or, for a catch-up, the forward being completed)."""
    at_s: int
    usd_cents: int
    entries: tuple[Entry, ...]
    catch_up: bool = False


@dataclass(slots=True)
class PathAlert:
    """A cycle or layering chain found at customer ``found_at``, told to another customer on
    its path, so that every customer involved is alerted with its own profile."""

    recipient: str
    found_at: str
    rule_id: str
    period: str
    """The finding's cooldown period: every member's alert id names the same one."""
    entry: Entry
    """The provenance entry as it reached ``found_at`` (its path is the evidence)."""


Body = Leg | Provenance | PathAlert


@dataclass(slots=True)
class Envelope:
    producer: str
    seq: tuple[Any, ...]
    """S1: (offset of the transfer in its topic partition, index); S3: the cause's order key
    flattened, then an index. Compared only between records of one producer."""
    order_s: int
    rank: int
    body: Body

    @property
    def order_key(self) -> tuple[int, int, str, tuple[Any, ...]]:
        return (self.order_s, self.rank, self.producer, self.seq)

    @property
    def key(self) -> str:
        """The entity it is addressed to (its Kafka key): set by the sender per topic."""
        body = self.body
        return body.customer_id if isinstance(body, Leg) else body.recipient


@dataclass(slots=True)
class Marker:
    producer: str
    promise_s: int
    idle: bool = False
    floor_s: int | None = None
    """The lowest ``order_s`` the producer has ever sent or may still send (S1 only): what
    every flow producer may start its promise from (``streams.network.internal_order``)."""
    ceiling_s: int | None = None
    """The highest ``order_s`` the producer has ever held (S3 only): how far the flow stage
    may complete pending provenance once every input is idle."""


def encode(record: Envelope | Marker) -> bytes:
    if isinstance(record, Marker):
        return orjson.dumps(["m", VERSION, record.producer, record.promise_s, record.idle,
                             record.floor_s, record.ceiling_s])
    body = record.body
    head = [record.producer, record.seq, record.order_s, record.rank]
    if isinstance(body, Leg):
        return orjson.dumps(["l", VERSION, *head, body.customer_id, body.event_id, body.at_s,
                             body.out, body.usd_cents, body.cp_key, body.cp_type,
                             body.cp_country, list(body.listed), list(body.snapshot),
                             body.untraced_cents])
    if isinstance(body, PathAlert):
        return orjson.dumps(["a", VERSION, *head, body.recipient, body.found_at, body.rule_id,
                             body.period, list(body.entry)])
    return orjson.dumps(["p", VERSION, *head, body.recipient, body.sender, body.event_id,
                         body.at_s, body.usd_cents, list(body.entries), body.catch_up])


def _tuples(value: Any) -> Any:
    """JSON arrays back into (nested) tuples, so decoded records equal the ones encoded."""
    if isinstance(value, list):
        return tuple(_tuples(item) for item in value)
    return value


def decode(raw: bytes) -> Envelope | Marker:
    try:
        fields = orjson.loads(raw)
        kind, version = fields[0], fields[1]
    except (orjson.JSONDecodeError, TypeError, IndexError, KeyError) as exc:
        raise FormatError(f"not an internal record: {exc}") from None
    if version != VERSION or kind not in ("m", "l", "p", "a"):
        raise FormatError(f"internal record kind {kind!r} version {version!r} is not known to "
                          f"this version of amlstream (it reads version {VERSION})")
    try:
        record = _fields(kind, fields)
    except (TypeError, ValueError, IndexError) as exc:
        raise FormatError(f"internal record kind {kind!r} is malformed: {exc}") from None
    _check(record)
    return record


def _fields(kind: str, fields: list[Any]) -> Envelope | Marker:
    if kind == "m":
        return Marker(*fields[2:7])
    producer, seq, order_s, rank = fields[2], _tuples(fields[3]), fields[4], fields[5]
    body: Body
    if kind == "l":
        (customer_id, event_id, at_s, out, usd_cents, cp_key, cp_type, cp_country, listed,
         snapshot, untraced_cents) = fields[6:17]
        body = Leg(customer_id, event_id, at_s, out, usd_cents, cp_key, cp_type, cp_country,
                   tuple(listed), tuple(snapshot), untraced_cents)
    elif kind == "a":
        recipient, found_at, rule_id, period, entry = fields[6:11]
        body = PathAlert(recipient, found_at, rule_id, period, _tuples(entry))
    else:
        recipient, sender, event_id, at_s, usd_cents, entries, catch_up = fields[6:13]
        body = Provenance(recipient, sender, event_id, at_s, usd_cents, _tuples(entries),
                          catch_up)
    return Envelope(producer, seq, order_s, rank, body)


def _check(record: Envelope | Marker) -> None:
    """The fields the ordering and the routing rely on have their types (a record written by
    something else than amlstream is refused here, not deep in a stage)."""
    ints = ([record.promise_s] if isinstance(record, Marker)
            else [record.order_s, record.rank])
    if not isinstance(record.producer, str) or not all(
            isinstance(n, int) and not isinstance(n, bool) for n in ints):
        raise FormatError("internal record with a producer that is not a string or an order "
                          "that is not an integer")
    if isinstance(record, Envelope) and not isinstance(record.key, str):
        raise FormatError("internal record addressed to no customer or counterparty")
