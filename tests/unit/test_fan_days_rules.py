"""The per-customer rules over days (issue 14, S1): fan_in_7d, fan_out_7d, fan_in_30d,
fan_out_30d and deposits_consolidated, at and around their thresholds; and who counts as a
counterparty: another customer (``counterparty.customer_id``) by its id, a transfer between
the customer's own accounts not at all.

Customers are tier 3 (no tier limit interferes); transfers are 100 USD from or to an exchange
unless said otherwise, spaced so that the 24h fan rules (10 in 24h) never fire. Every test
checks every alert raised.
"""

from datetime import timedelta
from decimal import Decimal
from typing import Any

import orjson
import pytest

from streams.intake import decode_transfer
from streams.state import COUNTERPARTIES_KEPT, counterparty_key, customer_key
from tests.unit.conftest import Customer, iso, transaction_payload, when

S = timedelta(seconds=1)
H = timedelta(hours=1)
D = timedelta(days=1)
DAY_FANS = ("fan_in_7d", "fan_out_7d", "fan_in_30d", "fan_out_30d")


def _address(n: int) -> str:
    return f"0x{n:040x}"


def send(c: Customer, offset: timedelta, direction: str, usd: str = "100.00", *,
         address: str | None = None, cp_customer: str | None = None) -> set[str]:
    """One transfer through the wire format (with ``counterparty.customer_id`` when given);
    the rule ids it raised."""
    counterparty: dict[str, Any] = {"type": "exchange"}
    if address is not None:
        counterparty["address"] = address
    if cp_customer is not None:
        counterparty["customer_id"] = cp_customer
    payload = transaction_payload(
        event_id=c._next_id(), customer_id=c.customer_id, occurred_at=iso(when(offset)),
        direction=direction, amount=usd, amount_usd=usd, counterparty=counterparty)
    transfer = decode_transfer(c.customer_id.encode(), orjson.dumps(payload), c.rules)
    return c.ids(c.apply(transfer))


def fan(c: Customer, direction: str, offsets: list[timedelta],
        counterparties: list[int] | None = None) -> list[set[str]]:
    """One transfer per offset with ``_address(counterparties[n])`` (default: n)."""
    numbers = counterparties if counterparties is not None else range(len(offsets))
    return [send(c, offset, direction, address=_address(n))
            for offset, n in zip(offsets, numbers, strict=True)]


def spaced(count: int, step: timedelta, start: timedelta = timedelta(0)) -> list[timedelta]:
    return [start + n * step for n in range(count)]


# --- fan_*_7d (>= 15 distinct in 7d), fan_*_30d (>= 25 in 30d) ------------------------------

# 15 counterparties 11h apart span 154h (< 7d) with at most 3 in any 24h; 25 counterparties
# 29h apart span 29 days (< 30d) with at most 6 in any 7d.
CASES = [("fan_in_7d", "in", 15, 11 * H), ("fan_out_7d", "out", 15, 11 * H),
         ("fan_in_30d", "in", 25, 29 * H), ("fan_out_30d", "out", 25, 29 * H)]


@pytest.mark.parametrize(("rule_id", "direction", "minimum", "step"), CASES)
@pytest.mark.parametrize("count_less", [1, 0])
def test_fan_days_thresholds(customer, rule_id, direction, minimum, step, count_less):
    c = customer(tier=3)
    count = minimum - count_less

    raised = fan(c, direction, spaced(count, step))

    fired = count == minimum
    assert raised == [set()] * (count - 1) + [{rule_id} if fired else set()]
    if fired:
        (alert,) = c.alerts
        who = "senders" if direction == "in" else "receivers"
        window = rule_id.rsplit("_", 1)[1]
        assert (alert.observed_value, alert.threshold) == (minimum, minimum)
        assert alert.measure == f"distinct_{who}_{window}"
        assert alert.window == window
        assert alert.severity == "high"
        assert alert.summary == f"{minimum} distinct {who} in {window}"


@pytest.mark.parametrize(("rule_id", "direction", "minimum", "window", "step"),
                         [("fan_in_7d", "in", 15, 7 * D, 10 * H),
                          ("fan_out_7d", "out", 15, 7 * D, 10 * H),
                          ("fan_in_30d", "in", 25, 30 * D, 29 * H),
                          ("fan_out_30d", "out", 25, 30 * D, 29 * H)])
@pytest.mark.parametrize(("first_age", "fires"), [(0 * S, False), (S, True)])
def test_fan_days_window_edge(customer, rule_id, direction, minimum, window, step, first_age,
                              fires):
    """The first counterparty exactly the window before the last one is out of it; 1 s later
    it is in. The others are ``step`` apart, well inside the window."""
    c = customer(tier=3)
    last = 40 * D
    offsets = [last - window + first_age, *(last - n * step for n in range(minimum - 2, -1, -1))]

    raised = fan(c, direction, offsets)

    assert raised == [set()] * (minimum - 1) + [{rule_id} if fires else set()]


