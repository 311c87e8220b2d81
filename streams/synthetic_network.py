"""Planted network typologies for the synthetic stream: laundering across customers.

Each scenario has its own customers (verified, KYC tier 2, ordinary jurisdictions, onboarded
120 days before), one ``Scenario`` per customer, all deterministic for an end time (no random
numbers: addresses are hashes of the prefix and a label). Every transfer lies in the 24 days
before ``planted_scenarios``' day (the midnight two days before ``end``), so inside the 30
days the stream spans, and its amounts stay inside every per-customer (S1) limit. A
customer's ``Scenario.expected_rules`` are the rules it alerts on, network rules included
(some customers of a typology alert on nothing: the first of a chain, say);
``NETWORK_PLANTED`` names, per scenario, its customers and every rule expected for them.

An internal transfer is two events at the same time: ``out`` at the sender and ``in`` at the
recipient, each naming the other in ``counterparty.customer_id``.

Where the network rules alert (design §6): collection_point at every payer,
distribution_point at every payee, shared_wallet_unrelated at both users, flow_cycle at every
customer on the loop (found where it closes, A; B and C are told), layering_chain at every
customer of a chain 4 customers long (found at D; A, B and C are told; E, the fifth, is past
it), indirect_exposure at B and C (A's direct exposure is S1's mixer_exposure).
"""

import hashlib
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from streams.synthetic import Scenario, ScenarioBuilder

MIXER_USDT_POOL = "0x0836222F2B2B24A3F36f98668Ed8F0B38D1a872f"
"""A Tornado Cash pool (1,000 USDT) on the mixer list, not the one ``planted_scenarios`` uses."""
UNHOSTED = "unhosted_wallet"

_SCENARIOS: dict[str, tuple[int, tuple[str, ...]]] = {
    "collection": (6, ("collection_point",)),
    "distribution": (6, ("distribution_point",)),
    "shared-wallet": (2, ("shared_wallet_unrelated",)),
    "cycle": (3, ("flow_cycle",)),
    "layering": (5, ("layering_chain",)),
    "fast-layering": (4, ("layering_chain",)),
    "indirect-mixer": (3, ("indirect_exposure", "mixer_exposure")),
    "consolidation": (1, ("deposits_consolidated",)),
    "fan-in-30d": (1, ("fan_in_30d",)),
    "fan-in-7d": (1, ("fan_in_7d",)),
    "fan-out-7d": (1, ("fan_out_7d",)),
    "fan-out-30d": (1, ("fan_out_30d",)),
}
"""Scenario name: (its number of customers, the rules expected to alert for it)."""


def network_customers(prefix: str = "planted") -> dict[str, tuple[str, ...]]:
    """Scenario name (``<prefix>-<name>``) to its customer ids, A first:
    ``<prefix>-<name>-a``, ``-b``, … (``<prefix>-<name>`` for a scenario of one)."""
    return {f"{prefix}-{name}": ((f"{prefix}-{name}",) if count == 1 else tuple(
        f"{prefix}-{name}-{chr(ord('a') + n)}" for n in range(count)))
        for name, (count, _) in _SCENARIOS.items()}


NETWORK_PLANTED: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    name: (customers, _SCENARIOS[name.removeprefix("planted-")][1])
    for name, customers in network_customers().items()}
"""For ``network_scenarios(end)`` (the default prefix): scenario name to (its customer ids,
the rule ids expected to alert for it)."""


def forwarded(usd: str, share: str) -> str:
    """``share`` of ``usd`` (decimal strings), in USD to the cent."""
    return str((Decimal(usd) * Decimal(share)).quantize(Decimal("0.01"), ROUND_HALF_UP))


def internal(at: datetime, usd: str, sender: ScenarioBuilder, recipient: ScenarioBuilder) -> None:
    """An internal transfer: the sender's withdrawal and the recipient's deposit, same time."""
    sender.transfer(at, "out", usd, cp_type="other",
                    cp_customer=recipient.scenario.customer_id)
    recipient.transfer(at, "in", usd, cp_type="other", cp_customer=sender.scenario.customer_id)


