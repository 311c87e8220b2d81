"""The edge of the core: every dead-letter kind, and USD conversion with the price table."""

from datetime import UTC, datetime

import orjson
import pytest

from schemas.dead_letters import ErrorKind
from streams.intake import Rejected, decode_onboarding, decode_transfer

KEY = b"c1"
REMOVE = None


def _raw(payload, **changes):
    return orjson.dumps(payload(**changes))


@pytest.mark.parametrize(
    ("changes", "kind", "field"),
    [
        ({"amount": 12.5}, ErrorKind.SCHEMA_VIOLATION, "amount"),  # JSON float
        ({"amount_usd": 100.0}, ErrorKind.SCHEMA_VIOLATION, "amount_usd"),
        ({"amount": True}, ErrorKind.SCHEMA_VIOLATION, "amount"),
        ({"amount": "-5"}, ErrorKind.SCHEMA_VIOLATION, "amount"),
        ({"amount": -5}, ErrorKind.SCHEMA_VIOLATION, "amount"),
        ({"amount": "0"}, ErrorKind.SCHEMA_VIOLATION, "amount"),
        ({"amount_usd": "-0.01"}, ErrorKind.SCHEMA_VIOLATION, "amount_usd"),
        ({"amount": "NaN"}, ErrorKind.SCHEMA_VIOLATION, "amount"),
        ({"amount": "nan"}, ErrorKind.SCHEMA_VIOLATION, "amount"),
        ({"amount": "sNaN"}, ErrorKind.SCHEMA_VIOLATION, "amount"),
        ({"amount": "Infinity"}, ErrorKind.SCHEMA_VIOLATION, "amount"),
        ({"amount_usd": "-Infinity"}, ErrorKind.SCHEMA_VIOLATION, "amount_usd"),
        ({"amount": "1e30"}, ErrorKind.SCHEMA_VIOLATION, "amount"),  # absurd
        ({"amount": "1000000000000000.01"}, ErrorKind.SCHEMA_VIOLATION, "amount"),
        ({"amount_usd": "1e16"}, ErrorKind.SCHEMA_VIOLATION, "amount_usd"),
        ({"amount": "12,50"}, ErrorKind.SCHEMA_VIOLATION, "amount"),
        ({"occurred_at": "2026-01-01T10:00:00"}, ErrorKind.SCHEMA_VIOLATION, "occurred_at"),
        ({"occurred_at": "2026-01-01"}, ErrorKind.SCHEMA_VIOLATION, "occurred_at"),
        ({"occurred_at": "yesterday"}, ErrorKind.SCHEMA_VIOLATION, "occurred_at"),
        ({"direction": "sideways"}, ErrorKind.SCHEMA_VIOLATION, "direction"),
        ({"channel": "carrier_pigeon"}, ErrorKind.SCHEMA_VIOLATION, "channel"),
        ({"counterparty": {"type": "casino"}}, ErrorKind.SCHEMA_VIOLATION, "counterparty.type"),
        ({"counterparty": {"country": "IRN"}}, ErrorKind.SCHEMA_VIOLATION,
         "counterparty.country"),
        ({"schema_version": 2}, ErrorKind.SCHEMA_VIOLATION, "schema_version"),
        ({"asset": "US DOLLAR"}, ErrorKind.SCHEMA_VIOLATION, "asset"),
        ({"event_id": ""}, ErrorKind.SCHEMA_VIOLATION, "event_id"),
        ({"event_id": REMOVE}, ErrorKind.SCHEMA_VIOLATION, "event_id"),
        ({"customer_id": REMOVE}, ErrorKind.SCHEMA_VIOLATION, "customer_id"),
        ({"occurred_at": REMOVE}, ErrorKind.SCHEMA_VIOLATION, "occurred_at"),
        ({"direction": REMOVE}, ErrorKind.SCHEMA_VIOLATION, "direction"),
        ({"asset": REMOVE}, ErrorKind.SCHEMA_VIOLATION, "asset"),
        ({"amount": REMOVE}, ErrorKind.SCHEMA_VIOLATION, "amount"),
        ({"channel": REMOVE}, ErrorKind.SCHEMA_VIOLATION, "channel"),
        ({"asset": "DOGEX", "amount_usd": REMOVE}, ErrorKind.UNPRICED_ASSET, "DOGEX"),
    ],
)
def test_invalid_transactions_are_rejected_with_kind_and_field(rules, payload, changes, kind,
                                                               field):
    with pytest.raises(Rejected) as caught:
        decode_transfer(KEY, _raw(payload, **changes), rules)

    assert caught.value.kind is kind
    assert any(field in reason for reason in caught.value.reasons), caught.value.reasons
    assert str(caught.value).startswith(f"{kind.value}: ")


@pytest.mark.parametrize("raw", [b"{not json", b"", b"\xff\xfe", b'{"event_id": "e-1",',
                                 b"{'single': 'quotes'}", b'{"amount": "1"} trailing'])
def test_invalid_json(rules, raw):
    with pytest.raises(Rejected) as caught:
        decode_transfer(KEY, raw, rules)

    assert caught.value.kind is ErrorKind.INVALID_JSON


