"""The AMLSim converter: exact events from a tiny hand-made sample, their order, the labels."""

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from streams.amlsim import AmlsimError, AmlsimOptions, events, read_sample
from streams.backtest import run_backtest
from streams.state import customer_key

NODES = """nodeid,isFraud,init_balance,fraudStep
0,0,100.00,-1
1,1,50.00,3
2,0,10.00,-1
"""
TRANSFERS = """sourceNodeId,targetNodeId,value,time
1,2,5.5,2
0,1,100,1
1,2,3.25,2
"""
START = datetime(2026, 1, 1, tzinfo=UTC)


def sample_dir(tmp_path: Path, nodes: str = NODES, transfers: str = TRANSFERS) -> Path:
    (tmp_path / "nodes.csv").write_text(nodes, encoding="utf-8")
    (tmp_path / "transactions.csv").write_text(transfers, encoding="utf-8")
    return tmp_path


def decoded(tmp_path: Path, **options: object) -> list[tuple[str, bytes, dict[str, object]]]:
    sample = read_sample(sample_dir(tmp_path))
    return [(topic, key, orjson.loads(raw))
            for topic, key, raw in events(sample, AmlsimOptions(**options))]  # type: ignore[arg-type]


def test_onboarding_first_then_transfers_in_event_time_order(tmp_path):
    produced = decoded(tmp_path)
    assert [(topic, key, e["event_id"]) for topic, key, e in produced] == [
        ("onboarding", b"amlsim-0", "amlsim-0-registered"),
        ("onboarding", b"amlsim-0", "amlsim-0-kyc-verified"),
        ("onboarding", b"amlsim-1", "amlsim-1-registered"),
        ("onboarding", b"amlsim-1", "amlsim-1-kyc-verified"),
        ("onboarding", b"amlsim-2", "amlsim-2-registered"),
        ("onboarding", b"amlsim-2", "amlsim-2-kyc-verified"),
        ("transactions", b"amlsim-0", "amlsim-tx3-out"),   # step 1
        ("transactions", b"amlsim-1", "amlsim-tx3-in"),
        ("transactions", b"amlsim-1", "amlsim-tx2-out"),   # step 2, first of two rows
        ("transactions", b"amlsim-2", "amlsim-tx2-in"),
        ("transactions", b"amlsim-1", "amlsim-tx4-out"),   # step 2, second: half a step later
        ("transactions", b"amlsim-2", "amlsim-tx4-in"),
    ]
    times = [e["occurred_at"] for _, _, e in produced]
    assert times == ["2026-01-01T00:00:00Z"] * 6 + ["2026-01-02T00:00:00Z"] * 2 + [
        "2026-01-03T00:00:00Z"] * 2 + ["2026-01-03T12:00:00Z"] * 2


def test_exact_events(tmp_path):
    produced = decoded(tmp_path, kyc_tier=2, country="DE")
    assert produced[0][2] == {
        "event_id": "amlsim-0-registered", "customer_id": "amlsim-0",
        "occurred_at": "2026-01-01T00:00:00Z", "type": "registered",
        "country_of_residence": "DE", "nationality": "DE"}
    assert produced[1][2] == {
        "event_id": "amlsim-0-kyc-verified", "customer_id": "amlsim-0",
        "occurred_at": "2026-01-01T00:00:00Z", "type": "kyc_verified", "kyc_tier": 2}
    out, deposit = produced[10][2], produced[11][2]
    assert out == {
        "event_id": "amlsim-tx4-out", "customer_id": "amlsim-1",
        "occurred_at": "2026-01-03T12:00:00Z", "direction": "out", "asset": "USD",
        "amount": "3.25", "amount_usd": "3.25", "channel": "fiat",
        "counterparty": {"address": "amlsim-2", "type": "other", "country": "DE",
                         "customer_id": "amlsim-2"}}
    assert deposit == {**out, "event_id": "amlsim-tx4-in", "customer_id": "amlsim-2",
                       "direction": "in",
                       "counterparty": {"address": "amlsim-1", "type": "other", "country": "DE",
                                        "customer_id": "amlsim-1"}}


def test_step_length_and_start_are_configurable(tmp_path):
    produced = decoded(tmp_path, start=datetime(2026, 5, 1, 8, tzinfo=UTC), step_s=3600)
    assert [e["occurred_at"] for _, _, e in produced[5:]] == [
        "2026-05-01T08:00:00Z", "2026-05-01T09:00:00Z", "2026-05-01T09:00:00Z",
        "2026-05-01T10:00:00Z", "2026-05-01T10:00:00Z", "2026-05-01T10:30:00Z",
        "2026-05-01T10:30:00Z"]


