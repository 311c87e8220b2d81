"""S2, the counterparty stage: who pays, and is paid by, one address or customer; its rules
alert every customer involved (``docs/network-design.md`` §5, §6.2, §7). Pure.

``apply_leg`` applies one leg (an ``Envelope`` whose body is a ``Leg`` with ``cp_key`` set)
to the counterparty's state (``counterparty_state``) and returns the alerts it leads to;
``screen_listing`` screens the customers kept against a new listing of the address;
``is_expired`` says when no rule can read a state any more.

- ``collection_point`` (on a customer's payment to it) / ``distribution_point`` (on a payment
  by it): at least ``min_customers_30d`` distinct customers on that side within 30 d (checked
  first: its customers include the 7 d ones), or ``min_customers_7d`` within 7 d, and at
  least ``min_total_usd`` paid that way over the window (UTC day buckets: the days the window
  touches). Never for a service type (``network.service_types``) or a leg listed ``service``.
- ``shared_wallet_unrelated`` (either direction, ``a:`` keys of type ``unhosted_wallet``):
  ``min_customers`` customers within ``window_s`` that pairwise do not connect (same country
  of residence or same nationality connects; unknown connects to nothing). Such a set is a
  matching between countries and nationalities (each customer an edge between its two), so
  its largest size is a maximum bipartite matching: exact, whatever ``min_customers``.

Each rule alerts every customer involved (most recent first), each once per aligned period
(``order_s // cooldown_s``; with cooldown 0, per triggering event), keyed by that customer:
``alert_id(customer_id, rule_id, "cp:<cp_key>:<period>")``. A customer forgotten (cap) and
back in the same period is alerted again, with the same id. The state, its encoding and its
measured sizes: ``counterparty_state``.
"""

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal

from schemas.alerts import (
    Alert,
    Evidence,
    NetworkEvidence,
    NetworkTransfer,
    Severity,
    TriggeringEvent,
)
from schemas.rule_configs import RuleConfig
from streams.alerting import alert_id
from streams.intel import Listing
from streams.money import setting_cents, to_usd
from streams.network.alerts import customer_snapshot, severity_for
from streams.network.counterparty_state import (
    D7_S,
    D30_S,
    DAY_S,
    SCREENED_KEPT,
    WORST_CASE_BYTES,
    CounterpartyState,
    CpTransfer,
    Period,
)
from streams.network.records import Envelope, Leg
from streams.ruleset import CompiledRules

__all__ = ["WORST_CASE_BYTES", "CounterpartyOutcome", "CounterpartyState", "apply_leg",
           "is_expired", "retention_s", "screen_listing", "unconnected"]

UNHOSTED = "unhosted_wallet"
SERVICE_LIST = "service"
OTHERS_MAX = 10


@dataclass
class CounterpartyOutcome:
    alerts: list[Alert] = field(default_factory=list)
    replayed: bool = False


@dataclass(slots=True)
class _Hit:
    """A rule found true: what every customer involved is told."""

    rule_id: str
    config: RuleConfig
    involved: list[str]
    """Customers involved, most recent first."""
    sides: tuple[bool, ...]
    """The sides (``out``) of their transfers that count."""
    observed: Decimal
    threshold: Decimal
    measure: str
    window: str
    aggregates: dict[str, Decimal]
    summary: str
    others_total: int
    triggered_at_s: int
    severity: Severity
    matches: dict[str, str] = field(default_factory=dict)


def retention_s(rules: CompiledRules) -> int:
    """How long a counterparty is kept after its last leg: the longest any rule looks back."""
    config = rules.config.rules
    return max(D30_S, config.retro_listed_counterparty.lookback_s,
               config.shared_wallet_unrelated.window_s)


def is_expired(state: CounterpartyState, now_s: int, rules: CompiledRules) -> bool:
    """True when ``state`` was last seen longer than ``retention_s`` before ``now_s``. A leg
    applied to an expired state starts afresh, so a sweep at any time changes no result."""
    return state.last_seen_s < now_s - retention_s(rules)


