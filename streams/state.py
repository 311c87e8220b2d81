"""Everything amlstream remembers about one customer, bounded in size, serialisable to bytes.

Sizes are capped whatever the customer does: windows are bucketed (``streams.windows``),
counterparties, near-threshold transfers and recent transfers are kept up to a fixed count.
"""

import struct
import sys
import zlib
from array import array
from dataclasses import dataclass, field
from typing import Any

import orjson

from schemas.config_types import COUNTERPARTIES_KEPT
from streams.reference_lists import canonical_address
from streams.windows import BUCKET_LEVELS, FIELDS, Level, RollingWindows

__all__ = ["COUNTERPARTIES_KEPT", "RECENT_TRANSFERS_KEPT", "CustomerState", "Profile"]

STATE_FORMAT = 3
"""How ``CustomerState.to_bytes`` lays a state out (see there); format 2 is still read."""
_HEADER = struct.Struct("<BIII")
"""Format 3 starts with: the format, then how many numbers each window level holds."""
_SWAP = sys.byteorder != "little"
"""Window levels are written little-endian, whatever the machine."""
RECENT_TRANSFERS_KEPT = 10
"""Recent transfers kept as evidence for alerts."""
ALERTS_KEPT = 10
"""The customer's latest alerts of its own rules remembered, with their evidence (for decisions
on them and the investigators' view): at most ``ALERT_JSON_MAX_BYTES`` each."""
ALERT_JSON_MAX_BYTES = 4096
"""An alert as remembered (without the customer snapshot): ~1 to 2.5 KB."""
DECISIONS_KEPT = 20
"""The latest decisions on the customer's alerts remembered (the topic keeps them all)."""
DECISION_REASON_KEPT = 500
"""Characters of a decision's reason remembered."""
WHITELIST_KEPT = 100
"""Counterparties whitelisted per customer and rule, the soonest to end forgotten first."""
RISK_HISTORY_KEPT = 20
"""The latest published risk assessments remembered."""


def counterparty_key(address: str) -> int:
    """A stable 32-bit key for an address (``hash()`` is salted per process, so not that);
    spellings of one address that differ only in meaningless letter case share it."""
    return zlib.crc32(canonical_address(address).encode())


def customer_key(customer_id: str) -> int:
    """The key of another customer of ours as a counterparty: the CRC-32 of
    ``c:<customer_id>``, the form the network stages use (``streams.network.records``). An
    address spelt exactly ``c:<customer_id>`` would share it, as any two CRC-32s may."""
    return zlib.crc32(f"c:{customer_id}".encode())


def transfer_counterparty_key(customer_id: str, cp_customer_id: str | None,
                              address: str | None) -> int | None:
    """The key a transfer's counterparty is remembered under: the other customer for an
    internal transfer (whatever the address, which may be absent), else the address. None for a
    transfer between the customer's own accounts (``cp_customer_id == customer_id``: not a
    counterparty) and for a counterparty without either."""
    if cp_customer_id is not None:
        return None if cp_customer_id == customer_id else customer_key(cp_customer_id)
    return counterparty_key(address) if address else None


@dataclass(slots=True)
class Profile:
    kyc_status: str = "unknown"
    kyc_tier: int = 0
    country_of_residence: str | None = None
    nationality: str | None = None
    pep: bool = False
    sanctions_hit: bool = False
    expected_monthly_usd_cents: int | None = None
    registered_at_s: int | None = None

    def to_list(self) -> list[Any]:
        return [self.kyc_status, self.kyc_tier, self.country_of_residence, self.nationality,
                self.pep, self.sanctions_hit, self.expected_monthly_usd_cents,
                self.registered_at_s]