def test_the_same_sample_gives_the_same_bytes(tmp_path):
    sample = read_sample(sample_dir(tmp_path))
    assert list(events(sample, AmlsimOptions())) == list(events(sample, AmlsimOptions()))


def test_every_event_is_accepted_by_the_core(tmp_path, default_rules):
    sample = read_sample(sample_dir(tmp_path))
    result = run_backtest(events(sample, AmlsimOptions()), default_rules)
    assert result.rejected == []
    assert result.events_applied == 12


def test_both_legs_name_the_other_customer(tmp_path, default_rules):
    """Each row is an internal transfer: the withdrawal names the receiver, the deposit the
    sender, as ``counterparty.customer_id``; the core remembers that customer (not the address)
    as the counterparty, and a row from an account to itself as no counterparty at all."""
    transfers = TRANSFERS + "2,2,7,3\n"
    sample = read_sample(sample_dir(tmp_path, transfers=transfers))
    produced = [orjson.loads(raw) for topic, _, raw in events(sample, AmlsimOptions())
                if topic == "transactions"]

    assert [(e["customer_id"], e["direction"], e["counterparty"]["customer_id"])
            for e in produced] == [
        ("amlsim-0", "out", "amlsim-1"), ("amlsim-1", "in", "amlsim-0"),
        ("amlsim-1", "out", "amlsim-2"), ("amlsim-2", "in", "amlsim-1"),
        ("amlsim-1", "out", "amlsim-2"), ("amlsim-2", "in", "amlsim-1"),
        ("amlsim-2", "out", "amlsim-2"), ("amlsim-2", "in", "amlsim-2")]
    states = run_backtest(events(sample, AmlsimOptions()), default_rules).states
    assert states[b"amlsim-2"].counterparties_in == {
        customer_key("amlsim-1"): [1_767_398_400, 1_767_441_600, 2]}
    assert states[b"amlsim-2"].counterparties_out == {}
    assert states[b"amlsim-1"].counterparties_out == {
        customer_key("amlsim-2"): [1_767_398_400, 1_767_441_600, 2]}


def test_labels_and_amounts(tmp_path):
    sample = read_sample(sample_dir(tmp_path))
    assert sample.labels() == {"amlsim-0": ("normal", None), "amlsim-1": ("suspicious", None),
                               "amlsim-2": ("normal", None)}
    assert [t.value_usd for t in sample.transfers] == [Decimal(100), Decimal("5.5"),
                                                       Decimal("3.25")]


def test_a_typology_column_is_read_when_present(tmp_path):
    nodes = "nodeid,isFraud,typology\n0,0,\n1,1,fan_in\n2,1,cycle\n"
    sample = read_sample(sample_dir(tmp_path, nodes=nodes))
    assert sample.labels() == {"amlsim-0": ("normal", None), "amlsim-1": ("suspicious", "fan_in"),
                               "amlsim-2": ("suspicious", "cycle")}


@pytest.mark.parametrize(("nodes", "transfers", "says"), [
    ("id,isFraud\n0,0\n", TRANSFERS, "nodes.csv: missing column(s) nodeid"),
    ("nodeid,isFraud\n0,maybe\n", TRANSFERS, "nodes.csv line 2: expected a nodeid and isFraud"),
    (NODES, "sourceNodeId,targetNodeId,value\n", "transactions.csv: missing column(s) time"),
    (NODES, "sourceNodeId,targetNodeId,value,time\n0,1,1e,1\n",
     "transactions.csv line 2: value must be a decimal number"),
    (NODES, "sourceNodeId,targetNodeId,value,time\n0,1,0,1\n",
     "transactions.csv line 2: value must be positive"),
    (NODES, "sourceNodeId,targetNodeId,value,time\n0,1,NaN,1\n",
     "transactions.csv line 2: value must be positive"),
    (NODES, "sourceNodeId,targetNodeId,value,time\n0,1,5,-1\n",
     "transactions.csv line 2: value must be positive and time not negative"),
    (NODES, "sourceNodeId,targetNodeId,value,time\n0,1,5,1\n0,9,5,1\n",
     "transactions.csv line 3: account '9' is not in nodes.csv"),
])
def test_bad_samples_are_refused_naming_file_and_line(tmp_path, nodes, transfers, says):
    with pytest.raises(AmlsimError, match=says.replace("(", r"\(").replace(")", r"\)")):
        read_sample(sample_dir(tmp_path, nodes=nodes, transfers=transfers))


def test_missing_folder_and_file(tmp_path):
    with pytest.raises(AmlsimError, match="not a directory"):
        read_sample(tmp_path / "nowhere")
    (tmp_path / "nodes.csv").write_text(NODES, encoding="utf-8")
    with pytest.raises(AmlsimError, match=r"transactions\.csv: cannot read"):
        read_sample(tmp_path)
