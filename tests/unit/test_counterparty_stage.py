"""S2, the counterparty stage (``streams.network.counterparty``): each rule at threshold - 1
and at threshold, the exemptions, the caps, once per period per customer, the replay guard,
retroactive screening, expiry, and the state's encoding and size.

Legs are applied through ``apply_leg`` as the stage applies them: one ``Envelope`` per leg,
order keys increasing. Times are offsets from ``T`` (midnight UTC, a Monday).
"""

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest

from schemas.alerts import Alert
from streams.alerting import alert_id
from streams.intel import Listing
from streams.network.counterparty import (
    WORST_CASE_BYTES,
    CounterpartyState,
    apply_leg,
    is_expired,
    screen_listing,
    unconnected,
)
from streams.network.counterparty_state import DAYS_KEPT, FORMAT
from streams.network.records import RANK_LEG, Envelope, FormatError, Leg, Snapshot
from streams.ruleset import CompiledRules

T = int(datetime(2026, 3, 2, tzinfo=UTC).timestamp())
M = 60
H = 3600
D = 86400
CP = "a:0x" + "ab" * 20
ADDRESS = CP[2:]


def snap(country: str | None = "DE", nationality: str | None = "DE",
         risk_level: str = "low") -> Snapshot:
    return ("verified", 2, country, nationality, False, False, None, risk_level)


class Stage:
    """One counterparty's state, fed legs through ``apply_leg``."""

    def __init__(self, rules: CompiledRules, cp_key: str = CP, cp_type: str = "other") -> None:
        self.rules = rules
        self.cp_key = cp_key
        self.cp_type = cp_type
        self.state: CounterpartyState | None = None
        self.seq = 0
        self.alerts: list[Alert] = []

    def envelope(self, customer_id: str, at: int, usd: str = "300", out: bool = True, *,
                 snapshot: Snapshot | None = None, listed: tuple[str, ...] = (),
                 cp_type: str | None = None, order_at: int | None = None) -> Envelope:
        self.seq += 1
        leg = Leg(customer_id, f"{customer_id}-e{self.seq}", T + at, out,
                  int(Decimal(usd) * 100), self.cp_key, cp_type or self.cp_type, None, listed,
                  snapshot or snap())
        return Envelope("c0", (self.seq, 0), T + (at if order_at is None else order_at),
                        RANK_LEG, leg)

    def apply(self, envelope: Envelope) -> list[Alert]:
        self.state, outcome = apply_leg(self.state, envelope, self.rules)
        self.alerts += outcome.alerts
        return outcome.alerts

    def leg(self, customer_id: str, at: int, usd: str = "300", out: bool = True,
            **options: Any) -> list[Alert]:
        """Apply one leg; return the alerts it raised."""
        return self.apply(self.envelope(customer_id, at, usd, out, **options))

    def fan(self, offsets: list[int], usd: str = "300", out: bool = True,
            **options: Any) -> list[list[Alert]]:
        """Customer ``c<n>`` pays (or is paid) at ``offsets[n]``."""
        return [self.leg(f"c{n}", at, usd, out, **options) for n, at in enumerate(offsets)]


@pytest.fixture
def stage(rules: CompiledRules) -> Callable[..., Stage]:
    def build(rules: CompiledRules = rules, **options: Any) -> Stage:
        return Stage(rules, **options)

    return build


def customers(alerts: list[Alert]) -> list[str]:
    return [alert.customer_id for alert in alerts]


# --- collection_point / distribution_point ------------------------------------------------

RULE = {True: "collection_point", False: "distribution_point"}
EVERY_DAY = [n * D for n in range(7)]
EVERY_3_DAYS = [n * 3 * D for n in range(10)]