@pytest.mark.parametrize("direction", ["in", "out"])
@pytest.mark.parametrize(("old_age", "fires"),
                         [(8 * D, True), (30 * D - 30 * H - S, True), (30 * D - 30 * H, False)])
def test_counterparties_8_days_old_count_for_30d_not_7d(customer, customised, direction,
                                                        old_age, fires):
    """11 counterparties from ``old_age`` to ``old_age`` + 30h before the last transfer, 14
    within its last 20h: 25 in 30d (``fan_*_30d``) unless the oldest is 30d old, and never 15
    in 7d. The 24h fan rules are off (14 in 20h would raise them)."""
    c = customer(tier=3, rules=customised(
        {"rules": {"fan_in": {"enabled": False}, "fan_out": {"enabled": False}}}))
    last = 60 * D
    old = [last - old_age - n * 3 * H for n in range(10, -1, -1)]
    recent = [last - n * 90 * timedelta(minutes=1) for n in range(13, -1, -1)]

    raised = fan(c, direction, old + recent)

    assert raised == [set()] * 24 + [{f"fan_{direction}_30d"} if fires else set()]
    if fires:
        assert c.alerts[0].observed_value == 25


@pytest.mark.parametrize(("rule_id", "direction"), [("fan_in_30d", "in"),
                                                    ("fan_out_30d", "out")])
def test_the_count_saturates_at_the_counterparties_kept(customer, customised, rule_id,
                                                        direction):
    """70 distinct counterparties over 26 days: the state keeps the 64 most recently seen, so
    the count stops at 64 and a rule asking for 64 fires from the 64th on (cooldown 0)."""
    others = {other: {"enabled": False} for other in (*DAY_FANS, "fan_in", "fan_out")
              if other != rule_id}
    rules = customised({"rules": {**others, rule_id: {"min_counterparties": COUNTERPARTIES_KEPT,
                                                      "cooldown_s": 0}}})
    c = customer(tier=3, rules=rules)

    raised = fan(c, direction, spaced(70, 9 * H))

    assert raised == [set()] * 63 + [{rule_id}] * 7
    assert [a.observed_value for a in c.alerts] == [COUNTERPARTIES_KEPT] * 7
    seen = c.state.counterparties_in if direction == "in" else c.state.counterparties_out
    assert len(seen) == COUNTERPARTIES_KEPT
    assert set(seen) == {counterparty_key(_address(n)) for n in range(6, 70)}


# --- who is a counterparty: another customer by its id, never the customer itself -------------


def _deposits(c: Customer, counterparties: list[dict[str, Any]]) -> list[set[str]]:
    return [send(c, n * 10 * H, "in", **cp) for n, cp in enumerate(counterparties)]


@pytest.mark.parametrize(
    ("counterparties", "distinct"),
    [
        # 15 customers without addresses: 15 senders
        ([{"cp_customer": f"k{n}"} for n in range(15)], 15),
        # 15 customers behind one address: still 15 (the customer is the identity)
        ([{"cp_customer": f"k{n}", "address": _address(1)} for n in range(15)], 15),
        # one customer through 15 addresses: 1
        ([{"cp_customer": "k0", "address": _address(n)} for n in range(15)], 1),
        # 14 customers, and an external address spelt like one of their ids: 15
        ([{"cp_customer": f"k{n}"} for n in range(14)] + [{"address": "k0"}], 15),
        # 14 addresses and a self-transfer from a 15th address: 14
        ([{"address": _address(n)} for n in range(14)]
         + [{"cp_customer": "c1", "address": _address(14)}], 14),
        # the same with the 15th from another customer: 15
        ([{"address": _address(n)} for n in range(14)]
         + [{"cp_customer": "c2", "address": _address(14)}], 15),
        # 15 self-transfers, each from its own address: none
        ([{"cp_customer": "c1", "address": _address(n)} for n in range(15)], 0),
    ],
)
def test_counterparty_identity(customer, counterparties, distinct):
    c = customer("c1", tier=3)

    raised = _deposits(c, counterparties)

    assert raised == [set()] * 14 + [{"fan_in_7d"} if distinct >= 15 else set()]
    assert len(c.state.counterparties_in) == distinct


def test_internal_counterparties_are_kept_under_the_customer_key(customer):
    c = customer("c1", tier=3)

    _deposits(c, [{"cp_customer": "k1", "address": _address(1)}, {"cp_customer": "k1"},
                  {"cp_customer": "c1", "address": _address(2)}, {"address": _address(3)}])

    assert c.state.counterparties_in == {
        customer_key("k1"): [int(when(0 * H).timestamp()), int(when(10 * H).timestamp()), 2],
        counterparty_key(_address(3)): [int(when(30 * H).timestamp())] * 2 + [1]}
    assert customer_key("k1") != counterparty_key("k1")


@pytest.mark.parametrize(("cp_customer", "fires"), [("c1", False), ("k9", True)])
def test_self_withdrawals_are_not_receivers(customer, cp_customer, fires):
    c = customer("c1", tier=3)
    fan(c, "out", spaced(14, 10 * H))

    raised = send(c, 140 * H, "out", address=_address(99), cp_customer=cp_customer)

    assert raised == ({"fan_out_7d"} if fires else set())


