"""A large synthetic workload for the benchmark: onboarding for every customer, then
transactions with skewed activity (a few customers make most of them)."""

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson

COUNTRIES = ("DE", "FR", "US", "GB", "ES", "NL", "IT", "JP", "CA", "CH")


@dataclass
class Workload:
    onboarding: list[tuple[bytes, bytes]]
    transactions: list[tuple[bytes, bytes]]
    customers: int

    @property
    def total(self) -> int:
        return len(self.onboarding) + len(self.transactions)


def customer_key(n: int) -> bytes:
    return f"b-{n:07d}".encode()


def activity_weights(customers: int) -> list[float]:
    """Zipf-like: the customer of rank r makes ~1/r^0.8 of the transactions."""
    return [1 / (rank + 1) ** 0.8 for rank in range(customers)]


def transaction(event_id: str, customer: int, at: datetime, usd: str, out: bool) -> bytes:
    """A crypto transfer of ``customer`` with one of 977 exchange counterparties."""
    return orjson.dumps({
        "event_id": event_id, "customer_id": customer_key(customer).decode(),
        "occurred_at": at.isoformat(), "direction": "out" if out else "in", "asset": "USDT",
        "amount": usd, "amount_usd": usd, "channel": "crypto",
        "counterparty": {"type": "exchange", "address": f"0x{customer % 977:040x}"}})


def build(events: int, customers: int, end: datetime, seed: int = 1,
          large_every: int = 0) -> Workload:
    """``events`` transactions over ``customers`` (Zipf-like activity) within the 30 days
    before ``end``; with ``large_every`` > 0, every n-th transaction is a large transfer."""
    rng = random.Random(seed)
    ids = [customer_key(n) for n in range(customers)]
    onboarding = []
    registered = (end - timedelta(days=400)).isoformat()
    for n, key in enumerate(ids):
        onboarding.append((key, orjson.dumps({
            "event_id": f"o-{n}", "customer_id": key.decode(), "occurred_at": registered,
            "type": "kyc_verified", "kyc_tier": 3, "country_of_residence": COUNTRIES[n % 10],
            "nationality": COUNTRIES[n % 10], "expected_monthly_volume_usd": "1000000"})))
    chosen = rng.choices(range(customers), weights=activity_weights(customers), k=events)
    start_s = (end - timedelta(days=29)).timestamp()
    times = sorted(rng.uniform(start_s, end.timestamp()) for _ in range(events))
    transactions = []
    for n, (customer, at_s) in enumerate(zip(chosen, times, strict=True)):
        usd = "300000.00" if large_every and n % large_every == 0 else f"{rng.uniform(5, 900):.2f}"
        transactions.append((ids[customer], transaction(
            f"t-{n}", customer, datetime.fromtimestamp(at_s, UTC), usd, out=n % 2 == 0)))
    return Workload(onboarding, transactions, customers)