def apply_leg(state: CounterpartyState | None, envelope: Envelope, rules: CompiledRules,
              ) -> tuple[CounterpartyState, CounterpartyOutcome]:
    """Apply one leg to its counterparty's state (changed in place); return it and the
    alerts. A leg at or below the state's ``last_key`` was applied already: nothing changes."""
    leg = envelope.body
    if not isinstance(leg, Leg) or leg.cp_key is None:
        raise ValueError(f"S2 applies legs with a counterparty, not {leg!r}")
    now_s = envelope.order_s
    if state is not None and state.last_key is not None and envelope.order_key <= state.last_key:
        return state, CounterpartyOutcome(replayed=True)
    if state is None or is_expired(state, now_s, rules):
        state = CounterpartyState(cp_type=leg.cp_type, first_seen_s=now_s, last_seen_s=now_s)
    state.record(leg, now_s, rules.config.network.customers_per_counterparty)
    state.cp_type = leg.cp_type
    state.last_key = envelope.order_key
    cp_key = leg.cp_key
    hits: list[_Hit] = []
    if leg.cp_type not in rules.config.network.service_types and SERVICE_LIST not in leg.listed:
        hits += _fan(state, cp_key, leg, now_s, rules)
    if leg.cp_type == UNHOSTED and cp_key.startswith("a:"):
        hits += _shared_wallet(state, cp_key, leg, now_s, rules)
    alerts: list[Alert] = []
    for hit in hits:
        period = _period(hit.config, leg, now_s)
        new = _not_alerted(state, hit.rule_id, period, hit.involved)
        if new:
            _remember(state, hit, period, new)
            alerts += _alerts(state, cp_key, hit, f"cp:{cp_key}:{period}", new, rules)
    return state, CounterpartyOutcome(alerts)


# --- rules ----------------------------------------------------------------------------------


def _window(window_s: int) -> str:
    for unit, seconds in (("d", DAY_S), ("h", 3600), ("m", 60)):
        if window_s % seconds == 0:
            return f"{window_s // seconds}{unit}"
    return f"{window_s}s"


def _display(cp_key: str, cp_type: str) -> str:
    short = cp_key if len(cp_key) <= 14 else cp_key[:12] + "…"
    return f"{cp_type.replace('_', ' ')} {short}"


def _fan(state: CounterpartyState, cp_key: str, leg: Leg, now_s: int,
         rules: CompiledRules) -> list[_Hit]:
    """``collection_point`` on a payment to the counterparty, ``distribution_point`` on one by
    it."""
    out = leg.out
    rule_id = "collection_point" if out else "distribution_point"
    config = getattr(rules.config.rules, rule_id)
    if not config.enabled or len(state.side(out)) < min(config.min_customers_7d,
                                                        config.min_customers_30d):
        return []
    if cp_key.startswith("c:") and not config.include_customers:
        return []  # another customer of ours: its own fan-in / fan-out rules alert it
    who, usd_name, verb = (("payers", "usd_to_counterparty", "paid") if out
                           else ("payees", "usd_from_counterparty", "were paid by"))
    for window_s, minimum in ((D30_S, config.min_customers_30d), (D7_S, config.min_customers_7d)):
        involved = state.within(out, window_s, now_s)
        usd_cents = state.usd(out, window_s, now_s)
        if len(involved) < minimum or usd_cents < setting_cents(config.min_total_usd):
            continue
        window = _window(window_s)
        return [_Hit(
            rule_id=rule_id, config=config, involved=involved, sides=(out,),
            observed=Decimal(len(involved)), threshold=Decimal(minimum),
            measure=f"distinct_{who}_{window}", window=window,
            aggregates={
                f"distinct_{who}_7d": Decimal(len(state.within(out, D7_S, now_s))),
                f"distinct_{who}_30d": Decimal(len(state.within(out, D30_S, now_s))),
                f"{usd_name}_7d": to_usd(state.usd(out, D7_S, now_s)),
                f"{usd_name}_30d": to_usd(state.usd(out, D30_S, now_s)),
            },
            summary=f"{len(involved)} customers {verb} {_display(cp_key, leg.cp_type)}"
                    f" within {window} ({to_usd(usd_cents):,.2f} USD)",
            others_total=(state.distinct_payers_total if out else state.distinct_payees_total) - 1,
            triggered_at_s=leg.at_s, severity=config.severity,
        )]
    return []


