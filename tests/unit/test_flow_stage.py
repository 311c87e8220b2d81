"""S3 ``flow`` (``streams.network.flow``): the haircut in exact integers, the min-share cut,
entry eviction, hops, horizon, catch-ups, and the three rules at and around their thresholds.

Scenarios run through ``Net``, a little driver that does what the stage's ordering does:
every record addressed to a customer is applied in order-key order (a heap), and the
provenance records a call emits are pushed back in.
"""

import heapq
import random
from collections import defaultdict
from decimal import Decimal
from itertools import pairwise
from typing import Any

import pytest

from schemas.alerts import Alert
from schemas.network_config import PPM, NetworkBounds
from streams.alerting import alert_id
from streams.network.flow import (
    FlowOutcome,
    apply_flow,
    haircut,
    max_provenance_bytes,
)
from streams.network.flow_state import (
    FlowEntry,
    FlowState,
    expire,
    extend_path,
    keep_entries,
    max_state_bytes,
)
from streams.network.records import (
    RANK_LEG,
    RANK_PATH_ALERT,
    RANK_PROVENANCE,
    Envelope,
    FormatError,
    Leg,
    PathAlert,
    Provenance,
    decode,
    encode,
)

T0 = 1_772_409_600  # 2026-03-02T00:00:00Z
MIN = 60
HOUR = 3_600
DAY = 86_400
DELAY = HOUR
SNAPSHOT = ("verified", 1, "DE", "DE", False, False, None, "low")
MIXER = "a:0x" + "ab" * 20


def leg(customer: str, event: str, at: int, out: bool, cents: int, cp: str | None,
        listed: tuple[str, ...] = (), seq: int = 0) -> Envelope:
    body = Leg(customer, event, at, out, cents, cp, "unhosted_wallet", None, listed, SNAPSHOT)
    return Envelope("c0", (seq, 0), at, RANK_LEG, body)


class Net:
    """Customers' S3 states, fed legs and the provenance they emit, in order-key order."""

    def __init__(self, rules: Any, wire: bool = False) -> None:
        self.rules = rules
        self.wire = wire
        """Encode and decode every record and state, as the worker does."""
        self.states: dict[str, FlowState] = {}
        self.heap: list[tuple[Any, int, Envelope]] = []
        self.pushed = 0
        self.alerts: list[tuple[int, Alert]] = []
        self.emitted: list[Envelope] = []
        self.log: list[Envelope] = []
        """Every record applied, in order."""

    def push(self, envelope: Envelope) -> None:
        self.pushed += 1
        if self.wire:
            decoded = decode(encode(envelope))
            assert isinstance(decoded, Envelope)
            envelope = decoded
        heapq.heappush(self.heap, (envelope.order_key, self.pushed, envelope))

    def deposit(self, at: int, customer: str, cents: int, address: str | None = None,
                listed: tuple[str, ...] = ()) -> None:
        self.push(leg(customer, f"{customer}-in-{at}", at, False, cents, address, listed,
                      self.pushed))

    def withdraw(self, at: int, customer: str, cents: int, address: str = "a:0xout") -> None:
        self.push(leg(customer, f"{customer}-out-{at}", at, True, cents, address, (),
                      self.pushed))

    def transfer(self, at: int, sender: str, recipient: str, cents: int) -> None:
        """An internal transfer: the sender's withdrawal and the recipient's deposit legs."""
        self.push(leg(sender, f"{sender}>{recipient}@{at}", at, True, cents, f"c:{recipient}",
                      (), self.pushed))
        self.push(leg(recipient, f"{recipient}<{sender}@{at}", at, False, cents, f"c:{sender}",
                      (), self.pushed))

    def run(self, until: int | None = None) -> "Net":
        """Apply every record (with ``order_s`` below ``until``, if given)."""
        while self.heap and (until is None or self.heap[0][2].order_s < until):
            _, _, envelope = heapq.heappop(self.heap)
            self.log.append(envelope)
            state, outcome = apply_flow(self.states.get(envelope.key), envelope, self.rules,
                                        "f0", DELAY)
            self.states[envelope.key] = (FlowState.from_bytes(state.to_bytes()) if self.wire
                                         else state)
            self.alerts += [(envelope.order_s, alert) for alert in outcome.alerts]
            for record in outcome.emitted:
                self.emitted.append(record)
                self.push(record)
        return self

    def fired(self, rule_id: str | None = None) -> list[tuple[str, str]]:
        """(customer, rule) of every alert, in order; only ``rule_id``'s if given."""
        return [(a.customer_id, a.rule_id) for _, a in self.alerts
                if rule_id is None or a.rule_id == rule_id]

    def found(self) -> list[tuple[int, Alert]]:
        """The alerts of the customers where a pattern was seen (not the members told)."""
        return [(at, a) for at, a in self.alerts if "found_at" not in a.evidence.matches]

    def finders(self) -> list[tuple[str, str]]:
        return [(a.customer_id, a.rule_id) for _, a in self.found()]


