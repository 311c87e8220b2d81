"""InternalAligner: which held internal records may go, and in which order; never timing.

Tables at the thresholds first, then property tests over random producer streams (random
interleavings, duplicates, lost and repeated markers, fetch splits), then a simulation of S3
feeding itself through the ``flows`` topic (the cycle), run under different timings.
"""

import math
import random
from collections import deque
from typing import Any

import pytest

from streams.network.internal_order import InternalAligner
from streams.network.records import (
    RANK_LEG,
    RANK_PROVENANCE,
    RANK_RECIPIENT_LATE,
    Envelope,
    Leg,
    Marker,
    Provenance,
)

INF = math.inf
DELTA = 100  # the hop delay of most tests, seconds


def leg(producer: str, seq: int, order_s: int) -> Envelope:
    body = Leg(f"cust-{seq}", f"ev-{producer}-{seq}", order_s, True, 100, None, "exchange",
               None, (), ())
    return Envelope(producer, (seq, 0), order_s, RANK_LEG, body)


def prov(producer: str, seq: tuple[Any, ...], order_s: int) -> Envelope:
    body = Provenance("cust", "sender", f"ev-{producer}-{seq}", order_s, 100, ())
    return Envelope(producer, seq, order_s, RANK_PROVENANCE, body)


def marked(a: InternalAligner, partition: int, *markers: Marker) -> None:
    for marker in markers:
        a.add(partition, marker, ref=marker)


# --- frontier tables -------------------------------------------------------------------------

def test_counterparty_frontier_unheard_idle_and_least_promise():
    a = InternalAligner("counterparty", 3)
    a.assign(0)
    assert a.frontier(0) == -INF  # nobody heard
    marked(a, 0, Marker("c0", 500), Marker("c1", 300))
    assert a.frontier(0) == -INF  # c2 unheard
    marked(a, 0, Marker("c2", 400))
    assert a.frontier(0) == 300
    marked(a, 0, Marker("c1", 200))  # an older promise: the highest counts
    assert a.frontier(0) == 300
    marked(a, 0, Marker("c1", 350, idle=True))  # idle: left out
    assert a.frontier(0) == 400
    marked(a, 0, Marker("c0", 600, idle=True), Marker("c2", 650, idle=True))
    assert a.frontier(0) == INF
    assert a.frontier(1) == -INF  # not assigned


def test_flow_frontier_counts_unheard_flow_producers_from_t0():
    a = InternalAligner("flow", 2, hop_delay_s=DELTA)
    a.assign(0)
    marked(a, 0, Marker("c0", 1000, floor_s=700))
    assert a.frontier(0) == -INF  # c1 unheard: T0 unknown
    marked(a, 0, Marker("c1", 1200))  # heard, no floor (it sent nothing yet)
    assert a.frontier(0) == 700 + DELTA  # f0, f1 unheard: T0 + delta
    marked(a, 0, Marker("c1", 1200, floor_s=650))  # the least floor is T0
    assert a.frontier(0) == 650 + DELTA
    marked(a, 0, Marker("f0", 600))  # below T0 + delta: T0 + delta counts
    assert a.frontier(0) == 650 + DELTA
    marked(a, 0, Marker("f0", 900), Marker("f1", 2000))
    assert a.frontier(0) == 900
    marked(a, 0, Marker("f0", 1500, idle=True))  # S3 producers are never left out
    assert a.frontier(0) == 1000  # c0 now
    marked(a, 0, Marker("c0", 3000, idle=True), Marker("c1", 3000, idle=True))
    assert a.frontier(0) == 1500  # S1 all idle: only the flow producers bound it


def test_flow_frontier_without_any_floor_waits_for_every_flow_producer():
    a = InternalAligner("flow", 2, hop_delay_s=DELTA)
    marked(a, 1, Marker("c0", 1000), Marker("c1", 1000), Marker("f1", 800))
    assert a.frontier(1) == -INF  # f0 unheard and no T0
    marked(a, 1, Marker("f0", 900))
    assert a.frontier(1) == 800