def unconnected(profiles: list[tuple[str | None, str | None]]) -> int:
    """The most customers, of ``(country_of_residence, nationality)`` profiles, that pairwise
    share neither (an unknown value shares nothing): a maximum matching between countries and
    nationalities, each customer an edge (Kuhn's augmenting paths, in input order)."""
    adjacency: dict[str, list[str]] = {}
    for index, (country, nationality) in enumerate(profiles):
        right = f"n:{nationality}" if nationality else f"?{index}"
        adjacency.setdefault(f"c:{country}" if country else f"?{index}", []).append(right)
    owner: dict[str, str] = {}

    def augment(left: str, seen: set[str]) -> bool:
        for right in adjacency[left]:
            if right not in seen:
                seen.add(right)
                if right not in owner or augment(owner[right], seen):
                    owner[right] = left
                    return True
        return False

    return sum(augment(left, set()) for left in adjacency)


def _shared_wallet(state: CounterpartyState, cp_key: str, leg: Leg, now_s: int,
                   rules: CompiledRules) -> list[_Hit]:
    config = rules.config.rules.shared_wallet_unrelated
    if not config.enabled or len(state.payers) + len(state.payees) < config.min_customers:
        return []
    users = state.users(config.window_s, now_s)
    period = _period(config, leg, now_s)
    if len(users) < config.min_customers or not _not_alerted(
            state, "shared_wallet_unrelated", period, users):
        return []  # too few, or every one of them was alerted in this period already
    snapshots = [state.entry(customer_id, (True, False)).snapshot for customer_id in users]
    found = unconnected([(snapshot[2], snapshot[3]) for snapshot in snapshots])
    if found < config.min_customers:
        return []
    window = _window(config.window_s)
    return [_Hit(
        rule_id="shared_wallet_unrelated", config=config, involved=users, sides=(True, False),
        observed=Decimal(found), threshold=Decimal(config.min_customers),
        measure=f"unconnected_customers_{window}", window=window,
        aggregates={
            f"distinct_customers_{window}": Decimal(len(users)),
            f"unconnected_customers_{window}": Decimal(found),
            "usd_to_counterparty_30d": to_usd(state.usd(True, D30_S, now_s)),
            "usd_from_counterparty_30d": to_usd(state.usd(False, D30_S, now_s)),
        },
        summary=f"{len(users)} customers ({found} unrelated) used "
                f"{_display(cp_key, leg.cp_type)} within {window}",
        others_total=len(users) + state.forgotten() - 1,
        triggered_at_s=leg.at_s, severity=config.severity,
    )]


# --- alerts ---------------------------------------------------------------------------------


def _at(at_s: int) -> datetime:
    return datetime.fromtimestamp(at_s, tz=UTC)


def _period(config: RuleConfig, leg: Leg, now_s: int) -> Period:
    return leg.event_id if config.cooldown_s == 0 else now_s // config.cooldown_s


def _not_alerted(state: CounterpartyState, rule_id: str, period: Period,
                 involved: list[str]) -> list[str]:
    """The customers of ``involved`` not alerted for the rule in ``period``."""
    alerted_period, alerted = state.alerted.get(rule_id, (None, []))
    if alerted_period != period:
        return involved
    done = set(alerted)
    return [customer_id for customer_id in involved if customer_id not in done]


def _remember(state: CounterpartyState, hit: _Hit, period: Period, new: list[str]) -> None:
    """Add ``new`` to the customers alerted in ``period``, keeping only those still kept on
    the rule's sides (at most the cap per side)."""
    alerted_period, alerted = state.alerted.get(hit.rule_id, (None, []))
    if alerted_period != period:
        alerted = []
    sides = [state.side(out) for out in hit.sides]
    kept = [customer_id for customer_id in alerted
            if any(customer_id in entries for entries in sides)]
    state.alerted[hit.rule_id] = (period, kept + new)


def _transfer(transfer: CpTransfer, customer_id: str) -> NetworkTransfer:
    event_id, at_s, out, usd_cents = transfer
    return NetworkTransfer(customer_id=customer_id, event_id=event_id, occurred_at=_at(at_s),
                           direction="out" if out else "in", amount_usd=to_usd(usd_cents))