def chain(net: Net, customers: str, start: int, gap: int, cents: int, keep_ppm: list[int],
          deposit: tuple[str | None, tuple[str, ...]] = (None, ())) -> None:
    """An external deposit at the first customer, then each passes on ``1 - keep`` of what it
    got to the next, ``gap`` seconds apart."""
    address, listed = deposit
    net.deposit(start, customers[0], cents, address, listed)
    for n, (sender, recipient) in enumerate(pairwise(customers)):
        cents = cents * (PPM - keep_ppm[n]) // PPM
        net.transfer(start + (n + 1) * gap, sender, recipient, cents)


# --- the haircut -------------------------------------------------------------------------


def _apply(rules: Any, state: FlowState | None, *envelopes: Envelope,
           ) -> tuple[FlowState, list[FlowOutcome]]:
    outcomes = []
    for envelope in envelopes:
        state, outcome = apply_flow(state, envelope, rules, "f0", DELAY)
        outcomes.append(outcome)
    assert state is not None
    return state, outcomes


def test_haircut_takes_pro_rata_in_exact_cents(rules):
    """Pool: a mixer entry of 1,000 cents and 2,000 untraced; a withdrawal of 1,001 to B
    takes 1,000 * 1,001 / 3,000 = 333.67 -> 334 from the entry (the larger remainder gets
    the cent left over) and 2,000 * 1,001 / 3,000 = 667.33 -> 667 from the untraced value,
    passed on as A's own value."""
    state, outcomes = _apply(
        rules, None,
        leg("A", "d1", T0, False, 1_000, MIXER, ("mixer",), seq=1),
        leg("A", "d2", T0 + 1, False, 2_000, "a:0xplain", seq=2),
        leg("A", "w1", T0 + 2, True, 1_001, "c:B", seq=3))
    [sent] = outcomes[2].emitted
    prov = sent.body
    assert isinstance(prov, Provenance)
    assert (prov.recipient, prov.sender, prov.event_id, prov.usd_cents) == ("B", "A", "w1", 1_001)
    mixer, fresh = (FlowEntry.from_wire(e) for e in prov.entries)
    assert mixer == FlowEntry(MIXER, ("mixer",), "d1", T0, 1_000,
                              (("A", "w1", T0 + 2, 334, 334_000),), 1, 334_000, 334, 334,
                              334_000)
    assert fresh == FlowEntry("c:A", (), "w1", T0 + 2, 667, (("A", "w1", T0 + 2, 667, PPM),),
                              1, PPM, 667, 667, PPM)
    [held] = state.entries
    assert (held.usd_received, held.usd_left, held.share_ppm) == (1_000, 666, PPM)
    assert sum(c for _, c in state.untraced) == 2_000 - 667
    assert state.pool() == 3_000 - 1_001


@pytest.mark.parametrize(("parts", "w", "takes"), [
    ([1_000, 2_000], 1_001, [334, 667]),
    ([1, 1, 1], 2, [1, 1, 0]),  # equal remainders: the first ones
    ([3, 5, 0], 4, [2, 2, 0]),  # 1.5 and 2.5: equal remainders, the cent to the first
    ([3, 6, 0], 4, [1, 3, 0]),  # 1.33 and 2.67: the cent to the larger remainder
    ([3, 5, 0], 8, [3, 5, 0]),  # the whole pool
    ([3, 5], 100, [3, 5]),  # more than the pool: all of it
    ([0, 0], 5, [0, 0]),
])
def test_haircut_adds_up_exactly(parts, w, takes):
    assert haircut(parts, w) == takes


@pytest.mark.parametrize(("withdrawn", "shares"), [
    (990, None),  # the mixer part: 99 cents, 99,000 ppm < 100,000: passed on as A's own
    (1_000, 100_000),  # 100 cents, exactly the smallest share followed
])
def test_min_share_cut(rules, withdrawn, shares):
    _, outcomes = _apply(
        rules, None,
        leg("A", "d1", T0, False, 1_000, MIXER, ("mixer",), seq=1),
        leg("A", "d2", T0, False, 9_000, None, seq=2),
        leg("A", "w1", T0 + 1, True, withdrawn, "c:B", seq=3))
    prov = outcomes[2].emitted[0].body
    assert isinstance(prov, Provenance)
    entries = [FlowEntry.from_wire(e) for e in prov.entries]
    mixer = [e.share_ppm for e in entries if e.origin == MIXER]
    assert mixer == ([] if shares is None else [shares])
    fresh = [e for e in entries if e.origin == "c:A"]
    # the cut part is passed on as A's own (untraced) value
    assert fresh[0].usd_received == withdrawn - (0 if shares is None else 100)


