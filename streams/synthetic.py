"""A realistic synthetic event stream with planted behaviour for every rule.

Used by ``amlstream demo``, the integration tests and the benchmark. Deterministic for a seed
and an end time. Background customers behave normally (verified, moderate amounts, ordinary
jurisdictions) and raise no alert; each planted scenario is one customer whose events raise
exactly the alerts it names.
"""

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson

ONBOARDING = "onboarding"
TRANSACTIONS = "transactions"
SANCTIONED_ETH_ADDRESS = "0x098B716B8Aaf21512996dC57EB0615e2383E2f96"
"""On the OFAC SDN list (Lazarus Group); sent in lower case to show case-insensitive EVM match."""
TORNADO_ETH_POOL = "0x910Cbd523D972eb0a6f4cAe4618aD62622b39DbF"
"""A Tornado Cash pool (10 ETH) on the mixer list."""
ORDINARY_COUNTRIES = ("DE", "FR", "US", "GB", "ES", "NL", "IT", "SE", "JP", "CA", "CH", "AU")
USD_PER_UNIT = {"USDT": Decimal(1), "USDC": Decimal(1), "BTC": Decimal(90000),
                "ETH": Decimal(3000), "EUR": Decimal("1.08")}


@dataclass(frozen=True)
class Message:
    topic: str
    key: bytes | None
    value: bytes
    occurred_at: datetime


@dataclass
class Scenario:
    name: str
    customer_id: str
    expected_rules: tuple[str, ...]
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