@pytest.mark.parametrize("raw", [b"[]", b'"text"', b"42", b"null", b"NaN"])
def test_json_that_is_not_an_object_is_a_schema_violation(rules, raw):
    with pytest.raises(Rejected) as caught:
        decode_transfer(KEY, raw, rules)

    assert caught.value.kind is ErrorKind.SCHEMA_VIOLATION


@pytest.mark.parametrize(
    "amount", [b"1" + b"0" * 30, b"NaN", b"Infinity", b"-Infinity", b"1e30", b"12.5", b"10",
               b"true", b"null"])
def test_amounts_as_bare_json_numbers(rules, payload, amount):
    """Integers (exact or not), JSON floats, the NaN/Infinity tokens, booleans and null are
    all schema violations: an amount is a decimal string, nothing else."""
    raw = _raw(payload).replace(b'"amount":"100"', b'"amount":' + amount)
    assert amount in raw

    with pytest.raises(Rejected) as caught:
        decode_transfer(KEY, raw, rules)

    assert caught.value.kind is ErrorKind.SCHEMA_VIOLATION
    assert caught.value.reasons[0].startswith("amount: ")


@pytest.mark.parametrize(
    ("key", "kind"),
    [
        (None, ErrorKind.MISSING_KEY),
        (b"", ErrorKind.MISSING_KEY),
        (b"c2", ErrorKind.KEY_MISMATCH),
        (b"C1", ErrorKind.KEY_MISMATCH),
        (b"c1 ", ErrorKind.KEY_MISMATCH),
    ],
)
@pytest.mark.parametrize("topic", ["transactions", "onboarding"])
def test_message_key_must_be_the_customer_id(rules, payload, key, kind, topic):
    if topic == "transactions":
        raw = _raw(payload)
        decode = lambda: decode_transfer(key, raw, rules)  # noqa: E731
    else:
        raw = orjson.dumps({"event_id": "o-1", "customer_id": "c1",
                            "occurred_at": "2026-03-02T09:00:00Z", "type": "registered"})
        decode = lambda: decode_onboarding(key, raw)  # noqa: E731

    with pytest.raises(Rejected) as caught:
        decode()

    assert caught.value.kind is kind


def test_schema_violations_list_every_problem(rules, payload):
    raw = _raw(payload, amount="-1", direction="up", channel=None, occurred_at="2026-01-01")

    with pytest.raises(Rejected) as caught:
        decode_transfer(KEY, raw, rules)

    fields = sorted(reason.split(":")[0] for reason in caught.value.reasons)
    assert fields == ["amount", "channel", "direction", "occurred_at"]


def test_a_valid_transaction_becomes_a_transfer(rules, payload):
    raw = _raw(payload, occurred_at="2026-03-02T11:30:15.75+01:00", direction="out",
               asset="usdc", amount="1250.50", amount_usd="1250.505", extra_field="ignored",
               counterparty={"address": "0xAbC", "type": "unhosted_wallet", "country": "ir"})

    transfer = decode_transfer(KEY, raw, rules)

    assert transfer.occurred_at == datetime(2026, 3, 2, 10, 30, 15, 750000, tzinfo=UTC)
    assert transfer.at_s == int(datetime(2026, 3, 2, 10, 30, 15, tzinfo=UTC).timestamp())
    assert transfer.out is True
    assert transfer.usd_cents == 125050  # half-even: 1250.505 -> 1250.50
    assert (transfer.asset, transfer.channel) == ("USDC", "crypto")
    assert (transfer.cp_address, transfer.cp_type, transfer.cp_country) == (
        "0xAbC", "unhosted_wallet", "IR")


@pytest.mark.parametrize(
    ("changes", "cents"),
    [
        ({"amount": "1000000000000000", "amount_usd": REMOVE, "asset": "USD"},
         100_000_000_000_000_000),
        ({"amount": "10", "amount_usd": "0"}, 0),
        ({"amount_usd": "0.005"}, 0),
        ({"amount_usd": "0.015"}, 2),
        ({"amount_usd": "0.025"}, 2),
        ({"amount_usd": "0.0250000001"}, 3),
        ({"asset": "BTC", "amount": "1", "amount_usd": "90123.455"}, 9012346),  # given wins
    ],
)
def test_amount_usd_is_rounded_half_even_to_the_cent(rules, payload, changes, cents):
    assert decode_transfer(KEY, _raw(payload, **changes), rules).usd_cents == cents


