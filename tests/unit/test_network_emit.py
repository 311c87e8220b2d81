"""S1's side of the network stages: which legs an applied transfer sends, their order keys,
the partition's promise and clock (``streams.network.emit``)."""

from datetime import UTC, datetime

import pytest

from streams.intake import Transfer
from streams.network.emit import CP_LEGS, FLOWS, Emitter, PartitionClock, note_network_activity
from streams.network.records import RANK_LEG
from streams.partitioning import partition_of
from streams.state import CustomerState

T0 = 1_790_000_000
MIXER = "0xd90e2f925DA726b50C4Ed8D0Fb90Ad053324F31b"  # on config/lists/mixer_addresses.csv


def transfer(at_s: int = T0, out: bool = True, address: str | None = "0xabc", cp_type: str =
             "unhosted_wallet", other: str | None = None, customer: str = "c-1") -> Transfer:
    return Transfer(event_id=f"e-{at_s}", customer_id=customer,
                    occurred_at=datetime.fromtimestamp(at_s, UTC), at_s=at_s, out=out,
                    usd_cents=50_000, asset="USDT", channel="crypto", cp_address=address,
                    cp_type=cp_type, cp_country=None, cp_customer_id=other)


def emit(emitter: Emitter, t: Transfer, rules, state: CustomerState | None = None,
         offset: int = 0):
    state = state or CustomerState()
    note_network_activity(state, t, rules)
    emitter.clocks.setdefault(0, PartitionClock())
    return emitter.legs(t, state, rules, 0, offset)


def test_a_transfer_to_an_unhosted_address_goes_to_the_counterparty_stage_only(default_rules):
    emitter = Emitter(partitions=4, lateness_s=60)
    [leg] = emit(emitter, transfer(), default_rules, offset=7)

    assert (leg.topic, leg.key) == (CP_LEGS, b"a:0xabc")
    assert leg.partition == partition_of(b"a:0xabc", 4)
    assert leg.envelope.order_key == (T0, RANK_LEG, "c0", (7, 0))
    assert leg.envelope.body.cp_key == "a:0xabc" and leg.envelope.body.listed == ()


@pytest.mark.parametrize("cp_type", ["exchange", "merchant", "bank"])
def test_service_counterparties_go_nowhere(default_rules, cp_type):
    assert emit(Emitter(4, 60), transfer(cp_type=cp_type), default_rules) == []


def test_an_internal_transfer_goes_to_both_stages_and_makes_the_customer_active(default_rules):
    state = CustomerState()
    legs = emit(Emitter(4, 60), transfer(other="c-2", address=None, cp_type="other"),
                default_rules, state, offset=3)

    assert [(leg.topic, leg.key) for leg in legs] == [(CP_LEGS, b"c:c-2"), (FLOWS, b"c-1")]
    assert [leg.envelope.seq for leg in legs] == [(3, 0), (3, 1)]
    assert state.network_active_until_s == T0 + default_rules.config.network.horizon_s


def test_an_active_customers_later_transfers_go_to_the_flow_stage(default_rules):
    state = CustomerState(network_active_until_s=T0 + 10)
    emitter = Emitter(4, 60)
    [flow] = emit(emitter, transfer(at_s=T0 + 10, cp_type="exchange"), default_rules, state)
    assert flow.topic == FLOWS
    assert emit(emitter, transfer(at_s=T0 + 11, cp_type="exchange"), default_rules, state) == []


def test_a_transfer_with_oneself_is_no_counterparty(default_rules):
    state = CustomerState()
    assert emit(Emitter(4, 60), transfer(other="c-1", address=None), default_rules, state) == []
    assert state.network_active_until_s == 0


def test_a_mixer_deposit_starts_provenance(default_rules):
    state = CustomerState()
    legs = emit(Emitter(4, 60), transfer(out=False, address=MIXER, cp_type="other"),
                default_rules, state)
    assert [leg.topic for leg in legs] == [CP_LEGS, FLOWS]
    assert legs[1].envelope.body.listed == ("mixer",)


@pytest.mark.parametrize(("at_s", "order_s", "late"), [
    (T0 - 60, T0 - 60, 0),   # at the promise: on time
    (T0 - 61, T0 - 60, 1),   # one second older: re-timed to the promise, counted
    (T0 + 5, T0 + 5, 0),
])
def test_a_leg_older_than_the_promise_is_re_timed_to_it(default_rules, at_s, order_s, late):
    emitter = Emitter(4, lateness_s=60)
    emit(emitter, transfer(at_s=T0), default_rules)
    assert emitter.promise(0) == T0 - 60

    [leg] = emit(emitter, transfer(at_s=at_s), default_rules, offset=1)

    assert leg.envelope.order_s == order_s and leg.envelope.body.at_s == at_s
    assert emitter.source_late == late
    assert emitter.clocks[0].high_s == max(T0, at_s)


def test_the_flows_floor_is_the_lowest_order_sent_there(default_rules):
    emitter = Emitter(4, 60)
    state = CustomerState(network_active_until_s=T0 + 1000)
    emit(emitter, transfer(at_s=T0 + 100), default_rules, state)
    emit(emitter, transfer(at_s=T0 + 50), default_rules, state, offset=1)
    assert emitter.clocks[0].flows_floor_s == T0 + 50
    clock = emitter.clocks[0]
    assert PartitionClock.from_bytes(clock.to_bytes()) == clock


def test_network_off_sends_nothing_but_the_clock_moves(default_rules):
    from dataclasses import replace
    config = default_rules.config.model_copy(update={
        "network": default_rules.config.network.model_copy(update={"enabled": False})})
    rules = replace(default_rules, config=config)
    emitter = Emitter(4, 60)
    assert emit(emitter, transfer(other="c-2", address=None), rules) == []
    assert emitter.clocks[0].high_s == T0


def test_unlisted_deposits_of_an_active_customer_ride_on_its_next_flows_leg(default_rules):
    state = CustomerState(network_active_until_s=T0 + 1000)
    emitter = Emitter(4, 60)
    deposit = transfer(at_s=T0 + 1, out=False, cp_type="exchange")
    assert emit(emitter, deposit, default_rules, state) == []
    assert emit(emitter, transfer(at_s=T0 + 2, out=False, cp_type="exchange"), default_rules,
                state, offset=1) == []
    assert state.network_untraced_cents == 100_000

    [flow] = emit(emitter, transfer(at_s=T0 + 3, cp_type="exchange"), default_rules, state,
                  offset=2)

    assert flow.topic == FLOWS and flow.envelope.body.untraced_cents == 100_000
    assert state.network_untraced_cents == 0
    assert CustomerState.from_bytes(state.to_bytes()).network_untraced_cents == 0