def test_withdrawal_beyond_the_pool_is_fresh_value(rules):
    """Nothing known at A: the whole 500 USD starts an entry c:A."""
    _, [outcome] = _apply(rules, None, leg("A", "w1", T0, True, 50_000, "c:B"))
    [entry] = [FlowEntry.from_wire(e) for e in outcome.emitted[0].body.entries]  # type: ignore[union-attr]
    assert (entry.origin, entry.usd_received, entry.hops, entry.share_ppm) == (
        "c:A", 50_000, 1, PPM)


def test_external_withdrawal_sends_nothing(rules):
    state, outcomes = _apply(
        rules, None, leg("A", "d1", T0, False, 1_000, MIXER, ("mixer",), seq=1),
        leg("A", "w1", T0 + 1, True, 400, "a:0xelsewhere", seq=2))
    assert outcomes[1].emitted == []
    assert state.entries[0].usd_left == 600


# --- bounds: eviction, hops, horizon -------------------------------------------------------


def _entry(origin: str, usd: int, hops: int = 1, lists: tuple[str, ...] = ()) -> FlowEntry:
    path = tuple((f"p{n}", f"e{n}", T0, usd, PPM) for n in range(hops))
    return FlowEntry(origin, lists, "s", T0, usd, path, hops, PPM, usd, usd, PPM)


def test_entry_eviction_order(rules):
    """Risky origin first, then more USD left, then more hops, then the origin key; the value
    of evicted entries stays, untraced."""
    entries = [_entry("c:a", 500), _entry("c:b", 900), _entry(MIXER, 10, lists=("mixer",)),
               _entry("c:d", 900, hops=2), _entry("c:c", 900), _entry("c:e", 0)]
    state = FlowState(entries=entries)
    bounds = NetworkBounds(entries_per_customer=4)
    keep_entries(state, T0, bounds)
    assert [(e.origin, e.hops) for e in state.entries] == [
        (MIXER, 1), ("c:d", 2), ("c:b", 1), ("c:c", 1)]
    assert sum(c for _, c in state.untraced) == 500


@pytest.mark.parametrize(("length", "kept"), [
    (2, ["h0", "h1", "new"]),
    (3, ["h0", "h1", "h2", "new"]),  # max_hops 4: still all
    (4, ["h0", "h2", "h3", "new"]),  # the oldest after the origin's hop goes
    (6, ["h0", "h4", "h5", "new"]),
])
def test_path_keeps_the_origin_hop_and_the_newest(length, kept):
    path = tuple((f"h{n}", "e", T0, 1, PPM) for n in range(length))
    assert [h[0] for h in extend_path(path, ("new", "e", T0, 1, PPM), 4)] == kept


def test_long_chain_path_bounded_hops_counted(customised):
    rules = customised({"network": {"max_hops": 3}})
    net = Net(rules)
    chain(net, "ABCDEFG", T0, DAY, 1_000_000, [50_000] * 6)
    net.run()
    [entry] = net.states["G"].entries
    assert [h[0] for h in entry.path] == ["A", "E", "F"]
    assert entry.hops == 6


@pytest.mark.parametrize(("now", "kept"), [(T0 + 30 * DAY, True), (T0 + 30 * DAY + 1, False)])
def test_entries_expire_with_the_horizon_from_their_origin(rules, now, kept):
    state = FlowState(entries=[_entry(MIXER, 700, lists=("mixer",))])
    expire(state, now, rules.config.network, 7 * DELAY)
    assert bool(state.entries) is kept
    assert state.pool() == 700  # the value itself stays, untraced