@pytest.mark.parametrize("out", [True, False])
@pytest.mark.parametrize(
    ("offsets", "usd", "fired"),
    [
        (EVERY_DAY[:4], "300", False),  # 4 customers in 7d (min 5 - 1)
        (EVERY_DAY[:5], "300", True),  # 5
        # 30d: 3 days apart, so at most 3 in any 7d; 9 then 10 customers
        (EVERY_3_DAYS[:9], "300", False),
        (EVERY_3_DAYS[:10], "300", True),
        # USD floor (1,000): 5 x 199.99 = 999.95, 5 x 200 = 1,000
        (EVERY_DAY[:5], "199.99", False),
        (EVERY_DAY[:5], "200", True),
        # the 7d edge: the first customer exactly 7d before the fifth is out, 1 s less is in
        ([0, D, 2 * D, 3 * D, 7 * D], "300", False),
        ([0, D, 2 * D, 3 * D, 7 * D - 1], "300", True),
        # the 30d edge: the first of ten exactly 30d before the last
        ([*EVERY_3_DAYS[:9], 30 * D], "300", False),
        ([*EVERY_3_DAYS[:9], 30 * D - 1], "300", True),
    ],
)
def test_fan_thresholds(stage, out, offsets, usd, fired):
    s = stage()

    raised = s.fan(offsets, usd, out)

    assert [alerts for alerts in raised[:-1] if alerts] == []
    if not fired:
        assert raised[-1] == []
        return
    alerts = raised[-1]
    involved = [f"c{n}" for n in range(len(offsets)) if offsets[-1] - offsets[n] < 30 * D]
    assert sorted(customers(alerts)) == sorted(involved)
    assert {alert.rule_id for alert in alerts} == {RULE[out]}
    assert len({alert.alert_id for alert in alerts}) == len(alerts)
    who = "payers" if out else "payees"
    first = alerts[0]
    assert first.customer_id == f"c{len(offsets) - 1}"  # most recent first
    assert first.measure == f"distinct_{who}_{first.window}"
    assert first.observed_value == len(alerts)
    assert first.threshold == (5 if first.window == "7d" else 10)


def test_fan_on_the_other_side_does_not_count(stage):
    """Four customers paid it, one was paid by it: neither side has five."""
    s = stage()
    s.fan(EVERY_DAY[:4], out=True)

    assert s.leg("c9", 4 * D, "300", out=False) == []
    assert s.leg("c8", 4 * D, "300", out=False) == []
    assert s.alerts == []


@pytest.mark.parametrize(("cp_type", "listed", "fired"), [
    ("other", (), True),
    ("unhosted_wallet", (), True),
    ("exchange", (), False),
    ("merchant", (), False),
    ("bank", (), False),
    ("other", ("service",), False),
    ("other", ("mixer",), True),
])
def test_service_types_and_service_listing_are_exempt(stage, cp_type, listed, fired):
    s = stage(cp_type=cp_type)

    s.fan(EVERY_DAY[:5], listed=listed)

    assert {alert.rule_id for alert in s.alerts} == ({"collection_point"} if fired else set())


def test_a_disabled_rule_does_not_fire(stage, customised):
    s = stage(customised({"rules": {"collection_point": {"enabled": False}}}))

    s.fan(EVERY_DAY[:5])

    assert s.alerts == []