@dataclass(slots=True)
class CustomerState:
    profile: Profile = field(default_factory=Profile)
    windows: RollingWindows = field(default_factory=RollingWindows)
    counterparties_in: dict[int, list[int]] = field(default_factory=dict)
    """counterparty key (``transfer_counterparty_key``) -> [first seen, last seen (epoch s),
    transfers], senders to this customer; ``counterparties_out`` the same for receivers. At
    most ``COUNTERPARTIES_KEPT`` each, the least recently seen forgotten first, never by age: a
    distinct count over any window (up to 30d and beyond) is exact up to that many."""
    counterparties_out: dict[int, list[int]] = field(default_factory=dict)
    near_threshold: list[list[Any]] = field(default_factory=list)
    """[at_s, event_id, usd_cents] of transfers just below the reporting threshold."""
    recent: list[list[Any]] = field(default_factory=list)
    """[at_s, out (0/1), usd_cents, event_id] of the last transfers, oldest first."""
    alerted: dict[str, int] = field(default_factory=dict)
    """rule id -> newest cooldown period alerted (``at_s // cooldown_s``)."""
    applied: dict[str, int] = field(default_factory=dict)
    """input source (e.g. ``transactions/3``) -> last offset applied."""
    watermark_s: int = 0
    """Newest transfer's event time; windows expire relative to it."""
    risk_level: str = "unrated"
    alert_points: float = 0.0
    """Behaviour part of the risk score, decayed to ``alert_points_at_s``."""
    alert_points_at_s: int = 0
    network_active_until_s: int = 0
    """Until then (event time) the customer's transfers go to the flow stage: it moved value
    to or from another customer, or a listed address, within the horizon."""
    network_untraced_cents: int = 0
    """Deposits from unlisted addresses not sent to the flow stage yet: they go with the
    customer's next leg there (``streams.network.emit``)."""
    alert_log: list[list[Any]] = field(default_factory=list)
    """[at_s, alert_id, rule_id, severity, counterparty key or None, the alert as JSON] of the
    latest alerts of the customer's own rules, oldest first, at most ``ALERTS_KEPT``."""
    decisions: list[list[Any]] = field(default_factory=list)
    """[at_s, alert_id, rule_id, decision, decided_by, reason, decision event id], oldest
    first, at most ``DECISIONS_KEPT``."""
    whitelist: dict[str, int] = field(default_factory=dict)
    """``rule_id:counterparty key`` -> until (epoch s): that rule does not alert on transfers
    with that counterparty (a false positive decided on)."""
    risk_history: list[list[Any]] = field(default_factory=list)
    """[at_s, previous level, level, score (decimal string), event id] of the published
    assessments, oldest first, at most ``RISK_HISTORY_KEPT``."""
    risk_published: str = "unrated"
    """The level last published: the first is the initial assessment (``streams.risk``)."""

    def already_applied(self, source: str, offset: int) -> bool:
        return offset <= self.applied.get(source, -1)

    def to_bytes(self) -> bytes:
        """Format 3: ``_HEADER``, each window level's 64-bit integers (``streams.windows``),
        then the other fields as a JSON array."""
        levels = self.windows.levels
        return b"".join((
            _HEADER.pack(STATE_FORMAT, *(len(level) for level in levels)),
            *(_little_endian(level) for level in levels),
            orjson.dumps([
                self.profile.to_list(),
                _flatten(self.counterparties_in),
                _flatten(self.counterparties_out),
                self.near_threshold,
                self.recent,
                self.alerted,
                self.applied,
                self.watermark_s,
                [self.risk_level, self.alert_points, self.alert_points_at_s],
                self.network_active_until_s,
                self.network_untraced_cents,
                [self.alert_log, self.decisions, self.whitelist, self.risk_history,
                 self.risk_published],
            ]),
        ))

    @classmethod
    def from_bytes(cls, raw: bytes) -> "CustomerState":
        if raw[:1] == b"[":
            return _from_format_2(raw)
        if len(raw) < _HEADER.size or raw[0] != STATE_FORMAT:
            found = raw[0] if raw else "(empty)"
            raise ValueError(f"unknown customer state format {found} (expected {STATE_FORMAT})")
        _, *sizes = _HEADER.unpack_from(raw)
        view = memoryview(raw)  # slices of it are not copies
        levels, start = [], _HEADER.size
        for size in sizes:
            end = start + size * 8
            if size % FIELDS or end > len(raw):
                raise ValueError("customer state truncated or corrupt (window levels)")
            level = array("q")
            level.frombytes(view[start:end])
            if _SWAP:
                level.byteswap()
            levels.append(level)
            start = end
        return _with_fields(RollingWindows(levels), orjson.loads(view[start:]))


def _little_endian(level: Level) -> bytes:
    if not _SWAP:
        return level.tobytes()
    swapped = array("q", level)
    swapped.byteswap()
    return swapped.tobytes()


def _from_format_2(raw: bytes) -> CustomerState:
    """Format 2 (one JSON array, window buckets as lists): what the previous version wrote."""
    fields = orjson.loads(raw)
    if fields[0] != 2:
        raise ValueError(f"unknown customer state format {fields[0]} (expected {STATE_FORMAT})")
    levels = [array("q", (number for bucket in level for number in bucket))
              for level in fields[2]]
    if len(levels) != len(BUCKET_LEVELS):
        raise ValueError("customer state in format 2 without its three window levels")
    return _with_fields(RollingWindows(levels), [fields[1], *fields[3:]])


def _with_fields(windows: RollingWindows, fields: list[Any]) -> CustomerState:
    (profile, cps_in, cps_out, near, recent, alerted, applied, watermark_s,
     (risk_level, alert_points, alert_points_at_s), *network) = fields
    # States written before the case fields: what they published is their level.
    alert_log, decisions, whitelist, risk_history, risk_published = (
        network[2] if len(network) > 2 else ([], [], {}, [], risk_level))
    return CustomerState(
        profile=Profile(*profile),
        windows=windows,
        counterparties_in=_unflatten(cps_in),
        counterparties_out=_unflatten(cps_out),
        near_threshold=near,
        recent=recent,
        alerted=alerted,
        applied=applied,
        watermark_s=watermark_s,
        risk_level=risk_level,
        alert_points=alert_points,
        alert_points_at_s=alert_points_at_s,
        network_active_until_s=network[0] if network else 0,
        network_untraced_cents=network[1] if len(network) > 1 else 0,
        alert_log=alert_log,
        decisions=decisions,
        whitelist=whitelist,
        risk_history=risk_history,
        risk_published=risk_published,
    )


def _flatten(mapping: dict[int, list[int]]) -> list[int]:
    return [item for key, entry in mapping.items() for item in (key, *entry)]


def _unflatten(flat: list[int]) -> dict[int, list[int]]:
    return {flat[i]: flat[i + 1:i + 4] for i in range(0, len(flat), 4)}


def remember_counterparty(seen: dict[int, list[int]], key: int, at_s: int) -> None:
    entry = seen.get(key)
    if entry is None:
        seen[key] = [at_s, at_s, 1]
        if len(seen) > COUNTERPARTIES_KEPT:
            del seen[min(seen, key=lambda k: seen[k][1])]
        return
    entry[0] = min(entry[0], at_s)
    entry[1] = max(entry[1], at_s)
    entry[2] += 1


def distinct_since(seen: dict[int, list[int]], since_s: int) -> int:
    return sum(1 for entry in seen.values() if entry[1] > since_s)


def append_capped(items: list[list[Any]], item: list[Any], cap: int) -> None:
    """Insert by time (first element), dropping the oldest beyond ``cap``."""
    position = len(items)
    while position and items[position - 1][0] > item[0]:
        position -= 1
    items.insert(position, item)
    if len(items) > cap:
        del items[0]