@pytest.mark.parametrize(
    ("asset", "amount", "cents"),
    [
        ("BTC", "0.5", 4_500_000),  # 90000 * 0.5 = 45000.00
        ("btc", "0.00000001", 0),  # 0.0009 USD
        ("BTC", "0.00000017", 2),  # 0.0153
        ("ETH", "1.234567891234567891", 370_370),  # 3703.703673703703673
        ("ETH", "0.000005", 2),  # 0.015 -> 0.02 (half-even, 1 is odd)
        ("ETH", "0.000015", 4),  # 0.045 -> 0.04
        ("TRX", "0.1", 2),  # 0.025 -> 0.02
        ("TRX", "0.14", 4),  # 0.035 -> 0.04
        ("TRX", "1000000000000000", 25_000_000_000_000_000),  # 1e15 units: largest allowed
        ("EUR", "0.125", 14),  # 0.135 -> 0.14
        ("EUR", "0.375", 40),  # 0.405 -> 0.40
        ("GBP", "99.99", 12_699),  # 126.9873
        ("XMR", "3", 48_000),
        ("USD", "0.01499999999999999999999999999999", 1),  # exact 0.01499..., not 0.015
        ("USD", "0.00500000000000000000000000000001", 1),  # exact 0.00500...1, not 0.005
    ],
)
def test_priced_asset_without_amount_usd_converts_exactly(rules, payload, asset, amount, cents):
    raw = _raw(payload, asset=asset, amount=amount, amount_usd=REMOVE)

    assert decode_transfer(KEY, raw, rules).usd_cents == cents


def test_onboarding_decodes_with_nulls_and_unknown_fields(payload):
    raw = orjson.dumps({"event_id": "o-1", "customer_id": "c1", "type": "kyc_verified",
                        "occurred_at": "2026-03-02T09:00:00+00:00", "kyc_tier": 2,
                        "nationality": None, "source_system": "kyc-vendor"})

    event = decode_onboarding(KEY, raw)

    assert (event.type, event.kyc_tier, event.nationality) == ("kyc_verified", 2, None)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"kyc_tier": 4}, "kyc_tier"),
        ({"kyc_tier": -1}, "kyc_tier"),
        ({"type": "kyc_approved"}, "type"),
        ({"expected_monthly_volume_usd": 2500.5}, "expected_monthly_volume_usd"),
        ({"occurred_at": "2026-03-02T09:00:00"}, "occurred_at"),
        ({"country_of_residence": "France"}, "country_of_residence"),
    ],
)
def test_invalid_onboarding_is_a_schema_violation(changes, field):
    raw = orjson.dumps({"event_id": "o-1", "customer_id": "c1", "type": "registered",
                        "occurred_at": "2026-03-02T09:00:00Z", **changes})

    with pytest.raises(Rejected) as caught:
        decode_onboarding(KEY, raw)

    assert caught.value.kind is ErrorKind.SCHEMA_VIOLATION
    assert any(reason.startswith(field) for reason in caught.value.reasons)


@pytest.mark.parametrize("amount", ["1e3", "-5", "+5", " 5", "5 ", "5.", ".5", "0x10", "NaN",
                                    "Infinity", "1_000"])
def test_amount_strings_are_plain_decimals(rules, payload, amount):
    with pytest.raises(Rejected) as caught:
        decode_transfer(KEY, _raw(payload, amount=amount), rules)

    assert caught.value.kind is ErrorKind.SCHEMA_VIOLATION
    assert caught.value.reasons[0].startswith("amount: ")


@pytest.mark.parametrize("occurred_at", [1_764_000_000, 1_764_000_000.5, True, None,
                                         {"seconds": 1}])
def test_event_times_are_strings_only(rules, payload, occurred_at):
    """A JSON number would be read as seconds since 1970: it is refused, not guessed."""
    with pytest.raises(Rejected) as caught:
        decode_transfer(KEY, _raw(payload, occurred_at=occurred_at), rules)

    assert caught.value.kind is ErrorKind.SCHEMA_VIOLATION
    assert caught.value.reasons[0].startswith("occurred_at: ")


@pytest.mark.parametrize(("field", "value"), [
    ("pep", "true"), ("pep", 1), ("pep", 0), ("sanctions_hit", "false"),
    ("sanctions_hit", 1.0), ("kyc_tier", "2"), ("kyc_tier", 2.0), ("kyc_tier", True),
    ("expected_monthly_volume_usd", 5000), ("expected_monthly_volume_usd", "5e3"),
])
def test_onboarding_flags_tiers_and_amounts_are_strict(field, value):
    raw = orjson.dumps({"event_id": "o-1", "customer_id": "c1", "type": "profile_updated",
                        "occurred_at": "2026-03-02T09:00:00Z", field: value})

    with pytest.raises(Rejected) as caught:
        decode_onboarding(b"c1", raw)

    assert caught.value.kind is ErrorKind.SCHEMA_VIOLATION
    assert caught.value.reasons[0].startswith(f"{field}: ")


def test_strict_onboarding_values_in_their_own_types_are_taken():
    raw = orjson.dumps({"event_id": "o-1", "customer_id": "c1", "type": "profile_updated",
                        "occurred_at": "2026-03-02T09:00:00Z", "pep": True,
                        "sanctions_hit": False, "kyc_tier": 2,
                        "expected_monthly_volume_usd": "5000.50"})

    event = decode_onboarding(b"c1", raw)

    assert (event.pep, event.sanctions_hit, event.kyc_tier) == (True, False, 2)
    assert str(event.expected_monthly_volume_usd) == "5000.50"
