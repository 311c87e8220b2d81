"""Address intelligence: an entry of the topic read (``parse_listing``), the index in force
(``IntelIndex``), and the lists an address is on (``listed_lists``)."""

from dataclasses import replace
from datetime import UTC, datetime

import orjson
import pytest

from streams.intel import IntelError, IntelIndex, Listing, listed_lists, parse_listing

LAZARUS_ETH = "0x098B716B8Aaf21512996dC57EB0615e2383E2f96"
"""On the rule file's OFAC SDN list (LAZARUS GROUP)."""
TORNADO_ETH = "0x47CE0C6eD5B0Ce3d3A51fdb1C52DC66a7c3c2936"
"""On the rule file's mixer list (Tornado Cash)."""
FRESH_ETH = "0x5A5a5a5a5a5A5a5a5A5a5a5a5a5a5A5a5a5a5a5B"
"""On no list of the rule file."""
BASE58 = "1BoatSLRHtKNngkdXEeobR76b53LETtpyT"
"""A case-sensitive address: its canonical form is itself."""
LISTED_AT = datetime(2026, 11, 20, tzinfo=UTC)


def entry(**changes: object) -> dict[str, object]:
    """A valid ``sanctions`` entry of the topic; a change to None removes the field."""
    value: dict[str, object] = {
        "schema_version": 1, "list": "sanctions", "address": FRESH_ETH, "chain": "ETH",
        "entity": "LAZARUS GROUP", "category": "sanctioned", "risk_score": 100,
        "listed_at": "2026-11-20T00:00:00Z", "source": "OFAC SDN", "reference": "uid 12345"}
    value.update(changes)
    return {name: v for name, v in value.items() if v is not None}


def key_of(list_name: str, address: str) -> bytes:
    return f"{list_name}:{address}".encode()


def listing(list_name: str = "sanctions", address: str = FRESH_ETH, **fields: object) -> Listing:
    return Listing(list=list_name, address=address.lower() if address.startswith("0x")
                   else address, listed_at_s=int(LISTED_AT.timestamp()), **fields)  # type: ignore[arg-type]


def test_an_entry_is_read_with_its_address_in_canonical_form():
    key, read = parse_listing(key_of("sanctions", FRESH_ETH.lower()), orjson.dumps(entry()))

    assert key == f"sanctions:{FRESH_ETH.lower()}"
    assert read == Listing(list="sanctions", address=FRESH_ETH.lower(),
                           listed_at_s=int(LISTED_AT.timestamp()), chain="ETH",
                           entity="LAZARUS GROUP", category="sanctioned", risk_score=100,
                           source="OFAC SDN", reference="uid 12345")
    assert read.key == key


def test_only_list_address_and_listed_at_are_required_and_unknown_fields_are_ignored():
    value = {"list": "service", "address": BASE58, "listed_at": "2026-11-20T01:00:00+01:00",
             "provider_note": "added later"}

    key, read = parse_listing(key_of("service", BASE58), orjson.dumps(value))

    assert key == f"service:{BASE58}"
    assert read == Listing(list="service", address=BASE58, listed_at_s=int(LISTED_AT.timestamp()))


def test_a_null_value_is_a_tombstone():
    assert parse_listing(key_of("mixer", BASE58), None) == (f"mixer:{BASE58}", None)


@pytest.mark.parametrize(("key", "value", "reason", "says"), [
    (None, entry(), "invalid_key", "without a key"),
    (b"\xffsanctions:0xab", entry(), "invalid_key", "not UTF-8"),
    (FRESH_ETH.lower().encode(), entry(), "invalid_key", "<list>:<address>"),
    (key_of("blocked", FRESH_ETH.lower()), entry(), "invalid_key", "among sanctions"),
    (key_of("sanctions", ""), entry(), "invalid_key", "canonical"),
    (key_of("sanctions", FRESH_ETH), entry(), "invalid_key", "canonical"),  # checksum case
    (key_of("sanctions", " " + FRESH_ETH.lower()), entry(), "invalid_key", "canonical"),
    (key_of("sanctions", FRESH_ETH.lower()), b"not json", "invalid_value", "JSON"),
    (key_of("sanctions", FRESH_ETH.lower()), entry(listed_at=1795132800), "invalid_value",
     "ISO-8601"),
    (key_of("sanctions", FRESH_ETH.lower()), entry(listed_at="2026-11-20T00:00:00"),
     "invalid_value", "timezone"),
    (key_of("sanctions", FRESH_ETH.lower()), entry(listed_at=None), "invalid_value",
     "listed_at"),
    (key_of("sanctions", FRESH_ETH.lower()), entry(risk_score="100"), "invalid_value",
     "risk_score"),
    (key_of("sanctions", FRESH_ETH.lower()), entry(risk_score=True), "invalid_value",
     "risk_score"),
    (key_of("sanctions", FRESH_ETH.lower()), entry(risk_score=101), "invalid_value",
     "risk_score"),
    (key_of("sanctions", FRESH_ETH.lower()), entry(risk_score=-1), "invalid_value",
     "risk_score"),
    (key_of("chain_risk", FRESH_ETH.lower()), entry(list="chain_risk", risk_score=None),
     "invalid_value", "needs a risk_score"),
    (key_of("sanctions", FRESH_ETH.lower()), entry(schema_version=2), "invalid_value",
     "schema_version"),
    (key_of("sanctions", FRESH_ETH.lower()), entry(address=""), "invalid_value", "address"),
    (key_of("sanctions", FRESH_ETH.lower()), entry(entity=""), "invalid_value", "entity"),
    (key_of("sanctions", TORNADO_ETH.lower()), entry(), "key_mismatch", "holds a listing of"),
    (key_of("mixer", FRESH_ETH.lower()), entry(), "key_mismatch", "holds a listing of"),
])
def test_an_unusable_entry_is_refused_with_its_reason(key, value, reason, says):
    raw = value if isinstance(value, bytes) else orjson.dumps(value)

    with pytest.raises(IntelError) as refused:
        parse_listing(key, raw)

    assert refused.value.reason == reason
    assert says in str(refused.value)