class _Planter:
    """Creates the customers of each scenario and the times and addresses they use."""

    def __init__(self, end: datetime, prefix: str) -> None:
        self.day = end.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=2)
        self.prefix = prefix
        self.customers = network_customers(prefix)
        self.scenarios: list[Scenario] = []

    def at(self, days_before: int, hour: float) -> datetime:
        """``hour`` hours into the day ``days_before`` days before the planted day."""
        return self.day - timedelta(days=days_before) + timedelta(hours=hour)

    def wallet(self, label: str) -> str:
        """A fresh EVM-style address of this prefix (copies of the stream do not share it)."""
        return "0x" + hashlib.sha256(f"{self.prefix}:{label}".encode()).hexdigest()[:40]

    def new(self, name: str, countries: tuple[str, ...] = ("DE",), nationality: str | None = None,
            rules: dict[int, tuple[str, ...]] | None = None) -> list[ScenarioBuilder]:
        """The verified customers of scenario ``name``, the n-th resident in
        ``countries[n % len]``; ``rules``: the rules the n-th one alerts on."""
        builders = []
        for n, customer_id in enumerate(self.customers[f"{self.prefix}-{name}"]):
            scenario = Scenario(name, customer_id, (rules or {}).get(n, ()))
            self.scenarios.append(scenario)
            builder = ScenarioBuilder(scenario)
            builder.verified(self.day - timedelta(days=120, hours=-n), tier=2,
                             country=countries[n % len(countries)], nationality=nationality)
            builders.append(builder)
        return builders


def network_scenarios(end: datetime, prefix: str = "planted") -> list[Scenario]:
    """Every network typology of design §9, each with its own customers (see the module)."""
    plant = _Planter(end, prefix)
    _counterparty_typologies(plant)
    _flow_typologies(plant)
    _per_customer_typologies(plant)
    return plant.scenarios


def _counterparty_typologies(plant: _Planter) -> None:
    """One address shared by many customers (S2). The customers sharing an address share a
    nationality or residence, so that only the shared-wallet scenario is 'unrelated'."""
    # Six payers in three countries (all Portuguese nationals), each funded from an exchange
    # two days or more before it pays the collector (no deposit within unhosted_after_deposit's
    # 24h), paying it within 2.5 days.
    collector = plant.wallet("collector")
    payers = plant.new("collection", countries=("DE", "FR", "NL"), nationality="PT",
                      rules=dict.fromkeys(range(6), ("collection_point",)))
    for n, (b, usd) in enumerate(zip(payers, ("1200.00", "950.00", "1850.00", "1400.00",
                                              "1100.00", "1650.00"), strict=True)):
        b.transfer(plant.at(6, 9 + n), "in", str(Decimal(usd) + 150))
        b.transfer(plant.at(4, 10 + 12 * n), "out", usd, address=collector, cp_type=UNHOSTED)

    # One wallet pays six Spanish customers within 3.5 days.
    source = plant.wallet("distributor")
    payees = plant.new("distribution", countries=("ES",),
                      rules=dict.fromkeys(range(6), ("distribution_point",)))
    for n, (b, usd) in enumerate(zip(payees, ("1000.00", "1250.00", "1500.00", "1100.00",
                                              "1400.00", "1300.00"), strict=True)):
        b.transfer(plant.at(12, 8 + 16 * n), "in", usd, address=source, cp_type=UNHOSTED)

    # A German and a Japanese customer (no common residence or nationality) withdraw to one
    # unhosted wallet 8 days apart, below the EU travel-rule threshold (1,000 EUR).
    shared = plant.wallet("shared")
    german, japanese = plant.new("shared-wallet", countries=("DE", "JP"),
                                 rules=dict.fromkeys(range(2), ("shared_wallet_unrelated",)))
    for b in (german, japanese):
        b.transfer(plant.at(16, 9), "in", "1000.00")
    german.transfer(plant.at(14, 11), "out", "800.00", address=shared, cp_type=UNHOSTED)
    japanese.transfer(plant.at(6, 15), "out", "700.00", address=shared, cp_type=UNHOSTED)


def _flow_typologies(plant: _Planter) -> None:
    """Value followed from customer to customer (S3)."""
    # A -> B -> C -> A, two days apart, each forwarding 90 % of what it received.
    a, b, c = plant.new("cycle", countries=("NL", "DE", "FR"),
                        rules=dict.fromkeys(range(3), ("flow_cycle",)))
    a.transfer(plant.at(22, 9), "in", "3000.00")
    usd = "3000.00"
    for n, (sender, recipient) in enumerate(((a, b), (b, c), (c, a))):
        usd = forwarded(usd, "0.90")
        internal(plant.at(21 - 2 * n, 10), usd, sender, recipient)

    # A -> B -> C -> D -> E, three hours apart (more than the hop delay), 89-92 % each.
    chain = plant.new("layering", countries=("DE", "FR", "IT", "ES", "NL"),
                      rules=dict.fromkeys(range(4), ("layering_chain",)))
    _chain(plant.at(10, 6), "5000.00", chain, ("0.92", "0.90", "0.89", "0.89"),
           timedelta(hours=3))

    # A -> B -> C -> D within 16 minutes (faster than the hop delay: found by the catch-up).
    chain = plant.new("fast-layering", countries=("FR", "DE", "SE", "GB"),
                      rules=dict.fromkeys(range(4), ("layering_chain",)))
    _chain(plant.at(5, 9), "4000.00", chain, ("0.925", "0.92", "0.91"), timedelta(minutes=8))

    # A receives 2,000 USDT from a Tornado Cash pool, then A -> B -> C within four days.
    a, b, c = plant.new("indirect-mixer", countries=("DE", "AT", "NL"),
                        rules={0: ("mixer_exposure",), 1: ("indirect_exposure",),
                               2: ("indirect_exposure",)})
    a.transfer(plant.at(9, 13), "in", "2000.00", address=MIXER_USDT_POOL, cp_type="other")
    internal(plant.at(8, 10), "1800.00", a, b)
    internal(plant.at(5, 16), "1620.00", b, c)


