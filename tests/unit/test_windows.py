"""Bucketed rolling windows (``streams.windows``): a window of ``n`` buckets at time ``t`` sums
the bucket holding ``t`` and the ``n - 1`` before it; expiry keeps what a window ending at or
after ``now`` can need; at most 12 + 24 + 30 buckets are kept."""

import random
from datetime import UTC, datetime, timedelta

import pytest

from schemas.rules import NEAR_THRESHOLD_KEPT, Window
from streams.state import (
    ALERT_JSON_MAX_BYTES,
    ALERTS_KEPT,
    COUNTERPARTIES_KEPT,
    RECENT_TRANSFERS_KEPT,
)
from streams.windows import BUCKET_LEVELS, USD_CENTS_MAX, RollingWindows, WindowTotals


def _s(*parts: int) -> int:
    return int(datetime(*parts, tzinfo=UTC).timestamp())


NOW = _s(2026, 3, 2, 10, 32, 30)
"""Mid-bucket on every level: 10:30-10:35, 10:00-11:00, 2026-03-02."""


@pytest.mark.parametrize(
    ("window", "event_s", "included"),
    [
        (Window.H1, NOW, True),
        (Window.H1, _s(2026, 3, 2, 9, 35), True),  # oldest 5-minute bucket: 57m30s old
        (Window.H1, _s(2026, 3, 2, 9, 34, 59), False),
        (Window.H1, _s(2026, 3, 2, 10, 34, 59), True),  # same bucket as NOW, though later
        (Window.H1, _s(2026, 3, 2, 10, 35), False),
        (Window.H24, _s(2026, 3, 1, 11), True),  # oldest hour bucket: 23h32m30s old
        (Window.H24, _s(2026, 3, 1, 10, 59, 59), False),
        (Window.H24, _s(2026, 3, 2, 10, 59, 59), True),
        (Window.H24, _s(2026, 3, 2, 11), False),
        (Window.D7, _s(2026, 2, 24), True),  # oldest day bucket: 6d10h32m30s old
        (Window.D7, _s(2026, 2, 23, 23, 59, 59), False),
        (Window.D7, _s(2026, 3, 2, 23, 59, 59), True),
        (Window.D30, _s(2026, 2, 1), True),  # 29 days before 2026-03-02
        (Window.D30, _s(2026, 1, 31, 23, 59, 59), False),
        (Window.D30, _s(2026, 3, 3), False),
    ],
)
def test_window_includes_the_bucket_of_t_and_the_ones_before(window, event_s, included):
    windows = RollingWindows()
    windows.add(event_s, out=False, usd_cents=1234)

    totals = windows.totals(window, NOW)

    expected = (1, 1234, 1234) if included else (0, 0, 0)
    assert totals == WindowTotals(*expected, 0, 0, 0)


@pytest.mark.parametrize(
    ("window", "shortest", "longest"),
    [
        (Window.H1, timedelta(minutes=55), timedelta(hours=1)),
        (Window.H24, timedelta(hours=23), timedelta(hours=24)),
        (Window.D7, timedelta(days=6), timedelta(days=7)),
        (Window.D30, timedelta(days=29), timedelta(days=30)),
    ],
)
@pytest.mark.parametrize("now_s", [NOW, _s(2026, 3, 2), _s(2026, 3, 2, 23, 59, 59)])
def test_window_covers_between_w_minus_bucket_and_w(window, shortest, longest, now_s):
    """Any event younger than ``shortest`` counts; none older than ``longest`` does."""
    windows = RollingWindows()
    windows.add(now_s - int(shortest.total_seconds()) + 1, out=True, usd_cents=1)
    windows.add(now_s - int(longest.total_seconds()), out=False, usd_cents=1)

    totals = windows.totals(window, now_s)

    assert (totals.count_out, totals.count_in) == (1, 0)


def test_totals_per_direction_with_max():
    windows = RollingWindows()
    for minute, out, cents in [(0, False, 500), (7, False, 700), (12, True, 300), (13, True, 250),
                               (14, False, 100), (30, True, 50)]:
        windows.add(NOW - minute * 60, out=out, usd_cents=cents)

    totals = windows.totals(Window.H1, NOW)

    assert totals == WindowTotals(count_in=3, usd_in_cents=1300, max_in_cents=700,
                                  count_out=3, usd_out_cents=600, max_out_cents=300)
    assert totals.count_total == 6
    assert totals.usd_cents == 1900


def test_max_is_per_window_not_per_history():
    windows = RollingWindows()
    windows.add(NOW - 2 * 3600, out=False, usd_cents=9999)
    windows.add(NOW, out=False, usd_cents=10)

    assert windows.totals(Window.H1, NOW).max_in_cents == 10
    assert windows.totals(Window.H24, NOW).max_in_cents == 9999


def _random_events(seed: int, count: int, span_s: int) -> list[tuple[int, bool, int]]:
    rng = random.Random(seed)
    return [(NOW - rng.randrange(span_s), rng.random() < 0.5, rng.randrange(1, 10**7))
            for _ in range(count)]


def _all_buckets(windows: RollingWindows) -> list[list[list[int]]]:
    return [windows.buckets(level_no) for level_no in range(len(BUCKET_LEVELS))]


def _all_totals(windows: RollingWindows, times: list[int]) -> list[WindowTotals]:
    return [windows.totals(window, at_s) for window in Window for at_s in times]