def test_once_per_period_per_customer_late_joiner_and_next_period(stage):
    s = stage()
    start = (T // (7 * D) + 1) * 7 * D - T  # the start of an aligned 7d period
    first = s.fan([start + n * H for n in range(5)])[-1]
    assert sorted(customers(first)) == ["c0", "c1", "c2", "c3", "c4"]

    # the same customers again, same period: nothing
    assert s.leg("c0", start + 5 * H) == []
    assert s.leg("c4", start + 5 * H + M) == []
    # a sixth customer joins: its own alert only
    (late,) = s.leg("c5", start + 6 * H)
    assert late.customer_id == "c5"
    period = (T + start) // (7 * D)
    assert late.alert_id == alert_id("c5", "collection_point", f"cp:{CP}:{period}")
    # the last second of the period: still nothing for the others
    assert customers(s.leg("c6", start + 7 * D - 1)) == ["c6"]

    # the next period: everyone in the window again, with new ids
    again = s.leg("c7", start + 7 * D + 30 * M)
    assert customers(again) == ["c7", "c6", "c5", "c4", "c0", "c3", "c2", "c1"]
    assert again[-1].alert_id == alert_id("c1", "collection_point", f"cp:{CP}:{period + 1}")
    assert {alert.alert_id for alert in again}.isdisjoint(
        {alert.alert_id for alert in s.alerts[:-len(again)]})


def test_alert_ids_are_keyed_by_counterparty_period_and_customer(stage):
    s = stage()
    alerts = s.fan(EVERY_DAY[:5])[-1]

    period = (T + 4 * D) // (7 * D)
    assert {alert.alert_id for alert in alerts} == {
        alert_id(f"c{n}", "collection_point", f"cp:{CP}:{period}") for n in range(5)}


def test_cooldown_zero_alerts_per_triggering_event(stage, customised):
    s = stage(customised({"rules": {"collection_point": {"cooldown_s": 0}}}))
    s.fan(EVERY_DAY[:5])

    again = s.leg("c0", 5 * D)

    assert sorted(customers(again)) == ["c0", "c1", "c2", "c3", "c4"]
    assert again[0].alert_id == alert_id("c0", "collection_point", f"cp:{CP}:c0-e6")


def test_cap_keeps_64_and_counts_every_customer(stage):
    s = stage()
    for n in range(70):
        s.leg(f"c{n}", n * M)
    state = s.state

    assert len(state.payers) == 64
    assert state.distinct_payers_total == 70
    assert list(state.payers)[:2] == ["c6", "c7"]  # the least recent were forgotten
    assert len(s.alerts) == 70  # 5 at the fifth, then each newcomer its own
    assert len(state.alerted["collection_point"][1]) == 64
    last = s.alerts[-1]
    assert last.customer_id == "c69"
    assert (last.observed_value, last.window) == (64, "30d")  # 30d first: it holds the 7d ones
    assert last.evidence.network.others_total == 69
    assert [other.customer_id for other in last.evidence.network.others] == [
        f"c{n}" for n in range(68, 58, -1)]


def test_usd_over_the_days_the_window_touches(stage):
    """USD is kept per UTC day: a window counts the days it touches, so up to one day more."""
    s = stage()
    s.leg("c0", 0, "1000")  # day 0
    s.leg("c1", D, "200")  # day 1, 00:00
    s.leg("c2", 8 * D, "30", out=False)  # day 8
    state, now = s.state, T + 8 * D + 12 * H  # the 7d window starts at day 1, 12:00

    assert state.usd(True, 7 * D, now) == 200_00  # day 1 touched: its 200 count, day 0 not
    assert state.usd(False, 7 * D, now) == 30_00
    assert state.usd(True, 30 * D, now) == 1200_00
    s.leg("c3", 31 * D, "1")  # day 31: day 0 no longer touches the last 30d
    assert list(s.state.days) == [(T // D) + day for day in (1, 8, 31)]


def test_evidence_of_a_collection_alert(stage, default_rules):
    s = stage(default_rules)  # risk level high raises the severity
    s.leg("c0", 0, "100")
    s.leg("c0", H, "150")
    s.fan([D, 2 * D, 3 * D, 4 * D][:3], "400")  # c0 (again), c1, c2
    s.leg("c3", 4 * D, "100", snapshot=snap("FR", "FR", "high"))
    alerts = s.leg("c4", 5 * D, "250", order_at=5 * D + 30)  # source-late: order 30 s later
    by_customer = {alert.customer_id: alert for alert in alerts}

    c0 = by_customer["c0"]
    assert c0.triggered_at == datetime.fromtimestamp(T + 5 * D, UTC)  # the leg's own time
    assert [event.event_id for event in c0.evidence.triggering_events] == [
        "c0-e3", "c0-e2", "c0-e1"]
    assert {event.direction for event in c0.evidence.triggering_events} == {"out"}
    assert c0.evidence.aggregates == {
        "distinct_payers_7d": 5, "distinct_payers_30d": 5,
        "usd_to_counterparty_7d": Decimal("1800.00"),
        "usd_to_counterparty_30d": Decimal("1800.00")}
    network = c0.evidence.network
    assert (network.counterparty, network.counterparty_type) == (CP, "other")
    assert [(other.customer_id, other.amount_usd) for other in network.others] == [
        ("c4", Decimal("250.00")), ("c3", Decimal("100.00")), ("c2", Decimal("400.00")),
        ("c1", Decimal("400.00"))]
    assert network.others_total == 4
    assert c0.summary == "5 customers paid other a:0xabababab… within 7d (1,800.00 USD)"
    assert (c0.window, c0.severity) == ("7d", "high")
    assert by_customer["c3"].severity == "critical"  # raised for its high risk level
    assert by_customer["c3"].customer.country_of_residence == "FR"


def test_distribution_summary_and_evidence(stage):
    s = stage()
    alerts = s.fan(EVERY_DAY[:5], "250", out=False)[-1]

    assert alerts[0].summary == (
        f"5 customers were paid by other a:0x{'ab' * 4}… within 7d (1,250.00 USD)")
    assert alerts[0].evidence.aggregates["usd_from_counterparty_7d"] == Decimal("1250.00")
    assert alerts[0].evidence.network.others_total == 4
    assert {event.direction for alert in alerts
            for event in alert.evidence.triggering_events} == {"in"}


def test_the_latest_snapshot_is_kept_on_both_sides(stage):
    s = stage()
    s.leg("c0", 0, out=False)
    s.leg("c0", H, out=True, snapshot=snap("JP", "JP"))

    assert s.state.payees["c0"].snapshot[2] == "JP"


# --- shared_wallet_unrelated --------------------------------------------------------------


@pytest.mark.parametrize(("first", "second", "fired"), [
    (snap("DE", "DE"), snap("DE", "FR"), False),  # same country of residence connects
    (snap("DE", "FR"), snap("JP", "FR"), False),  # same nationality connects
    (snap("DE", "DE"), snap("JP", "JP"), True),
    (snap(None, None), snap(None, None), True),  # both unknown does not connect
    (snap("DE", None), snap("DE", None), False),
    (snap("DE", None), snap(None, "DE"), True),  # residence is not compared to nationality
])
def test_shared_wallet_connect_logic(stage, first, second, fired):
    s = stage(cp_type="unhosted_wallet")

    assert s.leg("c0", 0, "50", out=True, snapshot=first) == []
    alerts = s.leg("c1", 10 * D, "50", out=False, snapshot=second)

    assert customers(alerts) == (["c1", "c0"] if fired else [])
    assert s.leg("c1", 11 * D, "50", out=True, snapshot=second) == []  # once per period
    if fired:
        assert {alert.rule_id for alert in alerts} == {"shared_wallet_unrelated"}
        assert alerts[0].severity == "medium"
        assert [event.direction for event in alerts[1].evidence.triggering_events] == ["out"]


@pytest.mark.parametrize(("cp_key", "cp_type", "gap", "fired"), [
    (CP, "unhosted_wallet", 30 * D - 1, True),
    (CP, "unhosted_wallet", 30 * D, False),  # outside the 30d window
    (CP, "other", 10 * D, False),
    ("c:c77", "unhosted_wallet", 10 * D, False),  # only addresses
])
def test_shared_wallet_scope(stage, cp_key, cp_type, gap, fired):
    s = stage(cp_key=cp_key, cp_type=cp_type)
    s.leg("c0", 0, "50", snapshot=snap("DE", "DE"))

    alerts = s.leg("c1", gap, "50", snapshot=snap("JP", "JP"))

    assert {alert.rule_id for alert in alerts} == ({"shared_wallet_unrelated"} if fired
                                                  else set())


@pytest.mark.parametrize(("minimum", "fired"), [(2, True), (3, False)])
def test_shared_wallet_needs_min_customers_pairwise_unconnected(stage, customised, minimum,
                                                                fired):
    s = stage(customised({"rules": {"shared_wallet_unrelated": {"min_customers": minimum}}}),
              cp_type="unhosted_wallet")
    s.leg("a", 0, "50", snapshot=snap("DE", "JP"))
    s.leg("b", H, "50", snapshot=snap("DE", "FR"))  # connects to a
    alerts = s.leg("c", 2 * H, "50", snapshot=snap("US", "JP"))  # connects to a, not to b

    assert sorted(customers(alerts)) == (["a", "b", "c"] if fired else [])
    if fired:
        assert alerts[0].observed_value == 2


def test_unconnected_is_a_maximum_not_a_greedy_pick():
    # greedy in order keeps a (DE, JP), then rejects b (DE) and c (JP): 1; b and c make 2
    assert unconnected([("DE", "JP"), ("DE", "FR"), ("US", "JP")]) == 2
    assert unconnected([("DE", "DE"), ("DE", "FR"), ("FR", "DE")]) == 2
    assert unconnected([(None, None)] * 4) == 4
    assert unconnected([("DE", None)] * 3) == 1
    assert unconnected([]) == 0


# --- replay guard, encoding, size ---------------------------------------------------------


def test_replay_guard(stage):
    s = stage()
    s.fan(EVERY_DAY[:4])
    fifth = s.envelope("c4", 4 * D)
    assert len(s.apply(fifth)) == 5
    before = s.state.to_bytes()

    for envelope in (fifth, s.envelope("c0", 4 * D, order_at=3 * D)):
        state, outcome = apply_leg(s.state, envelope, s.rules)
        assert outcome.replayed is True
        assert outcome.alerts == []
        assert state.to_bytes() == before
    _, outcome = apply_leg(s.state, s.envelope("c9", 4 * D), s.rules)
    assert outcome.replayed is False


def test_state_round_trip(stage):
    s = stage(cp_type="unhosted_wallet")
    s.fan(EVERY_DAY[:5], snapshot=snap("DE", "DE"))
    s.fan([5 * D, 6 * D], out=False, snapshot=snap("JP", "JP"))
    screen_listing(s.state, CP, Listing("mixer", ADDRESS, T + 7 * D), s.rules)
    state = s.state
    assert state.alerted and state.screened and state.payees and len(state.days) == 7

    decoded = CounterpartyState.from_bytes(state.to_bytes())

    assert decoded == state
    assert list(decoded.payers) == list(state.payers)
    assert list(decoded.days) == list(state.days)
    assert decoded.to_bytes() == state.to_bytes()
    assert isinstance(decoded.last_key[3], tuple)


def test_decoded_state_goes_on_like_the_original(stage):
    s = stage()
    s.fan(EVERY_DAY[:4])
    copy = CounterpartyState.from_bytes(s.state.to_bytes())
    fifth = s.envelope("c4", 4 * D)

    _, original = apply_leg(s.state, fifth, s.rules)
    _, again = apply_leg(copy, fifth, s.rules)

    assert len(original.alerts) == 5
    assert again.alerts == original.alerts


def test_unknown_state_format_is_refused(stage):
    s = stage()
    s.leg("c0", 0)
    fields = orjson.loads(s.state.to_bytes())
    fields[0] = FORMAT + 1

    with pytest.raises(FormatError, match="format 2"):
        CounterpartyState.from_bytes(orjson.dumps(fields))


def test_size_of_a_one_off_address(rules):
    """One customer, one leg; a 12-character customer id, a 36-character event id."""
    leg = Leg("cust-0000001", "3f2b8c1e-9d4a-4e6b-8f00-1a2b3c4d5e6f", T, True, 123_456, CP,
              "unhosted_wallet", None, (), snap())
    state, _ = apply_leg(None, Envelope("c12", (123_456_789, 0), T, RANK_LEG, leg), rules)

    size = len(state.to_bytes())

    assert size < 400, size  # 258 B measured (the module's docstring)


def test_size_worst_case(rules):
    """Every cap full: 64 payers and 64 payees with 3 transfers each, 31 days of buckets,
    three rules alerted for everyone kept, 16 listings screened; 12-character customer ids,
    36-character event ids, 11-digit amounts and a snapshot with the longest values."""
    state: CounterpartyState | None = None
    seq = 0
    start = 1_800_000_000
    for n in range(64):
        for out in (True, False):
            for k in range(3):
                seq += 1
                at_s = start + (seq * 31 * D) // (64 * 6)
                leg = Leg(f"cust-{n:07d}", f"{seq:08d}-0000-4000-8000-000000000000", at_s, out,
                          99_999_999_999, CP, "unhosted_wallet", None, (),
                          ("pending_review", 3, "DE", "FR", True, True, 99_999_999_999,
                           "medium"))
                envelope = Envelope("c47", (9_999_999_999, k), at_s, RANK_LEG, leg)
                state, _ = apply_leg(state, envelope, rules)
    assert state is not None
    everyone = list(state.payers) + list(state.payees)
    state.alerted = {"collection_point": (2_976, everyone[:64]),
                     "distribution_point": (2_976, everyone[64:]),
                     "shared_wallet_unrelated": (694, everyone)}
    state.screened = [f"sanctions:{ADDRESS}:{start + n}" for n in range(16)]
    assert len(state.days) == DAYS_KEPT
    assert all(len(entry.transfers) == 3
               for entry in [*state.payers.values(), *state.payees.values()])

    size = len(state.to_bytes())

    assert size < WORST_CASE_BYTES, size


# --- retroactive screening ----------------------------------------------------------------


def _listing(list_name: str = "sanctions", at: int = 100 * D) -> Listing:
    return Listing(list_name, ADDRESS, T + at, chain="ETH", entity="LAZARUS GROUP",
                   source="OFAC SDN")


def test_retro_screening_look_back_and_after(stage):
    """Listed at 100d with a 90d look-back: transfers after 10d count, before or after."""
    s = stage(cp_type="unhosted_wallet")
    s.leg("outside", 9 * D)
    s.leg("edge", 10 * D, out=False)  # exactly 90d before: out
    s.leg("inside", 10 * D + 1, order_at=10 * D + 5)  # its own time counts, not the order's
    s.leg("middle", 90 * D, out=False)
    s.leg("after", 120 * D, out=False)

    alerts = screen_listing(s.state, CP, _listing(), s.rules)

    assert customers(alerts) == ["after", "middle", "inside"]  # the most recent first
    alert = alerts[0]
    assert alert.rule_id == "retro_listed_counterparty"
    assert alert.severity == "critical"
    assert alert.alert_id == alert_id("after", "retro_listed_counterparty",
                                      f"listing:sanctions:{ADDRESS}:{T + 100 * D}")
    assert alert.triggered_at == datetime.fromtimestamp(T + 100 * D, UTC)
    assert {"list": "sanctions", "entity": "LAZARUS GROUP", "source": "OFAC SDN"}.items() <= \
        alert.evidence.matches.items()
    assert [event.direction for event in alert.evidence.triggering_events] == ["in"]
    assert [other.customer_id for other in alert.evidence.network.others] == [
        "middle", "inside"]
    assert alert.evidence.network.others_total == 2


def test_retro_screening_once_per_listing(stage):
    s = stage()
    s.leg("c0", 95 * D)
    listing = _listing("mixer")

    first = screen_listing(s.state, CP, listing, s.rules)
    again = screen_listing(s.state, CP, listing, s.rules)
    relisted = screen_listing(s.state, CP, _listing("mixer", at=101 * D), s.rules)

    assert [alert.severity for alert in first] == ["high"]  # not sanctions: the rule's
    assert again == []
    assert f"mixer:{ADDRESS}:{T + 100 * D}" in s.state.screened
    assert customers(relisted) == ["c0"]
    assert relisted[0].alert_id != first[0].alert_id


def test_retro_screening_with_nobody_in_the_look_back_marks_it_screened(stage):
    s = stage()
    s.leg("c0", 0)

    assert screen_listing(s.state, CP, _listing(), s.rules) == []
    assert s.state.screened == [f"sanctions:{ADDRESS}:{T + 100 * D}"]


# --- expiry -------------------------------------------------------------------------------


def test_expiry_after_the_longest_look_back(stage, customised):
    s = stage()
    s.leg("c0", 0)
    state = s.state

    assert not is_expired(state, T + 90 * D, s.rules)  # lookback 90d > 30d
    assert is_expired(state, T + 90 * D + 1, s.rules)
    short = customised({"rules": {"retro_listed_counterparty": {"lookback_s": "10d"}}})
    assert not is_expired(state, T + 30 * D, short)  # never below 30d
    assert is_expired(state, T + 30 * D + 1, short)


def test_a_leg_on_an_expired_state_starts_afresh(stage):
    s = stage()
    s.fan(EVERY_DAY[:3])

    s.leg("c9", 3 * D + 90 * D + 1)

    assert list(s.state.payers) == ["c9"]
    assert s.state.distinct_payers_total == 1
    assert s.state.first_seen_s == T + 93 * D + 1


@pytest.mark.parametrize("out", [True, False])
@pytest.mark.parametrize(("include", "fired"), [(False, False), (True, True)])
def test_another_customer_is_a_collection_point_only_if_asked(stage, customised, out, include,
                                                              fired):
    """A customer of ours paid by many is alerted by its own fan-in rules (S1); S2 alerts its
    payers only with ``include_customers``."""
    rule = RULE[out]
    s = stage(customised({"rules": {rule: {"include_customers": include}}}),
              cp_key="c:popular", cp_type="other")

    s.fan(EVERY_DAY[:5], out=out)

    assert {alert.rule_id for alert in s.alerts} == ({rule} if fired else set())
