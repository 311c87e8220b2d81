"""``amlstream intel publish | show | remove`` with the topic faked, and the feed's handling of
each message (``IntelFeed.accept``): what is published, rejected, counted."""

import orjson
import pytest

from agents import broker_wait, intel_feed, metrics
from agents.cli import main
from agents.intel_feed import IntelFeed
from agents.settings import Settings
from streams.intel import IntelIndex, Listing

ADDRESS = "0x5A5a5a5a5a5A5a5a5A5a5a5a5a5a5A5a5a5a5a5B"
CANONICAL = ADDRESS.lower()
BASE58 = "1BoatSLRHtKNngkdXEeobR76b53LETtpyT"
CSV_HEADER = "list,address,chain,entity,category,risk_score,listed_at,source,reference\n"


class FakeTopic:
    """What ``intel_feed.publish`` would have sent, and what ``read_all`` returns."""

    def __init__(self) -> None:
        self.records: list[tuple[bytes | None, bytes | None]] = []

    async def publish(self, settings: Settings, records) -> int:
        records = list(records)
        self.records.extend(records)
        return len(records)

    async def read_all(self, settings: Settings):
        return list(self.records)


@pytest.fixture
def topic(monkeypatch) -> FakeTopic:
    monkeypatch.setattr(broker_wait, "reach", lambda bootstrap: None)  # the broker is "up"
    fake = FakeTopic()
    monkeypatch.setattr(intel_feed, "publish", fake.publish)
    monkeypatch.setattr(intel_feed, "read_all", fake.read_all)
    return fake


def _published(topic: FakeTopic) -> list[tuple[str, dict]]:
    return [(key.decode(), orjson.loads(value)) for key, value in topic.records]


def test_publish_a_csv_file_publishes_the_valid_rows_and_names_the_others(tmp_path, topic,
                                                                          capsys):
    path = tmp_path / "intel.csv"
    path.write_text(
        CSV_HEADER
        + f"sanctions,{ADDRESS},ETH,GARANTEX,sanctioned,,2026-11-20T00:00:00Z,OFAC SDN,uid 1\n"
        + f"chain_risk,{BASE58},BTC,,darknet market,88,2026-11-20T00:00:00+00:00,provider,\n"
        + f"chain_risk,{ADDRESS},ETH,,,,2026-11-20T00:00:00Z,provider,\n"  # line 4: no score
        + f"mixer,{ADDRESS},ETH,Sinbad,,,2026-11-20,provider,\n"  # line 5: no time zone
        + f"blocked,{ADDRESS},ETH,,,,2026-11-20T00:00:00Z,,\n")  # line 6

    assert main(["intel", "publish", str(path)]) == 1

    assert _published(topic) == [
        (f"sanctions:{CANONICAL}", {
            "schema_version": 1, "list": "sanctions", "address": ADDRESS, "chain": "ETH",
            "entity": "GARANTEX", "category": "sanctioned", "listed_at": "2026-11-20T00:00:00Z",
            "source": "OFAC SDN", "reference": "uid 1"}),
        (f"chain_risk:{BASE58}", {
            "schema_version": 1, "list": "chain_risk", "address": BASE58, "chain": "BTC",
            "category": "darknet market", "risk_score": 88,
            "listed_at": "2026-11-20T00:00:00Z", "source": "provider"}),
    ]
    out, err = capsys.readouterr()
    assert "published 2 entries to address-intel, rejected 3" in out
    rejected = err.splitlines()
    assert [line.split(":")[0] for line in rejected] == [
        "rejected line 4", "rejected line 5", "rejected line 6"]
    assert "needs a risk_score" in rejected[0]
    assert "listed_at" in rejected[1]
    assert "list" in rejected[2]


def test_publish_a_jsonl_file(tmp_path, topic, capsys):
    path = tmp_path / "intel.jsonl"
    good = {"list": "service", "address": f" {BASE58} ", "listed_at": "2026-11-20T00:00:00Z",
            "entity": "Exchange X"}
    path.write_bytes(orjson.dumps(good) + b"\n\n{not json\n"
                     + orjson.dumps({**good, "risk_score": "10"}) + b"\n")

    assert main(["intel", "publish", str(path)]) == 1

    assert _published(topic) == [(f"service:{BASE58}", {
        "schema_version": 1, "list": "service", "address": BASE58, "entity": "Exchange X",
        "listed_at": "2026-11-20T00:00:00Z"})]
    out, err = capsys.readouterr()
    assert "published 1 entries" in out and "rejected 2" in out
    assert err.startswith("rejected line 3: not JSON")
    assert "rejected line 4: risk_score" in err