def test_flow_promise_table():
    a = InternalAligner("flow", 2, hop_delay_s=DELTA)
    a.assign(0)
    assert a.flow_promise(0, -INF) == -INF  # nothing known
    marked(a, 0, Marker("c0", 1000, floor_s=500), Marker("c1", 1100, floor_s=600))
    assert a.flow_promise(0, -INF) == -INF  # nothing released yet: the applied bound
    a.release()
    assert a.frontier(0) == 500 + DELTA
    assert a.flow_promise(0, -INF) == 500 + 2 * DELTA  # f* unheard count T0 + delta
    assert a.flow_promise(0, 900) == 900  # never below its previous promise
    marked(a, 0, Marker("f0", 2000), Marker("f1", 2500))
    a.release()
    assert a.flow_promise(0, -INF) == 1000 + DELTA  # L = c0's promise
    a.add(0, leg("c1", 1, 1150), ref="r1")
    marked(a, 0, Marker("c0", 1300))
    assert a.frontier(0) == 1100  # c1 now
    assert a.flow_promise(0, -INF) == 1000 + DELTA  # applied still 1000: release first
    assert a.release() == []  # 1150 is not below 1100
    assert a.held_min(0) == 1150
    assert a.flow_promise(0, -INF) == 1100 + DELTA
    marked(a, 0, Marker("c1", 1400))
    assert [e.order_s for _, e, _ in a.release()] == [1150]
    assert a.flow_promise(0, -INF) == 1300 + DELTA  # c0 again


def test_flow_promise_is_capped_by_the_highest_s1_promise():
    a = InternalAligner("flow", 2, hop_delay_s=DELTA)
    marked(a, 0, Marker("c0", 1000, idle=True, floor_s=500),
           Marker("c1", 1200, idle=True, floor_s=900), Marker("f0", 5000), Marker("f1", 5000))
    a.release()
    assert a.frontier(0) == 5000
    assert a.flow_promise(0, -INF) == 1200 + DELTA  # M + delta, not 5000 + delta
    marked(a, 0, Marker("c1", 1199, idle=True))
    assert a.flow_promise(0, -INF) == 1200 + DELTA
    assert a.flow_promise(0, 7000) == 7000


def test_flow_promise_is_for_the_flow_stage_only():
    with pytest.raises(ValueError):
        InternalAligner("counterparty", 2).flow_promise(0, -INF)


# --- release, duplicates, recipient-late --------------------------------------------------------

def test_release_below_the_frontier_in_key_order():
    a = InternalAligner("counterparty", 2)
    for seq, order_s in ((1, 300), (2, 100)):
        a.add(0, leg("c0", seq, order_s), ref=f"c0-{seq}")
    a.add(0, leg("c1", 1, 100), ref="c1-1")
    marked(a, 0, Marker("c0", 301), Marker("c1", 300))
    assert a.held(0) == 3
    assert [ref for _, _, ref in a.release()] == ["c0-2", "c1-1"]  # 300 is not below 300
    assert a.held(0) == 1
    assert a.held_min(0) == 300
    marked(a, 0, Marker("c1", 301))
    assert [ref for _, _, ref in a.release()] == ["c0-1"]
    assert a.held_min(0) == INF


def test_duplicates_are_finished_not_applied():
    a = InternalAligner("counterparty", 1)
    marked(a, 0, Marker("c0", 100))
    a.add(0, leg("c0", 1, 150), ref="first")
    a.add(0, leg("c0", 1, 150), ref="again")  # same (producer, seq), held
    assert a.held(0) == 1
    assert a.finished() == [Marker("c0", 100), "again"]
    assert a.finished() == []
    marked(a, 0, Marker("c0", 200))
    assert [ref for _, _, ref in a.release()] == ["first"]
    a.add(0, leg("c0", 1, 150), ref="re-sent")  # below c0's promise: a re-emission
    a.add(0, leg("c0", 2, 199), ref="old")
    a.add(0, leg("c0", 3, 200), ref="new")  # at the promise: a record
    assert a.finished() == [Marker("c0", 200), "re-sent", "old"]
    assert a.held(0) == 1
    assert a.late() == 0