PROBE_TIMES = [NOW - 45 * 86400, NOW - 20 * 86400, NOW - 86400, NOW - 3000, NOW, NOW + 1800,
               NOW + 20 * 3600, NOW + 6 * 86400, NOW + 40 * 86400]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_out_of_order_insertion_gives_the_same_buckets(seed):
    events = _random_events(seed, 400, 40 * 86400)
    in_order, shuffled = RollingWindows(), RollingWindows()
    for at_s, out, cents in sorted(events):
        in_order.add(at_s, out, cents)
    for at_s, out, cents in events:
        shuffled.add(at_s, out, cents)

    assert shuffled.levels == in_order.levels
    for level_no in range(len(BUCKET_LEVELS)):
        indices = [bucket[0] for bucket in shuffled.buckets(level_no)]
        assert indices == sorted(set(indices))
    assert _all_totals(shuffled, PROBE_TIMES) == _all_totals(in_order, PROBE_TIMES)


@pytest.mark.parametrize("seed", [4, 5])
def test_expire_keeps_every_window_ending_at_or_after_now(seed):
    windows = RollingWindows()
    for at_s, out, cents in _random_events(seed, 300, 45 * 86400):
        windows.add(at_s, out, cents)
    windows.add(NOW - 600, out=True, usd_cents=5)  # a level-0 bucket to keep
    windows.add(NOW - 3601, out=True, usd_cents=7)  # ... and one to drop
    later = [t for t in PROBE_TIMES if t >= NOW]
    before = _all_totals(windows, later)

    windows.expire(NOW)

    assert _all_totals(windows, later) == before
    assert (NOW - 600) // 300 in [bucket[0] for bucket in windows.buckets(0)]
    assert (NOW - 3601) // 300 not in [bucket[0] for bucket in windows.buckets(0)]
    for level_no, (width_s, kept) in enumerate(BUCKET_LEVELS):
        assert len(windows.buckets(level_no)) <= kept
        assert all(bucket[0] >= NOW // width_s - kept + 1 for bucket in windows.buckets(level_no))


@pytest.mark.parametrize(
    ("event_s", "kept_per_level"),
    [
        (NOW - 54 * 60, (1, 1, 1)),
        (NOW - 56 * 60, (1, 1, 1)),  # 09:36:30 is in the 09:35 bucket, the oldest kept
        (NOW - 58 * 60, (0, 1, 1)),
        (NOW - 23 * 3600 - 32 * 60, (0, 1, 1)),
        (NOW - 24 * 3600, (0, 0, 1)),
        (NOW - 29 * 86400, (0, 0, 1)),
        (NOW - 30 * 86400, (0, 0, 0)),
    ],
)
def test_expire_drops_exactly_the_buckets_too_old_for_any_window(event_s, kept_per_level):
    windows = RollingWindows()
    windows.add(event_s, out=False, usd_cents=1)

    windows.expire(NOW)

    assert tuple(map(len, _all_buckets(windows))) == kept_per_level


@pytest.mark.parametrize(
    ("events", "step_s", "final_sizes"),
    [
        (50, 72, [12, 2, 1]),
        (44_640, 60, [12, 24, 30]),  # one a minute for 31 days
        (20_000, 13, [12, 24, 4]),
        (3_000, 1555, [3, 24, 30]),
    ],
)
def test_size_is_bounded_however_many_events(events, step_s, final_sizes):
    """In event-time order with expiry at each new event, as the engine does."""
    windows = RollingWindows()
    for n in range(events):
        at_s = NOW + n * step_s
        windows.add(at_s, out=n % 2 == 1, usd_cents=100)
        windows.expire(at_s)
        assert all(len(level) <= kept
                   for level, (_, kept) in zip(_all_buckets(windows), BUCKET_LEVELS, strict=True))

    assert [len(level) for level in _all_buckets(windows)] == final_sizes


def test_customer_state_is_bounded_however_active(customer):
    """Through the engine: windows, counterparties, near-threshold and recent transfers."""
    c = customer(tier=3)
    base = datetime(2026, 3, 2, tzinfo=UTC)
    for n in range(1500):
        c.transfer(base + timedelta(minutes=37 * n), "9500.00", "in" if n % 3 else "out",
                   address=f"0x{n:040x}")

    state = c.state
    # Each level keeps its window's buckets plus those a late event (default lateness 1h)
    # may still need: with one transfer every 37 minutes that is 4 five-minute buckets
    # (2h05 of history), 25 hourly and 30 daily ones.
    assert [len(level) for level in _all_buckets(state.windows)] == [4, 25, 30]
    assert len(state.counterparties_in) == COUNTERPARTIES_KEPT
    assert len(state.counterparties_out) == COUNTERPARTIES_KEPT
    assert len(state.near_threshold) == NEAR_THRESHOLD_KEPT
    assert len(state.recent) == RECENT_TRANSFERS_KEPT
    # The latest alerts, with their evidence, are remembered too: bounded apart.
    assert len(state.alert_log) == ALERTS_KEPT
    assert all(len(logged[5]) <= ALERT_JSON_MAX_BYTES for logged in state.alert_log)
    assert len(state.to_bytes()) - sum(len(logged[5]) for logged in state.alert_log) < 16_000


def test_usd_sums_saturate_rather_than_overflow():
    windows = RollingWindows()
    for _ in range(3):
        windows.add(NOW, out=False, usd_cents=USD_CENTS_MAX // 2)
    windows.add(NOW, out=False, usd_cents=USD_CENTS_MAX * 10)

    totals = windows.totals(Window.H1, NOW)

    assert (totals.count_in, totals.usd_in_cents, totals.max_in_cents) == (
        4, USD_CENTS_MAX, USD_CENTS_MAX)