def _chain(deposit_at: datetime, usd: str, chain: list[ScenarioBuilder],
           shares: tuple[str, ...], gap: timedelta) -> None:
    """A deposit from an exchange at the first customer, forwarded down ``chain`` (each hop
    ``shares[n]`` of what it received), the first hop five hours after the deposit."""
    chain[0].transfer(deposit_at, "in", usd)
    at = deposit_at + timedelta(hours=5)
    for sender, recipient, share in zip(chain[:-1], chain[1:], shares, strict=True):
        usd = forwarded(usd, share)
        internal(at, usd, sender, recipient)
        at += gap


def _per_customer_typologies(plant: _Planter) -> None:
    """Shapes over days at one customer (S1's fan_in_30d, deposits_consolidated)."""
    # 14 deposits of 250-600 USD from distinct wallets, one every 10 hours over six calendar
    # days (fewer than fan_in_7d's 15), then two withdrawals to an exchange of 40 % of them
    # each, the last < 6 days after the first deposit (the 7d window's daily buckets cover
    # 6 to 7 days).
    [b] = plant.new("consolidation", rules={0: ("deposits_consolidated",)})
    amounts = ("410.00", "275.00", "590.00", "330.00", "455.00", "520.00", "260.00",
               "385.00", "600.00", "300.00", "475.00", "350.00", "540.00", "410.00")
    for n, usd in enumerate(amounts):
        b.transfer(plant.at(6, 4 + 10 * n), "in", usd, address=plant.wallet(f"smurf-{n}"),
                   cp_type=UNHOSTED)
    withdrawal = forwarded(str(sum(Decimal(usd) for usd in amounts)), "0.40")
    b.transfer(plant.at(1, 16), "out", withdrawal)
    b.transfer(plant.at(1, 22), "out", withdrawal)

    # 28 distinct senders, one every 20 hours (at most 9 in any 7 days), 60-199 USD each.
    [b] = plant.new("fan-in-30d", rules={0: ("fan_in_30d",)})
    for n in range(28):
        b.transfer(plant.at(24, 9 + 20 * n), "in", f"{60 + 37 * n % 140}.00",
                   address=plant.wallet(f"sender-{n}"), cp_type=UNHOSTED)

    # 16 distinct senders within four days (fan_in_7d: 15), 80-200 USD each.
    [b] = plant.new("fan-in-7d", rules={0: ("fan_in_7d",)})
    for n in range(16):
        b.transfer(plant.at(5, 8 + 6 * n), "in", f"{80 + 23 * n % 120}.00",
                   address=plant.wallet(f"fan-in-7d-{n}"), cp_type=UNHOSTED)

    # Funded from an exchange, then 16 distinct receivers within four days (fan_out_7d: 15),
    # 100-190 USD each (below every unhosted-wallet threshold).
    [b] = plant.new("fan-out-7d", rules={0: ("fan_out_7d",)})
    b.transfer(plant.at(9, 10), "in", "3000.00", cp_type="exchange")
    for n in range(16):
        b.transfer(plant.at(5, 8 + 6 * n), "out", f"{100 + 17 * n % 90}.00",
                   address=plant.wallet(f"fan-out-7d-{n}"), cp_type=UNHOSTED)

    # Funded twice, then 26 distinct receivers, one every 20 hours (at most 9 in 7 days).
    [b] = plant.new("fan-out-30d", rules={0: ("fan_out_30d",)})
    b.transfer(plant.at(26, 10), "in", "2500.00", cp_type="exchange")
    b.transfer(plant.at(14, 10), "in", "2500.00", cp_type="exchange")
    for n in range(26):
        b.transfer(plant.at(24, 9 + 20 * n), "out", f"{60 + 29 * n % 120}.00",
                   address=plant.wallet(f"fan-out-30d-{n}"), cp_type=UNHOSTED)