def test_untraced_expires_with_the_horizon(rules):
    """Buckets of 30d/8 = 324,000 s: value is dropped once its whole bucket is older than the
    horizon (so kept between 30 and 33.75 days)."""
    width = 30 * DAY // 8
    start = (T0 // width) * width  # the start of a bucket
    state, _ = _apply(rules, None, leg("A", "d1", start + 10, False, 500, None, seq=1))
    last_kept = start + width - 1 + 30 * DAY
    kept, _ = _apply(rules, state, leg("A", "d2", last_kept, False, 0, None, seq=2))
    gone, _ = _apply(rules, state, leg("A", "d2", last_kept + 1, False, 0, None, seq=2))
    assert (kept.pool(), gone.pool()) == (500, 0)


# --- rules -------------------------------------------------------------------------------


def test_ping_pong_is_not_a_cycle_but_a_triangle_is(rules):
    net = Net(rules)
    net.deposit(T0, "A", 500_000)
    net.transfer(T0 + DAY, "A", "B", 450_000)
    net.transfer(T0 + 2 * DAY, "B", "A", 400_000)
    assert net.run().fired("flow_cycle") == []
    net = Net(rules)
    net.deposit(T0, "A", 500_000)
    net.transfer(T0 + DAY, "A", "B", 450_000)
    net.transfer(T0 + 2 * DAY, "B", "C", 405_000)
    net.transfer(T0 + 3 * DAY, "C", "A", 364_500)
    assert net.run().finders() == [("A", "flow_cycle")]
    [(order_s, alert)] = net.found()
    assert order_s == T0 + 3 * DAY + DELAY
    assert alert.summary == ("value from c:A came back to this customer through 3 customers "
                             "within 2d (3,645 USD, 81 %)")
    assert [(t.customer_id, t.share_pct) for t in alert.evidence.network.path] == [
        ("A", 100), ("B", 90), ("C", 81)]


def test_every_customer_on_a_loop_is_alerted(rules):
    """The loop is seen at A; B and C, told one hop delay later, get their own alert of the
    same finding: their own transfer on the loop, the same period, the finder named."""
    net = Net(rules)
    net.deposit(T0, "A", 500_000)
    net.transfer(T0 + DAY, "A", "B", 450_000)
    net.transfer(T0 + 2 * DAY, "B", "C", 405_000)
    net.transfer(T0 + 3 * DAY, "C", "A", 364_500)
    assert net.run().fired() == [("A", "flow_cycle"), ("B", "flow_cycle"), ("C", "flow_cycle")]
    (found_s, found), *told = net.alerts
    period = found_s // (30 * DAY)
    start = f"A>B@{T0 + DAY}"
    assert [at for at, _ in told] == [found_s + DELAY] * 2
    for (_, alert), (me, event, usd) in zip(told, [("B", f"B>C@{T0 + 2 * DAY}", 4_050),
                                                   ("C", f"C>A@{T0 + 3 * DAY}", 3_645)],
                                          strict=True):
        assert alert.alert_id == alert_id(me, "flow_cycle", f"path:c:A:{start}:{period}")
        assert alert.summary == ("on a loop of 3 customers: value from c:A came back to A "
                                 "through 3 customers within 2d (3,645 USD, 81 %)")
        [trigger] = alert.evidence.triggering_events
        assert (trigger.event_id, trigger.direction, trigger.amount_usd) == (event, "out", usd)
        assert alert.evidence.matches == {"found_at": "A"}
        assert alert.evidence.network == found.evidence.network
        assert (alert.observed_value, alert.threshold) == (found.observed_value, found.threshold)
    assert found.alert_id == alert_id("A", "flow_cycle", f"path:c:A:{start}:{period}")


def test_only_the_loop_is_told_not_the_customers_before_it(rules):
    """X pays A, and A's value goes round A -> B -> C -> A: X is upstream, not on the loop."""
    net = Net(rules)
    net.transfer(T0, "X", "A", 500_000)
    net.transfer(T0 + DAY, "A", "B", 500_000)
    net.transfer(T0 + 2 * DAY, "B", "C", 500_000)
    net.transfer(T0 + 3 * DAY, "C", "A", 500_000)
    assert sorted(net.run().fired("flow_cycle")) == [("A", "flow_cycle"), ("B", "flow_cycle"),
                                                     ("C", "flow_cycle")]


def test_every_customer_on_a_chain_is_alerted_once(rules):
    """The chain is complete at D; A, B and C are told. The same value passing on to E
    completes no new chain (one alert per chain), and a second piece of the same origin value
    in the same period tells no one twice."""
    net = Net(rules)
    chain(net, "ABCDE", T0, DAY, 1_000_000, [0, 100_000, 100_000, 100_000])
    net.transfer(T0 + 5 * DAY, "A", "B", 10)  # no new origin: A's value, another event
    assert net.run().fired("layering_chain") == [("D", "layering_chain"),
                                                 ("A", "layering_chain"),
                                                 ("B", "layering_chain"),
                                                 ("C", "layering_chain")]
    [(_, told_a)] = [(at, a) for at, a in net.alerts if a.customer_id == "A"]
    assert told_a.summary.startswith("on a chain ending at D: value from c:A passed through 4 "
                                     "customers within 2d")
    assert told_a.evidence.triggering_events[0].event_id == f"A>B@{T0 + DAY}"


def test_a_told_customer_is_not_alerted_again_for_the_same_finding(rules):
    """A path alert applied twice (a replay of the same finding under another record) gives
    one alert: the id is the customer's, the rule's, the path's and the period's."""
    net = Net(rules)
    net.deposit(T0, "A", 500_000)
    net.transfer(T0 + DAY, "A", "B", 450_000)
    net.transfer(T0 + 2 * DAY, "B", "C", 405_000)
    net.transfer(T0 + 3 * DAY, "C", "A", 364_500)
    net.run()
    told = [e for e in net.emitted if isinstance(e.body, PathAlert)]
    assert [e.body.recipient for e in told] == ["B", "C"]  # type: ignore[union-attr]
    again = Envelope("f9", ("again",), told[0].order_s + 1, told[0].rank, told[0].body)
    _, outcome = apply_flow(net.states["B"], again, rules, "f0", DELAY)
    assert outcome.alerts == [] and not outcome.replayed


def test_path_alert_round_trips_on_the_wire(rules):
    entry = _entry("c:A", 100_000, hops=2)
    record = Envelope("f1", (1, 0, "c0", (5, 0), 0), T0, RANK_PATH_ALERT,
                      PathAlert("B", "A", "flow_cycle", "1234", entry.wire()))
    assert decode(encode(record)) == record
    assert record.key == "B"


@pytest.mark.parametrize(("returned", "fired"), [(99_999, []), (100_000, [("A", "flow_cycle")])])
def test_cycle_min_usd(rules, returned, fired):
    net = Net(rules)
    net.transfer(T0 + DAY, "A", "B", 100_000)
    net.transfer(T0 + 2 * DAY, "B", "C", 100_000)
    net.transfer(T0 + 3 * DAY, "C", "A", returned)
    assert net.run().finders() == fired


@pytest.mark.parametrize(("keep", "fired"), [
    ([0, 250_000, 100_000], []),  # B keeps 25 %
    ([0, 200_001, 100_000], []),  # B passes on 799,999 ppm
    ([0, 200_000, 100_000], [("D", "layering_chain")]),  # exactly 80 %
    ([0, 150_000, 50_000, 100_000, 120_000], [("D", "layering_chain")]),  # 4 hops, 85 to 95 %
])
def test_layering_fires_where_the_chain_reaches_min_customers(rules, keep, fired):
    net = Net(rules)
    chain(net, "ABCDEF"[:len(keep) + 1], T0, DAY, 1_000_000, keep)
    assert net.run().finders() == fired


@pytest.mark.parametrize(("cents", "fired"), [
    (123_457, []),  # D gets 99,999 cents (90 % of 90 %, rounded down at each hop)
    (123_458, [("D", "layering_chain")]),  # D gets 100,000 cents = min_usd
])
def test_layering_min_usd(rules, cents, fired):
    net = Net(rules)
    chain(net, "ABCD", T0, DAY, cents, [0, 100_000, 100_000])
    assert net.run().finders() == fired
    assert net.states["D"].entries[0].usd_received == (99_999 if not fired else 100_000)


def test_fast_chain_found_through_catch_ups(rules):
    """Hops 5 minutes apart, faster than the hop delay: D sees the chain 3 hop delays after
    A's transfer (B's and C's provenance come as catch-ups), with the same evidence as a slow
    chain."""
    net = Net(rules)
    chain(net, "ABCDE", T0, 5 * MIN, 1_000_000, [0, 100_000, 50_000, 100_000])
    net.run()
    assert net.finders() == [("D", "layering_chain")]
    [(order_s, alert)] = net.found()
    assert order_s == T0 + 5 * MIN + 3 * DELAY
    assert [(t.customer_id, t.amount_usd, t.share_pct) for t in alert.evidence.network.path] == [
        ("A", 10_000, 100), ("B", 9_000, 90), ("C", 8_550, Decimal("85.5"))]
    catch_ups = [e for e in net.emitted
                 if isinstance(e.body, Provenance) and e.body.catch_up]
    assert [(e.body.sender, e.body.recipient) for e in catch_ups] == [  # type: ignore[union-attr]
        ("B", "C"), ("C", "D"), ("D", "E")]
    # the same chain, a day per hop: the same alert id (same origin, first event, period)
    slow = Net(rules)
    slow.deposit(T0, "A", 1_000_000)
    slow.transfer(T0 + 5 * MIN, "A", "B", 1_000_000)
    slow.transfer(T0 + DAY, "B", "C", 900_000)
    slow.transfer(T0 + 2 * DAY, "C", "D", 855_000)
    assert [a.alert_id for _, a in slow.run().found()] == [alert.alert_id]
    assert alert.alert_id == alert_id(
        "D", "layering_chain", f"path:c:A:A>B@{T0 + 5 * MIN}:{(T0 + 3 * DELAY) // (30 * DAY)}")


def test_fast_chain_without_recent_forwards_is_lost(customised):
    """With no forward remembered there is no catch-up: the chain is not seen."""
    net = Net(customised({"network": {"recent_forwards_kept": 0}}))
    chain(net, "ABCDE", T0, 5 * MIN, 1_000_000, [0, 100_000, 50_000, 100_000])
    assert net.run().fired() == []


@pytest.mark.parametrize(("customers", "alerted"), [
    ("ABCD", ["B", "C", "D"]),  # 1, 2 and 3 customers between the mixer and the alerted one
    ("ABCDE", ["B", "C", "D"]),  # E: 4 customers between, beyond max_hops 3
])
def test_indirect_exposure_within_max_hops(rules, customers, alerted):
    net = Net(rules)
    chain(net, customers, T0, DAY, 100_000, [0] * 4, deposit=(MIXER, ("mixer",)))
    net.run()
    assert net.fired("indirect_exposure") == [(c, "indirect_exposure") for c in alerted]
    first = next(a for _, a in net.alerts
                 if (a.customer_id, a.rule_id) == ("D", "indirect_exposure"))
    assert first.summary == (f"value from mixer {MIXER[:8]}…{MIXER[-4:]} reached this customer "
                             "after 3 customers within 3d (1,000 USD, 100 %)")
    assert first.evidence.matches == {"list": "mixer", "origin": MIXER}
    assert [t.direction for t in first.evidence.network.path] == ["in", "out", "out", "out"]


@pytest.mark.parametrize(("cents", "fired"), [(49_999, False), (50_000, True)])
def test_indirect_exposure_min_usd(rules, cents, fired):
    net = Net(rules)
    chain(net, "AB", T0, DAY, cents, [0], deposit=(MIXER, ("sanctions",)))
    assert net.run().fired() == ([("B", "indirect_exposure")] if fired else [])


def test_one_alert_per_origin_and_period(rules):
    """The same mixer value reaching B in two pieces alerts once; in the next cooldown period
    (30 days, aligned: the next starts at T0 + 6 days) it alerts again, with another id."""
    net = Net(rules)
    net.deposit(T0, "A", 300_000, MIXER, ("mixer",))
    net.transfer(T0 + HOUR, "A", "B", 100_000)
    net.transfer(T0 + 2 * HOUR, "A", "B", 100_000)
    net.transfer(T0 + 7 * DAY, "A", "B", 100_000)
    assert net.run().fired() == [("B", "indirect_exposure")] * 2
    periods = [(T0 + 2 * HOUR) // (30 * DAY), (T0 + 7 * DAY + DELAY) // (30 * DAY)]
    assert periods[1] == periods[0] + 1
    assert [a.alert_id for _, a in net.alerts] == [
        alert_id("B", "indirect_exposure", f"path:{MIXER}:A-in-{T0}:{period}")
        for period in periods]


def test_disabled_rule_does_not_fire(customised):
    net = Net(customised({"rules": {"indirect_exposure": {"enabled": False}}}))
    chain(net, "ABC", T0, DAY, 100_000, [0, 0], deposit=(MIXER, ("mixer",)))
    assert net.run().fired() == []


# --- catch-ups -------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(40))
def test_catch_ups_never_carry_more_than_the_provenance(rules, seed):
    """B gets value from A, passes random parts of it on to several customers and outside
    before A's provenance comes: what the catch-ups carry, plus what B holds, never exceeds
    what the provenance carried, per entry and in total."""
    rng = random.Random(seed)
    received = rng.randint(1, 5_000_000)
    state, _ = _apply(rules, None, leg("B", "d", T0, False, received, "c:A", seq=0))
    for n in range(rng.randint(1, 6)):
        cp = rng.choice(["c:C", "c:D", "a:0xout"])
        state, _ = _apply(rules, state, leg("B", f"w{n}", T0 + n + 1, True,
                                            rng.randint(1, received), cp, seq=n + 1))
    pieces = [FlowEntry(MIXER, ("mixer",), "s", T0, received, (("A", "a", T0, x, sh),), 1, sh,
                        x, x, PPM)
              for x, sh in [(rng.randint(1, received), rng.randint(100_000, PPM))
                            for _ in range(rng.randint(1, 3))]]
    usd = max(received, sum(p.usd_received for p in pieces)) + rng.randint(0, 1_000)
    prov = Provenance("B", "A", "a", T0, usd, tuple(p.wire() for p in pieces))
    after, outcome = apply_flow(state, Envelope("f1", (T0, 0, "c1", (0, 0), 0), T0 + DELAY,
                                                RANK_PROVENANCE, prov), rules, "f0", DELAY)
    sent = [e.body for e in outcome.emitted]
    assert all(isinstance(p, Provenance) and p.catch_up for p in sent)
    assert sum(p.usd_cents for p in sent) <= usd  # type: ignore[union-attr]
    for piece in pieces:
        out = [FlowEntry.from_wire(e) for p in sent for e in p.entries  # type: ignore[union-attr]
               if tuple(e[5][0]) == piece.path[0]]
        assert sum(e.usd_received for e in out) <= piece.usd_received
        assert sum(e.share_ppm for e in out) <= piece.share_ppm
    assert sum(e.usd_left for e in after.entries) + sum(
        e.usd_received for p in sent for e in map(FlowEntry.from_wire, p.entries)  # type: ignore[union-attr]
    ) <= sum(p.usd_received for p in pieces)


# --- replay, format, size ----------------------------------------------------------------


def test_replay_guard(rules):
    first = leg("A", "w1", T0, True, 1_000, "c:B", seq=5)
    state, outcome = apply_flow(None, first, rules, "f0", DELAY)
    assert len(outcome.emitted) == 1
    before = state.to_bytes()
    apply_flow(state, leg("A", "d", T0 + 1, False, 5_000, MIXER, ("mixer",), seq=6), rules,
               "f0", DELAY)
    assert state.to_bytes() == before  # the state given is never changed
    again, replay = apply_flow(state, first, rules, "f0", DELAY)
    assert (again is state, replay.replayed, replay.emitted, replay.alerts) == (
        True, True, [], [])
    older = leg("A", "w0", T0, True, 1_000, "c:B", seq=4)
    assert apply_flow(state, older, rules, "f0", DELAY)[1].replayed
    newer = leg("A", "w2", T0, True, 1_000, "c:B", seq=6)
    assert not apply_flow(state, newer, rules, "f0", DELAY)[1].replayed


def test_emitted_records_are_ordered_one_hop_delay_after_their_cause(rules):
    cause = leg("A", "w1", T0 + 7, True, 1_000, "c:B", seq=42)
    [sent] = apply_flow(None, cause, rules, "f3", DELAY)[1].emitted
    assert (sent.producer, sent.seq, sent.order_s, sent.rank, sent.key) == (
        "f3", (T0 + 7, RANK_LEG, "c0", (42, 0), 0), T0 + 7 + DELAY, RANK_PROVENANCE, "B")
    assert decode(encode(sent)) == sent


def test_state_round_trip(rules):
    net = Net(rules)
    net.deposit(T0, "A", 300_000, MIXER, ("mixer",))
    net.deposit(T0, "A", 100_000)
    net.transfer(T0 + MIN, "A", "B", 200_000)
    net.transfer(T0 + 2 * MIN, "B", "C", 150_000)
    net.transfer(T0 + 3 * MIN, "B", "D", 10_000)
    # stop before A's provenance is applied: B has pending value and recent forwards
    net.run(until=T0 + DELAY)
    state = net.states["B"]
    assert state.pending and state.recent_out and state.snapshot
    assert FlowState.from_bytes(state.to_bytes()) == state
    full = Net(rules)
    chain(full, "ABCD", T0, DAY, 1_000_000, [0, 0, 0], deposit=(MIXER, ("mixer",)))
    state = full.run().states["D"]
    assert state.alerted and state.entries
    assert FlowState.from_bytes(state.to_bytes()) == state
    with pytest.raises(FormatError):
        FlowState.from_bytes(b'[2, null]')


def test_typical_state_is_small(rules):
    state = None
    for n in range(40):
        state, _ = apply_flow(state, leg("cust-000123", f"evt-{n:08}", T0 + n * HOUR,
                                         n % 3 == 0, 12_345, "a:0x" + "cd" * 20, seq=n),
                              rules, "f0", DELAY)
    assert state is not None and not state.entries
    assert len(state.to_bytes()) < 200


def test_worst_case_sizes_bounded(rules):
    bounds = rules.config.network
    assert max_state_bytes(bounds, 24) <= 16_000
    assert max_state_bytes(bounds, 128) <= 31_000
    assert max_provenance_bytes(bounds, 24) <= 9_500
    assert max_provenance_bytes(bounds, 128) <= 22_000


@pytest.mark.parametrize("minutes", [1, 5, 120])
@pytest.mark.parametrize("seed", range(3))
def test_random_traffic_stays_within_the_bounds(rules, minutes, seed):
    """Six customers passing value around every few minutes (faster and slower than the hop
    delay), some of it from a mixer, some of it leaving: every pool adds up to what the
    customer's legs say it holds, to the cent; no state or record exceeds the computed worst
    case, and every bound holds."""
    rng = random.Random(seed)
    net = Net(rules)
    names = [f"cust-{n:019}" for n in range(6)]  # 24 characters
    balance: dict[str, int] = defaultdict(int)
    for n in range(300):
        at = T0 + n * minutes * MIN
        a, b = rng.sample(names, 2)
        if rng.random() < 0.2 or balance[a] == 0:
            cents = rng.randint(1, 10**7)
            mixer = rng.random() < 0.2
            net.deposit(at, a, cents, MIXER if mixer else None, ("mixer",) if mixer else ())
            balance[a] += cents
        else:
            cents = rng.randint(1, balance[a])
            balance[a] -= cents
            if rng.random() < 0.2:
                net.withdraw(at, a, cents)
            else:
                net.transfer(at, a, b, cents)
                balance[b] += cents
    net.run()
    bounds = rules.config.network
    assert any(state.entries for state in net.states.values())
    for customer, state in net.states.items():
        assert state.pool() == balance[customer]
        assert len(state.to_bytes()) <= max_state_bytes(bounds, 24)
        assert len(state.entries) <= bounds.entries_per_customer
        assert all(len(e.path) <= bounds.max_hops for e in state.entries)
        assert len(state.recent_out) <= bounds.recent_forwards_kept
    for record in net.emitted:
        assert len(encode(record)) <= max_provenance_bytes(bounds, 24)
    by_customer: dict[str, list[str]] = defaultdict(list)
    for _, alert in net.alerts:
        by_customer[alert.customer_id].append(alert.alert_id)
    assert all(len(ids) == len(set(ids)) for ids in by_customer.values())


def test_same_inputs_same_alerts(rules):
    def run() -> list[str]:
        net = Net(rules)
        chain(net, "ABCDE", T0, 7 * MIN, 1_000_000, [0, 100_000, 50_000, 100_000],
              deposit=(MIXER, ("sanctions",)))
        return [a.alert_id for _, a in net.run().alerts]

    ids = run()
    assert len(ids) == 7 and ids == run()  # exposure at B, C, D; the chain at D, told A, B, C


def test_through_the_wire_the_same(rules):
    """Records and states encoded and decoded at every step (as across Kafka and the state
    table) give the same records and alerts; catch-ups name their cause by a digest."""
    def run(wire: bool) -> Net:
        net = Net(rules, wire)
        chain(net, "ABCDE", T0, 3 * MIN, 1_000_000, [0, 100_000, 50_000, 100_000],
              deposit=(MIXER, ("mixer",)))
        return net.run()

    plain, wired = run(False), run(True)
    assert [a for _, a in plain.alerts] == [a for _, a in wired.alerts]
    assert plain.emitted == wired.emitted
    catch_up = next(e for e in plain.emitted if e.body.catch_up)  # type: ignore[union-attr]
    assert catch_up.seq[2] == "f0" and len(catch_up.seq[3]) == 16


@pytest.mark.parametrize("gap", [2 * MIN, DAY])
@pytest.mark.parametrize("seed", range(4))
def test_pool_is_what_each_customer_holds(rules, gap, seed):
    """Along a chain of 10 customers, fast (its tail outlives the pending items: the late
    catch-ups must not count the value twice) or slow, each customer's pool is its balance
    to the cent."""
    rng = random.Random(seed)
    keep = [0] + [rng.randint(0, 200_000) for _ in range(8)]
    net = Net(rules)
    chain(net, "ABCDEFGHIJ", T0, gap, rng.randint(100_000, 10**8), keep)
    net.run()
    balance: dict[str, int] = defaultdict(int)
    for record in net.log:
        body = record.body
        if isinstance(body, Leg):
            balance[body.customer_id] += -body.usd_cents if body.out else body.usd_cents
    for customer, state in net.states.items():
        assert state.pool() == balance[customer], customer


def test_late_catch_up_meeting_a_new_deposit_counts_nothing_twice(customised):
    """V -> W -> X -> A -> B within minutes: with max_hops 2, B's pending value from A becomes
    untraced after 3 hop delays, before A's catch-up (4 hop delays) comes. A new transfer
    A -> B just before it makes a new pending item, which the late catch-up meets: the value
    the catch-up and then A's own provenance for the new transfer describe is held once."""
    net = Net(customised({"network": {"max_hops": 2}}))
    chain(net, "VWXAB", T0, MIN, 1_000_000, [0, 0, 0, 0])
    net.deposit(T0 + 10 * MIN, "A", 300_000)
    net.transfer(T0 + 4 * DELAY - 10 * MIN, "A", "B", 300_000)
    net.run()
    assert any(e.body.catch_up and e.body.recipient == "B"  # type: ignore[union-attr]
               for e in net.emitted)
    assert net.states["B"].pool() == 1_300_000