# --- deposits_consolidated: over 7d, >= 10 deposits (the largest <= 25% of them, >= 3,000 USD);
# <= 3 withdrawals taking >= 70% of them, their mean >= 5 x the mean deposit ---------------


def consolidate(c: Customer, deposits: list[str], withdrawals: list[str]) -> list[set[str]]:
    """Deposits 4h apart from T0, then the withdrawals 1h apart: each step's rule ids."""
    steps = [(n * 4 * H, "in", usd) for n, usd in enumerate(deposits)]
    start = len(deposits) * 4 * H
    steps += [(start + n * H, "out", usd) for n, usd in enumerate(withdrawals)]
    return [send(c, offset, direction, usd) for offset, direction, usd in steps]


@pytest.mark.parametrize(
    ("deposits", "withdrawals", "fires"),
    [
        # every condition at its threshold: 10 deposits, 3,000 USD, 70% withdrawn
        (["300.00"] * 10, ["2100.00"], True),
        (["333.34"] * 9, ["2100.00"], False),  # 9 deposits (3,000.06 USD)
        (["300.00"] * 9 + ["299.99"], ["2100.00"], False),  # 2,999.99 USD
        (["300.00"] * 10, ["2099.99"], False),  # 69.9997% withdrawn
        # the largest deposit exactly 25% of them, or 1 cent more
        (["300.00"] * 9 + ["900.00"], ["2600.00"], True),
        (["300.00"] * 9 + ["900.01"], ["2600.00"], False),
        # one big deposit and small ones
        (["30.00"] * 9 + ["3000.00"], ["3000.00"], False),
        # 3 withdrawals (the third reaches 70%), or the same total in 4
        (["100.00"] * 30, ["700.00"] * 3, True),
        (["100.00"] * 30, ["525.00"] * 4, False),
        # mean withdrawal exactly 5 x the mean deposit (300), or half a cent less
        (["300.00"] * 10, ["1500.00", "1500.00"], True),
        (["300.00"] * 10, ["1500.00", "1499.99"], False),
        (["300.00"] * 10, ["1499.99", "1500.00"], False),
    ],
)
def test_deposits_consolidated_thresholds(customer, deposits, withdrawals, fires):
    c = customer(tier=3)

    raised = consolidate(c, deposits, withdrawals)

    steps = len(deposits) + len(withdrawals)
    assert raised == [set()] * (steps - 1) + [{"deposits_consolidated"} if fires else set()]


def test_deposits_consolidated_evidence(customer):
    c = customer(tier=3)

    raised = consolidate(c, ["300.00"] * 19 + ["600.00"], ["2000.00", "2450.00"])

    assert raised[-2:] == [set(), {"deposits_consolidated"}]
    (alert,) = c.alerts
    assert (alert.observed_value, alert.threshold) == (Decimal("7.06"), 5)
    assert alert.measure == "ratio_mean_withdrawal_to_mean_deposit_7d"
    assert alert.window == "7d"
    assert alert.severity == "high"
    assert alert.evidence.aggregates == {
        "count_in_7d": 20, "usd_in_7d": Decimal("6300.00"), "mean_in_usd_7d": Decimal("315.00"),
        "max_in_usd_7d": Decimal("600.00"), "count_out_7d": 2,
        "usd_out_7d": Decimal("4450.00"), "mean_out_usd_7d": Decimal("2225.00"),
        "pct_withdrawn_7d": Decimal("70.6")}
    assert alert.summary == (
        "20 deposits of 6300.00 USD in 7d (mean 315.00, largest 600.00), then 2 withdrawal(s) "
        "of 4450.00 USD (70.6%, mean 2225.00: 7.06 x the mean deposit)")


@pytest.mark.parametrize(("first_at", "fires"), [(D, True), (D - S, False)])
def test_deposits_consolidated_window_is_7_daily_buckets(customer, first_at, fires):
    """A withdrawal on day 7 sees the deposits from day 1 00:00 on (7 daily buckets)."""
    c = customer(tier=3)
    send(c, first_at, "in", "300.00")
    for n in range(9):
        send(c, 2 * D + n * 5 * H, "in", "300.00")

    raised = send(c, 7 * D + 12 * H, "out", "2100.00")

    assert raised == ({"deposits_consolidated"} if fires else set())


def test_deposits_consolidated_only_on_a_withdrawal(customer, customised):
    """Cooldown 0: a deposit after the withdrawal does not alert; the next withdrawal does."""
    c = customer(tier=3, rules=customised(
        {"rules": {"deposits_consolidated": {"cooldown_s": 0}}}))

    raised = consolidate(c, ["300.00"] * 10, ["2400.00"])
    # after the 1 USD deposit every condition holds (3,001 in, 80% out): it is not checked
    raised += [send(c, 50 * H, "in", "1.00"), send(c, 51 * H, "out", "1000.00")]

    assert raised == [set()] * 10 + [{"deposits_consolidated"}, set(),
                                     {"deposits_consolidated"}]
