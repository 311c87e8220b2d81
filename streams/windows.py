"""Rolling windows over event time, in fixed buckets so memory is bounded per customer.

Three bucket levels: 5-minute buckets for the 1h window, hourly buckets for 24h, daily buckets
for 7d and 30d. A window of ``n`` buckets at time ``t`` sums the bucket holding ``t`` and the
``n - 1`` before it, so it covers between ``W - bucket width`` and ``W`` of history (1h: 55-60
min; 24h: 23-24 h; 7d: 6-7 days; 30d: 29-30 days). However active the customer is, each level
keeps its buckets plus those covering the allowed lateness (with the default 1h: 24 + 25 + 31).

A bucket is ``FIELDS`` numbers, ``index, count_in, usd_in, max_in, count_out, usd_out, max_out``
where ``index = at_s // width_s`` and USD are integer cents. Each level keeps its buckets end to
end, in index order, in one ``array("q")`` (64-bit integers): one contiguous block rather than
a list of lists, so a customer's windows cost ~8 bytes a number in memory, and encode and
decode as one copy (``streams.state``); the worker encodes every changed customer at each flush
and decodes every customer it reloads, and the nested lists of ints took ~30 µs each way for an
active customer. USD sums stop at ``USD_CENTS_MAX`` rather than overflow.
"""

from array import array
from bisect import bisect_left, bisect_right
from typing import NamedTuple, TypeAlias

from schemas.rules import Window

BUCKET_LEVELS: tuple[tuple[int, int], ...] = ((300, 12), (3600, 24), (86400, 30))
"""(bucket width in seconds, buckets kept) per level."""

WINDOW_LEVEL: dict[Window, tuple[int, int]] = {
    Window.H1: (0, 12),
    Window.H24: (1, 24),
    Window.D7: (2, 7),
    Window.D30: (2, 30),
}
"""For each window: (level, number of buckets summed)."""

WINDOW_S: dict[Window, int] = {Window.H1: 3600, Window.H24: 86400, Window.D7: 7 * 86400,
                               Window.D30: 30 * 86400}

_WIDTHS_S = tuple(width_s for width_s, _ in BUCKET_LEVELS)
_KEPT = tuple(kept for _, kept in BUCKET_LEVELS)

FIELDS = 7
"""Numbers per bucket."""
_IN, _OUT = 1, 4  # offsets of the in / out triplets (count, usd, max) inside a bucket
USD_CENTS_MAX = 2**63 - 1
"""The largest USD amount a bucket holds (~92 quadrillion dollars): sums saturate there."""


class WindowTotals(NamedTuple):
    count_in: int
    usd_in_cents: int
    max_in_cents: int
    count_out: int
    usd_out_cents: int
    max_out_cents: int

    @property
    def count_total(self) -> int:
        return self.count_in + self.count_out

    @property
    def usd_cents(self) -> int:
        return self.usd_in_cents + self.usd_out_cents


Level: TypeAlias = "array[int]"
"""One level: ``array("q")`` of its buckets end to end (see the module docstring)."""


def _bucket_at(level: Level, index: int) -> int:
    """Where the bucket with ``index`` starts, created in order if absent: for a late event,
    older than the newest bucket (``add`` takes the newest, and a new newest, itself)."""
    position = len(level)
    while position and level[position - FIELDS] > index:
        position -= FIELDS
    if position and level[position - FIELDS] == index:
        return position - FIELDS
    level[position:position] = array("q", (index, 0, 0, 0, 0, 0, 0))
    return position


class RollingWindows:
    __slots__ = ("levels",)

    def __init__(self, levels: list[Level] | None = None) -> None:
        self.levels: list[Level] = (levels if levels is not None
                                    else [array("q") for _ in BUCKET_LEVELS])

    def buckets(self, level_no: int) -> list[list[int]]:
        """The buckets of a level as lists, oldest first (for reading, not for the hot path)."""
        level = self.levels[level_no]
        return [level[start:start + FIELDS].tolist() for start in range(0, len(level), FIELDS)]

    def add(self, at_s: int, out: bool, usd_cents: int) -> None:
        offset = _OUT if out else _IN
        if usd_cents > USD_CENTS_MAX:
            usd_cents = USD_CENTS_MAX
        for level, width_s in zip(self.levels, _WIDTHS_S, strict=True):
            index = at_s // width_s
            end = len(level)
            newest = level[end - FIELDS] if end else -1
            if newest == index:  # the newest bucket
                at = end - FIELDS + offset
            elif newest < index:  # a new newest bucket (most events of most customers)
                level.extend((index, 0, 0, 0, 0, 0, 0))
                at = end + offset
            else:  # a late event
                at = _bucket_at(level, index) + offset
            level[at] += 1
            total = level[at + 1] + usd_cents
            level[at + 1] = total if total < USD_CENTS_MAX else USD_CENTS_MAX
            if usd_cents > level[at + 2]:
                level[at + 2] = usd_cents

    def expire(self, now_s: int) -> None:
        """Drop buckets that no window ending at ``now_s`` or later can include."""
        for level, width_s, kept in zip(self.levels, _WIDTHS_S, _KEPT, strict=True):
            oldest_kept = now_s // width_s - kept + 1
            if not level or level[0] >= oldest_kept:
                continue  # the usual case: nothing to drop
            drop = 0
            while drop < len(level) and level[drop] < oldest_kept:
                drop += FIELDS
            del level[:drop]

    def totals(self, window: Window, now_s: int) -> WindowTotals:
        level_no, buckets = WINDOW_LEVEL[window]
        newest = now_s // _WIDTHS_S[level_no]
        level = self.levels[level_no]
        indexes = level[::FIELDS]
        low = bisect_left(indexes, newest - buckets + 1)
        high = len(indexes)
        if high and indexes[-1] > newest:  # a late event: newer buckets exist
            high = bisect_right(indexes, newest)
        if low >= high:
            return _EMPTY
        start, end = low * FIELDS, high * FIELDS
        if high - low == 1:
            return WindowTotals._make(level[start + 1:end])
        # The window is one slice of the level, summed field by field.
        window_buckets = level[start:end]
        return WindowTotals(
            sum(window_buckets[1::FIELDS]), sum(window_buckets[2::FIELDS]),
            max(window_buckets[3::FIELDS]), sum(window_buckets[4::FIELDS]),
            sum(window_buckets[5::FIELDS]), max(window_buckets[6::FIELDS]))


_EMPTY = WindowTotals(0, 0, 0, 0, 0, 0)