class ScenarioBuilder:
    """Writes one customer's events with running event ids."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.count = 0

    def _id(self) -> str:
        self.count += 1
        return f"{self.scenario.customer_id}-e{self.count}"

    def onboard(self, at: datetime, kind: str, **fields: Any) -> None:
        event = {"event_id": self._id(), "customer_id": self.scenario.customer_id,
                 "occurred_at": _iso(at), "type": kind, **fields}
        self.scenario.events.append((ONBOARDING, event))

    def verified(self, at: datetime, tier: int, country: str = "DE",
                 nationality: str | None = None, **fields: Any) -> None:
        """Registered, KYC submitted and verified at ``tier``; resident in ``country``, a
        national of ``nationality`` (default: the same country)."""
        self.onboard(at, "registered", country_of_residence=country,
                     nationality=nationality or country)
        self.onboard(at + timedelta(minutes=10), "kyc_submitted")
        self.onboard(at + timedelta(hours=2), "kyc_verified", kyc_tier=tier, **fields)

    def transfer(self, at: datetime, direction: str, usd: str, *, asset: str = "USDT",
                 address: str | None = None, cp_type: str = "exchange",
                 country: str | None = None, cp_customer: str | None = None) -> None:
        """One transfer of ``usd`` (a decimal string) in ``asset``; ``cp_customer`` names the
        other customer of an internal transfer (``counterparty.customer_id``)."""
        counterparty: dict[str, Any] = {"type": cp_type}
        if address is not None:
            counterparty["address"] = address
        if country is not None:
            counterparty["country"] = country
        if cp_customer is not None:
            counterparty["customer_id"] = cp_customer
        event = {"event_id": self._id(), "customer_id": self.scenario.customer_id,
                 "occurred_at": _iso(at), "direction": direction, "asset": asset,
                 "amount": str((Decimal(usd) / USD_PER_UNIT[asset]).quantize(Decimal("1e-8"))),
                 "amount_usd": usd, "channel": "crypto",
                 "counterparty": counterparty}
        self.scenario.events.append((TRANSACTIONS, event))


def _address(rng: random.Random) -> str:
    return "0x" + "".join(rng.choice("0123456789abcdef") for _ in range(40))


def planted_scenarios(end: datetime, prefix: str = "planted") -> list[Scenario]:
    """One customer per behaviour, all events within the 30 days before ``end``."""
    day = end.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=2)
    onboarded = day - timedelta(days=120)
    scenarios: list[Scenario] = []

    def new(name: str, *rules: str) -> ScenarioBuilder:
        scenario = Scenario(name, f"{prefix}-{name}", rules)
        scenarios.append(scenario)
        return ScenarioBuilder(scenario)

    b = new("large-transfer", "large_transfer")
    b.verified(onboarded, tier=2)
    b.transfer(day + timedelta(hours=9), "out", "60000.00", address="0x" + "a1" * 20)

    b = new("volume-24h", "volume_24h")
    b.verified(onboarded, tier=1)
    for i in range(4):
        b.transfer(day + timedelta(hours=6 + 3 * i), "in", "4500.00")

    b = new("volume-30d", "volume_30d")
    b.verified(onboarded, tier=1)
    for i in range(12):
        b.transfer(day - timedelta(days=24 - 2 * i, hours=-10), "in", "4500.00")

    b = new("velocity-1h", "velocity_1h")
    b.verified(onboarded, tier=1)
    for i in range(12):
        b.transfer(day + timedelta(hours=14, minutes=5 + 2 * i), "out", "40.00")

    b = new("velocity-24h", "velocity_24h")
    b.verified(onboarded, tier=1)
    for i in range(32):
        b.transfer(day + timedelta(hours=2, minutes=30 * i), "in", "30.00")

    b = new("structuring", "structuring")
    b.verified(onboarded, tier=2, country="US")  # US profile: 10,000 USD reporting threshold
    for i, usd in enumerate(("9400.00", "9650.00", "9800.00")):
        b.transfer(day + timedelta(hours=8 + 3 * i), "in", usd)

    b = new("unverified-pending", "unverified_activity")
    b.onboard(day, "registered", country_of_residence="FR", nationality="FR")
    b.onboard(day + timedelta(minutes=5), "kyc_submitted", kyc_tier=0)
    b.transfer(day + timedelta(hours=1), "in", "300.00")

    b = new("unverified-rejected", "unverified_activity")
    b.onboard(onboarded, "registered", country_of_residence="ES", nationality="ES")
    b.onboard(onboarded + timedelta(hours=1), "kyc_rejected")
    b.transfer(day + timedelta(hours=3), "out", "200.00", address="0x" + "c3" * 20)

    b = new("jurisdiction-counterparty", "high_risk_jurisdiction")
    b.verified(onboarded, tier=2)
    b.transfer(day + timedelta(hours=11), "out", "800.00", address="0x" + "d4" * 20,
               country="IR")

    b = new("jurisdiction-residence", "high_risk_jurisdiction")
    b.verified(onboarded, tier=2, country="VE")
    b.transfer(day + timedelta(hours=12), "in", "500.00")

    b = new("sanctioned-counterparty", "sanctioned_counterparty")
    b.verified(onboarded, tier=2)
    b.transfer(day + timedelta(hours=13), "out", "1200.00", asset="USDT",
               address=SANCTIONED_ETH_ADDRESS.lower(), cp_type="unhosted_wallet")
    _plant_behaviour(new, day, onboarded)
    return scenarios


def _plant_behaviour(new: Any, day: datetime, onboarded: datetime) -> None:
    """The red flags of behaviour and network: one customer each, tier 3 so that no tier
    limit interferes."""
    hours = [day + timedelta(hours=h) for h in range(24)]

    b = new("rapid-in-out", "rapid_in_out")
    b.verified(onboarded, tier=3, country="US")
    b.transfer(hours[9], "in", "20000.00")
    b.transfer(hours[11], "out", "17000.00", address="0x" + "e5" * 20)

    b = new("dormant-reactivated", "dormant_reactivated")
    b.verified(onboarded, tier=2)
    b.transfer(day - timedelta(days=100), "in", "500.00")
    b.transfer(hours[10], "out", "7000.00", address="0x" + "f6" * 20)

    b = new("new-account-high-volume", "new_account_high_volume")
    b.verified(day - timedelta(days=5), tier=3)
    for n in range(3):
        b.transfer(day - timedelta(days=3 - n), "in", "8000.00")

    b = new("declared-volume-exceeded", "declared_volume_exceeded")
    b.verified(onboarded, tier=3, expected_monthly_volume_usd="1000")
    for n in range(4):
        b.transfer(day - timedelta(days=4 - n), "in", "2000.00")

    b = new("fan-in", "fan_in")
    b.verified(onboarded, tier=3)
    for n in range(10):
        b.transfer(hours[6] + timedelta(minutes=30 * n), "in", "300.00",
                   address=f"0x{n + 1:040x}", cp_type="unhosted_wallet")

    b = new("fan-out", "fan_out")
    b.verified(onboarded, tier=3)
    for n in range(10):
        b.transfer(hours[6] + timedelta(minutes=30 * n), "out", "300.00",
                   address=f"0x{n + 101:040x}")

    b = new("repeated-new-address", "repeated_new_address")
    b.verified(onboarded, tier=3)
    for n in range(3):
        b.transfer(hours[8 + 2 * n], "out", "400.00", address="0x" + "a7" * 20)

    b = new("volume-spike", "volume_spike")
    b.verified(onboarded, tier=3)
    for n in range(20):
        b.transfer(day - timedelta(days=28 - n), "in", "100.00")
    for n in range(3):
        b.transfer(hours[8 + n], "in", "5000.00")

    b = new("mixer-exposure", "mixer_exposure")
    b.verified(onboarded, tier=2)
    b.transfer(hours[15], "out", "2000.00", asset="ETH", address=TORNADO_ETH_POOL,
               cp_type="other")

    b = new("unhosted-after-deposit", "unhosted_after_deposit")
    b.verified(onboarded, tier=3)
    b.transfer(hours[8], "in", "3000.00")
    b.transfer(hours[10], "out", "2500.00", address="0x" + "b8" * 20, cp_type="unhosted_wallet")


def background_scenarios(count: int, end: datetime, seed: int = 7,
                         prefix: str = "cust") -> list[Scenario]:
    """Ordinary customers with skewed activity (a few do most transfers); no alerts expected."""
    rng = random.Random(seed)
    scenarios = []
    for n in range(count):
        scenario = Scenario("background", f"{prefix}-{n:06d}", ())
        b = ScenarioBuilder(scenario)
        country = rng.choice(ORDINARY_COUNTRIES)
        count = min(int(rng.paretovariate(1.3)), 30)
        times = sorted(end - timedelta(seconds=rng.uniform(60, 29 * 86400)) for _ in range(count))
        amounts = [round(rng.uniform(20, 2000), 2) for _ in times]
        # Customers declare roughly what they do (rounded up to the next 1,000 USD).
        declared = max(2000, (int(sum(amounts)) // 1000 + 1) * 1000)
        b.verified(end - timedelta(days=rng.uniform(35, 400)), tier=rng.choice((2, 2, 3)),
                   country=country, expected_monthly_volume_usd=str(declared))
        for at, usd in zip(times, amounts, strict=True):
            b.transfer(at, rng.choice(("in", "out")), f"{usd:.2f}",
                       asset=rng.choice(tuple(USD_PER_UNIT)), address=_address(rng),
                       cp_type=rng.choice(("exchange", "merchant", "bank")),
                       country=rng.choice(ORDINARY_COUNTRIES))
        scenarios.append(scenario)
    return scenarios


def bad_messages(end: datetime) -> list[tuple[Message, str]]:
    """Malformed inputs, each with the dead-letter error kind it must get."""
    good = {"event_id": "bad-1", "customer_id": "bad-customer", "occurred_at": _iso(end),
            "direction": "in", "asset": "USDT", "amount": "10", "channel": "crypto"}

    def variant(**changes: Any) -> bytes:
        return orjson.dumps({**good, **changes})

    key = b"bad-customer"
    cases = [
        (key, b"{not json", "invalid_json"),
        (key, variant(amount=12.5), "schema_violation"),
        (key, variant(amount="-5"), "schema_violation"),
        (key, variant(amount="NaN"), "schema_violation"),
        (key, variant(amount="1e30"), "schema_violation"),
        (key, variant(occurred_at="2026-01-01T10:00:00"), "schema_violation"),
        (key, variant(direction="sideways"), "schema_violation"),
        (key, variant(occurred_at=int(end.timestamp())), "schema_violation"),
        (key, variant(amount=10), "schema_violation"),
        (None, variant(), "missing_key"),
        (b"someone-else", variant(), "key_mismatch"),
        (key, variant(asset="DOGEX"), "unpriced_asset"),
    ]
    return [(Message(TRANSACTIONS, k, raw, end), kind) for k, raw, kind in cases]


def to_messages(scenarios: list[Scenario]) -> list[Message]:
    """Onboarding first, then transactions, each in event-time order."""
    messages = [
        Message(topic, event["customer_id"].encode(), orjson.dumps(event),
                datetime.fromisoformat(event["occurred_at"]))
        for scenario in scenarios for topic, event in scenario.events
    ]
    messages.sort(key=lambda m: (m.topic != ONBOARDING, m.occurred_at))
    return messages


def iter_events(scenarios: list[Scenario]) -> Iterator[tuple[str, dict[str, Any]]]:
    for scenario in scenarios:
        yield from scenario.events
