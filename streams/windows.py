"""Rolling windows over event time, in fixed buckets so memory is bounded per customer.

Three bucket levels: 5-minute buckets for the 1h window, hourly buckets for 24h, daily buckets
for 7d and 30d. A window of ``n`` buckets at time ``t`` sums the bucket holding ``t`` and the
``n - 1`` before it, so it covers between ``W - bucket width`` and ``W`` of history (1h: 55-60
min; 24h: 23-24 h; 7d: 6-7 days; 30d: 29-30 days). However active the customer is, each level
keeps its buckets plus those covering the allowed lateness (with the default 1h: 24 + 25 + 31).

A bucket is a list ``[index, count_in, usd_in, max_in, count_out, usd_out, max_out]`` where
``index = at_s // width_s`` and USD are integer cents.
"""

from bisect import bisect_left, bisect_right
from operator import itemgetter
from typing import NamedTuple

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

_IN, _OUT = 1, 4  # offsets of the in / out triplets (count, usd, max) inside a bucket


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


Bucket = list[int]
_index = itemgetter(0)


def _bucket_for(level: list[Bucket], index: int) -> Bucket:
    """The bucket with ``index``, created in order if absent (late events insert mid-list)."""
    if level and level[-1][0] == index:
        return level[-1]
    position = len(level)
    while position and level[position - 1][0] > index:
        position -= 1
    if position and level[position - 1][0] == index:
        return level[position - 1]
    bucket = [index, 0, 0, 0, 0, 0, 0]
    level.insert(position, bucket)
    return bucket


class RollingWindows:
    __slots__ = ("levels",)

    def __init__(self, levels: list[list[Bucket]] | None = None) -> None:
        self.levels: list[list[Bucket]] = levels if levels is not None else [[], [], []]

    def add(self, at_s: int, out: bool, usd_cents: int) -> None:
        offset = _OUT if out else _IN
        for level, (width_s, _) in zip(self.levels, BUCKET_LEVELS, strict=True):
            bucket = _bucket_for(level, at_s // width_s)
            bucket[offset] += 1
            bucket[offset + 1] += usd_cents
            if usd_cents > bucket[offset + 2]:
                bucket[offset + 2] = usd_cents

    def expire(self, now_s: int) -> None:
        """Drop buckets that no window ending at ``now_s`` or later can include."""
        for level, (width_s, kept) in zip(self.levels, BUCKET_LEVELS, strict=True):
            oldest_kept = now_s // width_s - kept + 1
            drop = 0
            while drop < len(level) and level[drop][0] < oldest_kept:
                drop += 1
            if drop:
                del level[:drop]

    def totals(self, window: Window, now_s: int) -> WindowTotals:
        level_no, buckets = WINDOW_LEVEL[window]
        newest = now_s // BUCKET_LEVELS[level_no][0]
        level = self.levels[level_no]
        # Buckets are kept in index order: the window is one slice, summed column by column.
        low = bisect_left(level, newest - buckets + 1, key=_index)
        high = len(level)
        if high and level[-1][0] > newest:  # a late event: newer buckets exist
            high = bisect_right(level, newest, key=_index)
        if low >= high:
            return _EMPTY
        if high - low == 1:
            return WindowTotals._make(level[low][1:])
        _, c_in, u_in, m_in, c_out, u_out, m_out = zip(*level[low:high], strict=True)
        return WindowTotals(sum(c_in), sum(u_in), max(m_in), sum(c_out), sum(u_out), max(m_out))


_EMPTY = WindowTotals(0, 0, 0, 0, 0, 0)
