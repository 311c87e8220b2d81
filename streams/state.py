"""Everything amlstream remembers about one customer, bounded in size, serialisable to bytes.

Sizes are capped whatever the customer does: windows are bucketed (``streams.windows``),
counterparties, near-threshold transfers and recent transfers are kept up to a fixed count.
"""

import zlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from streams.windows import RollingWindows

STATE_FORMAT = 1
COUNTERPARTIES_KEPT = 64
"""Distinct counterparties remembered per direction; distinct counts saturate here."""
RECENT_TRANSFERS_KEPT = 10
"""Recent transfers kept as evidence for alerts."""


def counterparty_key(address: str) -> int:
    """A stable 32-bit key for an address (``hash()`` is salted per process, so not that)."""
    return zlib.crc32(address.encode())


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
    counterparties_in: dict[int, int] = field(default_factory=dict)
    """counterparty key -> last seen (epoch s), senders to this customer."""
    counterparties_out: dict[int, int] = field(default_factory=dict)
    near_threshold: list[list[Any]] = field(default_factory=list)
    """[at_s, event_id, usd_cents] of transfers just below the reporting threshold."""
    recent: list[list[Any]] = field(default_factory=list)
    """[at_s, out (0/1), usd_cents, event_id] of the last transfers, oldest first."""
    alerted: dict[str, int] = field(default_factory=dict)
    """rule id -> newest cooldown period alerted (``at_s // cooldown_s``)."""
    applied: dict[str, int] = field(default_factory=dict)
    """input source (e.g. ``transactions/3``) -> last offset applied."""
    watermark_s: int = 0
    """Newest event time seen; windows expire relative to it."""

    def already_applied(self, source: str, offset: int) -> bool:
        return offset <= self.applied.get(source, -1)

    def to_bytes(self) -> bytes:
        return orjson.dumps([
            STATE_FORMAT,
            self.profile.to_list(),
            self.windows.levels,
            _flatten(self.counterparties_in),
            _flatten(self.counterparties_out),
            self.near_threshold,
            self.recent,
            self.alerted,
            self.applied,
            self.watermark_s,
        ])

    @classmethod
    def from_bytes(cls, raw: bytes) -> "CustomerState":
        (fmt, profile, levels, cps_in, cps_out, near, recent, alerted, applied,
         watermark_s) = orjson.loads(raw)
        if fmt != STATE_FORMAT:
            raise ValueError(f"unknown customer state format {fmt}")
        return cls(
            profile=Profile(*profile),
            windows=RollingWindows(levels),
            counterparties_in=_unflatten(cps_in),
            counterparties_out=_unflatten(cps_out),
            near_threshold=near,
            recent=recent,
            alerted=alerted,
            applied=applied,
            watermark_s=watermark_s,
        )


def _flatten(mapping: dict[int, int]) -> list[int]:
    return [item for pair in mapping.items() for item in pair]


def _unflatten(flat: list[int]) -> dict[int, int]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


def remember_counterparty(seen: dict[int, int], key: int, at_s: int) -> None:
    if seen.get(key, -1) < at_s:
        seen[key] = at_s
    if len(seen) > COUNTERPARTIES_KEPT:
        del seen[min(seen, key=seen.__getitem__)]


def distinct_since(seen: dict[int, int], since_s: int) -> int:
    return sum(1 for last_s in seen.values() if last_s > since_s)


def append_capped(items: list[list[Any]], item: list[Any], cap: int) -> None:
    """Insert by time (first element), dropping the oldest beyond ``cap``."""
    position = len(items)
    while position and items[position - 1][0] > item[0]:
        position -= 1
    items.insert(position, item)
    if len(items) > cap:
        del items[0]