def test_recipient_late_is_clamped_to_the_applied_frontier_and_counted():
    a = InternalAligner("counterparty", 2)
    a.add(0, leg("c0", 1, 150), ref="normal")
    marked(a, 0, Marker("c0", 200), Marker("c1", 100, idle=True))
    assert [ref for _, _, ref in a.release()] == ["normal"]
    assert a.frontier(0) == 200
    late = leg("c1", 7, 120)  # c1 wakes up: above its promise, below the applied frontier
    a.add(0, late, ref="late")
    a.add(0, leg("c1", 8, 199), ref="late too")
    a.add(0, leg("c1", 9, 200), ref="at the frontier")  # not late: held
    assert a.late() == 2
    assert a.held(0) == 3
    marked(a, 0, Marker("c1", 100))  # awake now: c1 bounds the frontier again
    assert a.frontier(0) == 200  # never below the applied frontier
    released = a.release()
    assert [(p, ref) for p, _, ref in released] == [(0, "late"), (0, "late too")]
    first = released[0][1]
    assert first.order_key == (200, RANK_RECIPIENT_LATE, "c1", (7, 0))
    assert first.body == late.body
    assert a.held(0) == 1
    assert a.late() == 2


def test_all_idle_applied_frontier_is_past_the_last_applied_second():
    a = InternalAligner("counterparty", 1)
    marked(a, 0, Marker("c0", 100, idle=True))
    a.add(0, leg("c0", 1, 150), ref="a")  # sent while idle: applied at once
    assert [ref for _, _, ref in a.release()] == ["a"]
    assert a.frontier(0) == INF
    marked(a, 0, Marker("c0", 120))  # awake
    assert a.frontier(0) == 151
    a.add(0, leg("c0", 2, 150), ref="late")
    a.add(0, leg("c0", 3, 151), ref="held")
    assert a.late() == 1
    assert [e.order_key for _, e, _ in a.release()] == [(151, RANK_RECIPIENT_LATE, "c0", (2, 0))]


def test_unknown_producer_or_partition_is_refused():
    a = InternalAligner("counterparty", 2)
    with pytest.raises(ValueError):
        a.add(0, Marker("f0", 100), ref=None)  # S3 does not write to cp-legs
    with pytest.raises(ValueError):
        a.add(0, Marker("c2", 100), ref=None)
    with pytest.raises(ValueError):
        a.assign(2)
    a.add(1, Marker("c1", 100), ref=None)  # assigns partition 1 (fresh)
    assert a.frontier(1) == -INF


# --- back-pressure and drop ---------------------------------------------------------------------

def test_pause_above_max_held_resume_at_half():
    a = InternalAligner("counterparty", 1, max_held=4)
    for seq in range(4):
        a.add(0, leg("c0", seq, 100 + seq), ref=seq)
    assert a.to_pause() == set()  # 4 held: at the limit
    a.add(0, leg("c0", 4, 104), ref=4)
    assert a.to_pause() == {0}
    assert a.to_pause() == set()  # reported once
    marked(a, 0, Marker("c0", 102))
    a.release()
    assert a.held(0) == 3
    assert a.to_resume() == set()
    marked(a, 0, Marker("c0", 103))
    a.release()
    assert a.held(0) == 2
    assert a.to_resume() == {0}
    assert a.to_resume() == set()


