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


def transaction(event_id: str, customer: int, at: datetime, usd: str, out: bool,
                other: int | None = None) -> bytes:
    """A crypto transfer of ``customer`` with one of 977 exchange counterparties, or, with
    ``other``, one leg of an internal transfer with that customer."""
    counterparty = ({"type": "exchange", "address": f"0x{customer % 977:040x}"}
                    if other is None else {"type": "other",
                                           "customer_id": customer_key(other).decode()})
    return orjson.dumps({
        "event_id": event_id, "customer_id": customer_key(customer).decode(),
        "occurred_at": at.isoformat(), "direction": "out" if out else "in", "asset": "USDT",
        "amount": usd, "amount_usd": usd, "channel": "crypto", "counterparty": counterparty})


INTERNAL_EVERY = 10
"""Every n-th transaction is an internal transfer (its two legs): the network stages' load."""


def build(events: int, customers: int, end: datetime, seed: int = 1,
          large_every: int = 0, internal_every: int = INTERNAL_EVERY) -> Workload:
    """``events`` transactions over ``customers`` (Zipf-like activity) within the 30 days
    before ``end``; with ``large_every`` > 0, every n-th transaction is a large transfer;
    with ``internal_every`` > 0, every n-th is the sender's leg of an internal transfer to
    another customer, followed by the recipient's leg (same time, same amount)."""
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
        at = datetime.fromtimestamp(at_s, UTC)
        if internal_every and n % internal_every == 1 and len(transactions) < events - 1:
            other = (customer + 1 + rng.randrange(customers - 1)) % customers
            if other != customer:
                transactions.append((ids[customer], transaction(
                    f"t-{n}", customer, at, usd, out=True, other=other)))
                transactions.append((ids[other], transaction(
                    f"t-{n}-in", other, at, usd, out=False, other=customer)))
                continue
        if len(transactions) < events:
            transactions.append((ids[customer], transaction(f"t-{n}", customer, at, usd,
                                                            out=n % 2 == 0)))
    return Workload(onboarding, transactions, customers)