def _alerts(state: CounterpartyState, cp_key: str, hit: _Hit, key: str, customers: list[str],
            rules: CompiledRules, after_s: int | None = None) -> list[Alert]:
    """One alert per customer of ``customers``; its own transfers with the counterparty are
    those at ``at_s > after_s`` (all kept if None), the others are the latest transfers of
    the first ``OTHERS_MAX`` other customers involved."""
    others = [(customer_id, _transfer(state.entry(customer_id, hit.sides).latest, customer_id))
              for customer_id in hit.involved[:OTHERS_MAX + 1]]
    alerts = []
    for customer_id in customers:
        snapshot = state.entry(customer_id, hit.sides).snapshot
        own = state.transfers(customer_id, hit.sides, after_s)
        alerts.append(Alert(
            alert_id=alert_id(customer_id, hit.rule_id, key),
            customer_id=customer_id, rule_id=hit.rule_id, rule_set_version=rules.version,
            severity=severity_for(hit.severity, snapshot, rules),
            triggered_at=_at(hit.triggered_at_s), summary=hit.summary,
            observed_value=hit.observed, threshold=hit.threshold, measure=hit.measure,
            window=hit.window,
            evidence=Evidence(
                triggering_events=[TriggeringEvent(
                    event_id=event_id, occurred_at=_at(at_s), direction="out" if out else "in",
                    amount_usd=to_usd(usd_cents)) for event_id, at_s, out, usd_cents in own],
                aggregates=hit.aggregates, matches=hit.matches,
                network=NetworkEvidence(
                    counterparty=cp_key, counterparty_type=state.cp_type,
                    others=[transfer for other, transfer in others
                            if other != customer_id][:OTHERS_MAX],
                    others_total=max(hit.others_total, 0)),
            ),
            customer=customer_snapshot(snapshot),
        ))
    return alerts


# --- retroactive screening (§7) -------------------------------------------------------------


def screen_listing(state: CounterpartyState, cp_key: str, listing: Listing,
                   rules: CompiledRules) -> list[Alert]:
    """One ``retro_listed_counterparty`` alert per customer kept with a transfer to or from the
    counterparty after ``listing.listed_at_s - lookback_s`` (before the listing or after it),
    once per listing: the listing is then added to ``state.screened``."""
    config = rules.config.rules.retro_listed_counterparty
    screened_id = f"{listing.key}:{listing.listed_at_s}"
    if not config.enabled or screened_id in state.screened:
        return []
    state.screened.append(screened_id)
    del state.screened[:-SCREENED_KEPT]
    since_s = listing.listed_at_s - config.lookback_s
    sides = (True, False)
    found = {customer_id: transfers for customer_id in {**state.payers, **state.payees}
             if (transfers := state.transfers(customer_id, sides, since_s))}
    customers = sorted(found, key=lambda customer_id: (-found[customer_id][0][1], customer_id))
    named = ", ".join(part for part in (listing.entity, listing.source) if part)
    matches = {"list": listing.list, "listing": listing.key, "listed_address": listing.address,
               "listed_at": _at(listing.listed_at_s).isoformat()}
    matches |= {name: value for name, value in (("entity", listing.entity),
                                                 ("source", listing.source)) if value}
    base = _Hit(
        rule_id="retro_listed_counterparty", config=config, involved=customers, sides=sides,
        observed=Decimal(0), threshold=Decimal(0), measure="usd_recent_transfers_listed",
        window=_window(config.lookback_s), aggregates={}, summary="",
        others_total=len(customers) + state.forgotten() - 1,
        triggered_at_s=listing.listed_at_s, matches=matches,
        severity=Severity.CRITICAL if listing.list == "sanctions" else config.severity)
    key = f"listing:{listing.key}:{listing.listed_at_s}"
    alerts = []
    for customer_id in customers:
        transfers = found[customer_id]
        usd = to_usd(sum(transfer[3] for transfer in transfers))
        hit = replace(
            base, observed=usd,
            aggregates={"usd_recent_transfers": usd,
                        "recent_transfers": Decimal(len(transfers))},
            summary=f"{len(transfers)} recent transfer(s) ({usd:,.2f} USD) with "
                    f"{_display(cp_key, state.cp_type)}, listed on {listing.list}"
                    + (f" ({named})" if named else "")
                    + f" on {_at(listing.listed_at_s).date().isoformat()}")
        alerts += _alerts(state, cp_key, hit, key, [customer_id], rules, since_s)
    return alerts