def test_drop_forgets_and_returns_every_ref():
    a = InternalAligner("counterparty", 2, max_held=1)
    marked(a, 0, Marker("c0", 100), Marker("c1", 50))
    a.add(0, leg("c0", 2, 300), ref="b")
    a.add(0, leg("c0", 1, 200), ref="a")
    a.add(1, leg("c0", 3, 300), ref="other")
    assert a.to_pause() == {0}
    assert a.drop([0]) == ["a", "b", Marker("c0", 100), Marker("c1", 50)]
    assert a.held(0) == 0
    assert a.frontier(0) == -INF
    assert a.to_resume() == set()  # dropped, not resumed
    assert a.finished() == []
    assert a.held(1) == 1
    a.assign(0)  # fresh: the promises are gone
    a.add(0, leg("c0", 1, 200), ref="a again")  # not a duplicate now
    assert a.held(0) == 1
    assert a.frontier(0) == -INF


# --- property tests: random producers, interleavings, fetch splits --------------------------------

Send = tuple[int, Envelope | Marker]


def producer_sends(rng: random.Random, name: str, n: int, low: int, high: int,
                   count: int, floors: bool, idle_at_end: bool,
                   last: int | None = None) -> list[Send]:
    """One producer's sends: records (some re-sent later) with order_s in [low, high], each at
    or above every promise sent before it; markers (to a random subset of partitions, some
    repeated) in between; then a final marker above everything (or at ``last``) to every
    partition. S1 markers carry the least order_s sent so far as their floor."""
    records = [(rng.randint(low, high), rng.randrange(n)) for _ in range(count)]
    records.sort(key=lambda r: r[0] + rng.randint(-30, 30))  # roughly in time, not exactly
    stream: list[tuple[int, Envelope]] = []
    for seq, (order_s, partition) in enumerate(records):
        envelope = (leg(name, seq, order_s) if name[0] == "c"
                    else prov(name, (order_s, seq), order_s))
        stream.append((partition, envelope))
    for i in range(len(stream)):  # re-sends, before a promise can cover them
        if rng.random() < 0.15:
            stream.insert(rng.randint(i + 1, len(stream)), stream[i])
    sends: list[Send] = []
    promise, floor = low - rng.randint(0, 50), None
    for i, (partition, envelope) in enumerate(stream):
        if rng.random() < 0.4:
            promise = rng.randint(promise, min(e.order_s for _, e in stream[i:]))
            marker = Marker(name, promise, floor_s=floor if floors else None)
            for target in rng.sample(range(n), rng.randint(1, n)):
                sends += [(target, marker)] * rng.choice((1, 1, 2))
        sends.append((partition, envelope))
        floor = envelope.order_s if floor is None else min(floor, envelope.order_s)
    final = max(promise, high + rng.randint(1, 50)) if last is None else last
    sends += [(target, Marker(name, final, idle=idle_at_end, floor_s=floor if floors else None))
              for target in range(n)]
    return sends


def interleave(rng: random.Random, sends: dict[str, list[Send]]) -> list[tuple[str, Send]]:
    """Arrival order: each (producer, partition) channel keeps its order, nothing else does."""
    channels: dict[tuple[str, int], deque[Send]] = {}
    for name, items in sends.items():
        for send in items:
            channels.setdefault((name, send[0]), deque()).append(send)
    keys = list(channels)
    out: list[tuple[str, Send]] = []
    while keys:
        key = rng.choice(keys)
        out.append((key[0], channels[key].popleft()))
        if not channels[key]:
            keys.remove(key)
    return out


def streams_for(stage: str, n: int, seed: int) -> dict[str, list[Send]]:
    rng = random.Random(seed)
    sends = {f"c{i}": producer_sends(rng, f"c{i}", n, 1000, 3000, rng.randint(0, 25),
                                     floors=True, idle_at_end=True) for i in range(n)}
    if stage == "flow":
        floors = [e.order_s for items in sends.values() for _, e in items
                  if isinstance(e, Envelope)]
        t0 = min(floors, default=1000)
        for i in range(n):  # every S3 record is at or after T0 + delta
            sends[f"f{i}"] = producer_sends(rng, f"f{i}", n, t0 + DELTA, 3000 + DELTA,
                                            rng.randint(0, 25), floors=False,
                                            idle_at_end=rng.random() < 0.5)
    return sends