def test_a_long_junk_key_is_shown_truncated():
    with pytest.raises(IntelError) as refused:
        parse_listing(b"x" * 10_000, None)

    assert len(str(refused.value)) < 300


def test_the_index_says_whether_an_entry_is_new_changed_or_removed():
    index = IntelIndex()
    sanctioned = listing(entity="LAZARUS GROUP")

    assert index.apply(sanctioned.key, sanctioned) is True
    assert index.apply(sanctioned.key, replace(sanctioned)) is False  # the same, read again
    renamed = replace(sanctioned, entity="APT38")
    assert index.apply(renamed.key, renamed) is True
    assert index.match(FRESH_ETH) == [renamed]
    assert len(index) == 1
    assert index.apply(renamed.key, None) is True
    assert index.apply(renamed.key, None) is False  # nothing left to remove
    assert index.match(FRESH_ETH) == []
    assert len(index) == 0


def test_the_index_matches_any_spelling_of_a_case_insensitive_address_only():
    index = IntelIndex()
    for entry_ in (listing(address=FRESH_ETH), listing(address=BASE58)):
        index.apply(entry_.key, entry_)

    assert [m.address for m in index.match(FRESH_ETH.upper().replace("0X", "0x"))] == [
        FRESH_ETH.lower()]
    assert [m.address for m in index.match(BASE58)] == [BASE58]
    assert index.match(BASE58.lower()) == []
    assert index.match(None) == index.match("") == []
    assert index.get(FRESH_ETH, "sanctions") == listing(address=FRESH_ETH)
    assert index.get(FRESH_ETH, "mixer") is None


def test_an_address_on_several_lists_matches_in_list_order_whatever_the_arrival_order():
    index = IntelIndex()
    on_lists = [listing("service"), listing("chain_risk", risk_score=80), listing("sanctions")]
    for entry_ in on_lists:
        index.apply(entry_.key, entry_)

    assert [m.list for m in index.match(FRESH_ETH)] == ["sanctions", "chain_risk", "service"]
    assert len(index) == 3
    index.apply(on_lists[1].key, None)
    assert [m.list for m in index.match(FRESH_ETH)] == ["sanctions", "service"]
    index.apply(on_lists[2].key, None)  # sanctions: service alone is left
    assert index.match(FRESH_ETH) == [on_lists[0]]
    assert index.get(FRESH_ETH, "service") == on_lists[0]
    assert index.get(FRESH_ETH, "sanctions") is None
    assert len(index) == 1


def test_a_full_index_refuses_new_entries_but_replaces_and_removes():
    index = IntelIndex(max_entries=2)
    first, second, third = (listing(address=f"0x{n:040x}") for n in (1, 2, 3))
    index.apply(first.key, first)
    index.apply(second.key, second)

    with pytest.raises(IntelError) as refused:
        index.apply(third.key, third)

    assert refused.value.reason == "index_full"
    assert index.refused == 1
    assert index.match(third.address) == []
    changed = replace(first, source="provider")
    assert index.apply(changed.key, changed) is True  # not new: still fits
    assert index.apply(second.key, None) is True
    assert index.apply(third.key, third) is True
    assert len(index) == 2 and index.refused == 1


def test_a_listing_put_under_another_key_is_refused():
    with pytest.raises(IntelError) as refused:
        IntelIndex().apply(f"mixer:{FRESH_ETH.lower()}", listing("sanctions"))

    assert refused.value.reason == "key_mismatch"


def _with(rules, *listings: Listing):
    index = IntelIndex()
    for entry_ in listings:
        index.apply(entry_.key, entry_)
    return replace(rules, intel=index)


@pytest.mark.parametrize(("address", "listings", "lists"), [
    (None, [], ()),
    ("", [listing()], ()),
    (FRESH_ETH, [], ()),
    (LAZARUS_ETH.lower(), [], ("sanctions",)),  # the rule file's list
    (TORNADO_ETH, [], ("mixer",)),
    (FRESH_ETH, [listing()], ("sanctions",)),  # the index
    (FRESH_ETH, [listing("mixer")], ("mixer",)),
    (FRESH_ETH, [listing("service")], ("service",)),
    (FRESH_ETH, [listing("chain_risk", risk_score=74)], ()),  # below the band (75)
    (FRESH_ETH, [listing("chain_risk", risk_score=75)], ("chain_risk",)),
    (FRESH_ETH, [listing("chain_risk", risk_score=100), listing("service")],
     ("chain_risk", "service")),
    (LAZARUS_ETH, [listing(address=LAZARUS_ETH), listing("mixer", address=LAZARUS_ETH)],
     ("mixer", "sanctions")),  # on both sources: once, sorted
    (BASE58.lower(), [listing(address=BASE58)], ()),
])
def test_listed_lists_combines_the_rule_file_and_the_index(rules, address, listings, lists):
    assert listed_lists(address, _with(rules, *listings)) == lists


@pytest.mark.parametrize(("score", "lists"), [(49, ()), (50, ("chain_risk",))])
def test_listed_lists_takes_the_band_of_the_rule_set(customised, score, lists):
    rules = _with(customised({"network": {"chain_risk_high_from": 50}}),
                  listing("chain_risk", risk_score=score))

    assert listed_lists(FRESH_ETH, rules) == lists
