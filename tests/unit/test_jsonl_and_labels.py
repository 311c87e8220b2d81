"""The JSON Lines event reader (bad lines yielded for the core to reject) and the labels CSV."""

from pathlib import Path

import orjson
import pytest

from streams.backtest import run_backtest
from streams.jsonl import read_events
from streams.labels import LabelError, read_labels
from tests.unit.conftest import transaction_payload

TX = transaction_payload(customer_id="c1")


def write_lines(tmp_path: Path, *lines: bytes) -> Path:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_envelopes_bare_events_and_bad_lines(tmp_path, default_rules):
    envelope = orjson.dumps({"topic": "transactions", "event": TX})
    keyed = orjson.dumps({"topic": "transactions", "key": "other", "event": TX})
    bare = orjson.dumps({"topic": "transactions", **TX})
    path = write_lines(tmp_path, envelope, b"", b"  ", keyed, bare, b"{not json", b"[1, 2]",
                       orjson.dumps({"topic": "payments", "event": TX}),
                       orjson.dumps({"topic": "onboarding", "event": "x"}))
    read = list(read_events(path))
    assert [(line, topic, key) for line, topic, key, _ in read] == [
        (1, "transactions", b"c1"), (4, "transactions", b"other"), (5, "transactions", b"c1"),
        (6, "transactions", None), (7, "transactions", None), (8, "transactions", None),
        (9, "transactions", None)]
    assert orjson.loads(read[0][3]) == TX
    assert read[2][3] == bare and read[3][3] == b"{not json"
    result = run_backtest(((t, k, v) for _, t, k, v in read), default_rules)
    assert result.events_applied == 2  # the envelope and the bare event (same event id twice)
    assert [(position, rejected.kind.value) for position, rejected in result.rejected] == [
        (1, "key_mismatch"), (3, "invalid_json"), (4, "schema_violation"),
        (5, "schema_violation"), (6, "schema_violation")]


def test_labels_csv(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("customer_id,label,typology\nc1,suspicious,fan_in\nc2,normal,\n"
                    "c3,1,\nc4,FALSE\n\nc5,Yes,cycle\n", encoding="utf-8")
    assert read_labels(path) == {"c1": ("suspicious", "fan_in"), "c2": ("normal", None),
                                 "c3": ("suspicious", None), "c4": ("normal", None),
                                 "c5": ("suspicious", "cycle")}
    path.write_text("customer_id,label\nc1,0\n", encoding="utf-8")
    assert read_labels(path) == {"c1": ("normal", None)}


@pytest.mark.parametrize(("text", "says"), [
    ("", "the header must be customer_id,label"),
    ("customer,label\nc1,1\n", "the header must be customer_id,label"),
    ("customer_id,label\nc1,maybe\n", "labels.csv line 2: expected customer_id and a label"),
    ("customer_id,label\nc1\n", "labels.csv line 2: expected customer_id and a label"),
    ("customer_id,label\nc1,1\nc1,0\n", "labels.csv line 3: customer 'c1' is labelled twice"),
])
def test_bad_labels_name_file_and_line(tmp_path, text, says):
    path = tmp_path / "labels.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(LabelError, match=says):
        read_labels(path)


def test_unreadable_labels(tmp_path):
    with pytest.raises(LabelError, match=r"nowhere\.csv: cannot read labels"):
        read_labels(tmp_path / "nowhere.csv")
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(LabelError, match=r"bin\.csv: cannot read labels"):
        read_labels(tmp_path / "bin.csv")