@pytest.mark.parametrize("seed", range(25))
@pytest.mark.parametrize("n", [1, 3, 4])
@pytest.mark.parametrize("stage", ["counterparty", "flow"])
def test_release_is_the_sorted_sequence_whatever_the_arrival(stage, n, seed):
    sends = streams_for(stage, n, seed)
    expected: dict[int, list[Envelope]] = {q: [] for q in range(n)}
    for items in sends.values():
        for partition, item in items:
            if isinstance(item, Envelope) and item not in expected[partition]:
                expected[partition].append(item)
    for q in expected:
        expected[q].sort(key=lambda e: e.order_key)

    rng = random.Random(f"timing-{seed}")
    a = InternalAligner(stage, n, hop_delay_s=DELTA, max_held=10_000)
    for q in rng.sample(range(n), n):
        a.assign(q)
    applied: dict[int, list[Envelope]] = {q: [] for q in range(n)}
    refs: list[Any] = []
    seen = dict.fromkeys(range(n), -INF)

    def step() -> None:
        for partition, envelope, ref in a.release():
            applied[partition].append(envelope)
            refs.append(ref)
        for q in range(n):
            assert a.frontier(q) >= seen[q]  # never moves back
            seen[q] = a.frontier(q)

    arrivals = interleave(rng, sends)
    for number, (_, (partition, item)) in enumerate(arrivals):
        a.add(partition, item, ref=number)
        assert a.frontier(partition) >= seen[partition]
        if rng.random() < 0.15:  # a fetch ends here
            step()
    step()
    refs += a.finished()
    assert applied == expected
    assert sorted(refs) == list(range(len(arrivals)))  # every ref back once
    assert all(a.held(q) == 0 for q in range(n))
    assert a.late() == 0
    # all S1 idle: nothing bounds a cp-legs partition; flows wait on the S3 promises
    least = min(a.frontier(q) for q in range(n))
    assert least == INF if stage == "counterparty" else INF > least > 3000 + DELTA


# --- the cycle: S3 partitions feeding one another through flows --------------------------------

def children(envelope: Envelope, q: int, n: int, horizon: int) -> list[tuple[int, Envelope]]:
    """What S3 q sends when it applies ``envelope``: a function of the record only (0 to 2
    provenance records to random partitions, stamped + DELTA, none past ``horizon``)."""
    if envelope.order_s + DELTA >= horizon:
        return []
    rng = random.Random(repr(envelope.order_key))
    cause = (envelope.order_s, envelope.rank, envelope.producer, envelope.seq)
    return [(rng.randrange(n), prov(f"f{q}", (*cause, i), envelope.order_s + DELTA))
            for i in range(rng.choice((0, 1, 1, 2)))]


def s1_sends(n: int, seed: int, high: int, last: int) -> dict[str, list[Send]]:
    """S1's sends to flows: random legs in [1000, high], markers with floors, idle at the end
    with promise ``last``; with n > 1, c0 sends no record at all (its floor stays None)."""
    rng = random.Random(seed)
    return {f"c{i}": producer_sends(rng, f"c{i}", n, 1000, high,
                                    0 if i == 0 and n > 1 else rng.randint(5, 30),
                                    floors=True, idle_at_end=True, last=last)
            for i in range(n)}