def test_publish_a_file_all_valid_succeeds(tmp_path, topic, capsys):
    path = tmp_path / "intel.txt"  # no telling suffix: the content says CSV
    path.write_text(CSV_HEADER + f"mixer,{ADDRESS},ETH,Sinbad,,,2026-11-20T00:00:00Z,,\n")

    assert main(["intel", "publish", str(path)]) == 0
    assert [key for key, _ in _published(topic)] == [f"mixer:{CANONICAL}"]


def test_publish_a_missing_file_fails(tmp_path, topic, capsys):
    assert main(["intel", "publish", str(tmp_path / "none.csv")]) == 1
    assert topic.records == []
    assert "cannot read" in capsys.readouterr().err


def test_remove_publishes_a_tombstone_under_the_canonical_key(topic, capsys):
    assert main(["intel", "remove", "sanctions", ADDRESS]) == 0

    assert topic.records == [(f"sanctions:{CANONICAL}".encode(), None)]
    assert f"removed sanctions:{CANONICAL}" in capsys.readouterr().out


def test_remove_names_a_known_list_only(topic, capsys):
    assert main(["intel", "remove", "blocked", ADDRESS]) == 2
    assert topic.records == []
    err = capsys.readouterr().err
    assert "'blocked' is not one of 'sanctions', 'mixer', 'chain_risk', 'service'" in err


def _value(list_name: str, address: str, **fields: object) -> bytes:
    return orjson.dumps({"list": list_name, "address": address,
                         "listed_at": "2026-11-20T00:00:00Z", **fields})


def test_show_prints_the_entries_in_force(topic, capsys):
    topic.records = [
        (f"sanctions:{CANONICAL}".encode(), _value("sanctions", ADDRESS, entity="old")),
        (f"mixer:{CANONICAL}".encode(), _value("mixer", ADDRESS)),
        (f"service:{BASE58}".encode(), _value("service", BASE58)),
        (b"junk", b"{}"),
        (f"sanctions:{CANONICAL}".encode(), _value("sanctions", ADDRESS, entity="new")),
        (f"mixer:{CANONICAL}".encode(), None),  # removed
    ]

    assert main(["intel", "show"]) == 0

    out, err = capsys.readouterr()
    assert [orjson.loads(line) for line in out.splitlines()] == [
        orjson.loads(_value("sanctions", ADDRESS, entity="new")),
        orjson.loads(_value("service", BASE58))]
    assert "2 of 2 entries in force" in err and "1 invalid" in err

    assert main(["intel", "show", "--address", ADDRESS.upper().replace("0X", "0x")]) == 0
    out, err = capsys.readouterr()
    assert [orjson.loads(line)["list"] for line in out.splitlines()] == ["sanctions"]
    assert "1 of 2 entries" in err


def _rejected(reason: str) -> float:
    return metrics.INTEL_REJECTED.labels(reason)._value.get()


def test_the_feed_applies_valid_entries_and_counts_the_others():
    feed = IntelFeed(Settings(), IntelIndex(max_entries=2))
    before = {reason: _rejected(reason) for reason in ("invalid_key", "invalid_value",
                                                       "index_full")}
    key = f"mixer:{CANONICAL}".encode()

    listed = feed.accept(key, _value("mixer", ADDRESS, entity="Sinbad"))
    assert isinstance(listed, Listing) and listed.entity == "Sinbad"
    assert feed.accept(key, _value("mixer", ADDRESS, entity="Sinbad")) is None  # known
    assert feed.accept(key, _value("mixer", ADDRESS, entity="Sinbad 2")) is not None
    assert feed.accept(b"nolist", _value("mixer", ADDRESS)) is None
    assert feed.accept(key, b"[]") is None
    assert feed.accept(f"service:{BASE58}".encode(), _value("service", BASE58)) is not None
    assert feed.accept(f"sanctions:{BASE58}".encode(), _value("sanctions", BASE58)) is None
    assert metrics.INTEL_ENTRIES._value.get() == 2
    assert feed.accept(key, None) is None  # removed: no listing to hand on
    assert feed.index.match(ADDRESS) == []
    assert metrics.INTEL_ENTRIES._value.get() == 1

    assert {reason: _rejected(reason) - count for reason, count in before.items()} == {
        "invalid_key": 1, "invalid_value": 1, "index_full": 1}