def simulate(n: int, s1: dict[str, list[Send]], timing_seed: int, horizon: int,
             steps: int = 200_000) -> tuple[dict[int, list[Envelope]], dict[int, list[Envelope]],
                                            list[InternalAligner]]:
    """Run S1's sends and S3 on ``n`` flows partitions (spread over one or two workers) until
    nothing moves. Returns what each partition applied, everything sent to it, the workers."""
    rng = random.Random(timing_seed)
    owners = [rng.randrange(2) for _ in range(n)]
    workers = [InternalAligner("flow", n, hop_delay_s=DELTA) for _ in range(2)]
    for q in rng.sample(range(n), n):
        workers[owners[q]].assign(q)
    channels: dict[tuple[str, int], deque[Envelope | Marker]] = {}
    sent: dict[int, list[Envelope]] = {q: [] for q in range(n)}
    applied: dict[int, list[Envelope]] = {q: [] for q in range(n)}
    promised = dict.fromkeys(range(n), -INF)
    pending = {name: deque(items) for name, items in s1.items()}

    def send(name: str, partition: int, item: Envelope | Marker) -> None:
        channels.setdefault((name, partition), deque()).append(item)
        if isinstance(item, Envelope) and item not in sent[partition]:
            sent[partition].append(item)

    def work(index: int) -> bool:
        worker, moved = workers[index], False
        for q, envelope, _ in worker.release():
            moved = True
            applied[q].append(envelope)
            for target, child in children(envelope, q, n, horizon):
                send(child.producer, target, child)
                if rng.random() < 0.1:  # re-emitted (as after a crash)
                    send(child.producer, target, child)
        for q in range(n):
            if owners[q] != index:
                continue
            promise = worker.flow_promise(q, promised[q])
            if promise > promised[q]:
                moved = True
                promised[q] = promise
                for target in range(n):
                    send(f"f{q}", target, Marker(f"f{q}", int(promise),
                                                 ceiling_s=worker.ceiling(q)))
        return moved

    for _ in range(steps):
        busy_s1 = [name for name, items in pending.items() if items]
        busy = [key for key, queue in channels.items() if queue]
        action = rng.random()
        if busy_s1 and action < 0.3:
            target, item = pending[rng.choice(busy_s1)].popleft()
            send(item.producer, target, item)
        elif busy and action < 0.8:
            name, target = rng.choice(busy)
            workers[owners[target]].add(target, channels[(name, target)].popleft(), ref=None)
        elif not (work(rng.randrange(2)) or busy or busy_s1 or any([work(0), work(1)])):
            return applied, sent, workers  # nothing moves any more: every channel is empty
    raise AssertionError("the simulation did not settle: a deadlock")


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("n", [1, 3, 4])
def test_the_cycle_settles_in_sorted_order_whatever_the_timing(n, seed):
    horizon = 2000 + 8 * DELTA  # provenance chains up to 8 hops and beyond S1's records
    s1 = s1_sends(n, seed, high=2000, last=horizon)
    first, sent, workers = simulate(n, s1, timing_seed=seed * 2, horizon=horizon)
    for q in range(n):
        assert first[q] == sorted(sent[q], key=lambda e: e.order_key)
        assert workers[0].held(q) + workers[1].held(q) == 0
    assert sum(len(s) for s in sent.values()) > sum(
        1 for items in s1.values() for _, e in items if isinstance(e, Envelope))  # S3 sent
    assert workers[0].late() + workers[1].late() == 0
    second, _, _ = simulate(n, s1, timing_seed=seed * 2 + 1, horizon=horizon)
    assert second == first


@pytest.mark.parametrize("seed", range(4))
def test_the_cycle_completes_past_s1s_last_promise_and_stops_there(seed):
    """All S1 idle at 1500: S3 still completes every provenance record (chains run past S1's
    last event), its promises rising to the highest record held, and no further."""
    n = 3
    s1 = s1_sends(n, seed, high=1400, last=1500)
    applied, sent, workers = simulate(n, s1, timing_seed=seed, horizon=2000 + 8 * DELTA)
    assert sum(workers[0].held(q) + workers[1].held(q) for q in range(n)) == 0
    highest = max(e.order_s for q in range(n) for e in sent[q])
    assert highest >= 1500 + DELTA  # provenance beyond S1's time was there, and completed
    for q in range(n):
        assert applied[q] == sorted(sent[q], key=lambda e: e.order_key)
        owner = workers[0] if q in workers[0].receivers else workers[1]
        assert owner.flow_promise(q, -INF) <= highest + DELTA

