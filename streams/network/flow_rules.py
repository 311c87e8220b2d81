"""S3's rules (``docs/network-design.md`` §6.3), checked on a provenance entry as it reaches a
customer (after merging with what the customer already held of it):

- ``flow_cycle``: the customer is already on the entry's path; the loop from its first
  appearance has >= ``min_customers`` distinct customers (itself included), the entry's share
  is >= ``network.min_share_ppm`` and >= ``min_usd`` came back.
- ``layering_chain``: fires at the customer that makes the path's distinct customers reach
  ``min_customers`` (itself included, and not already on the path), if every intermediate
  (a customer that received this value and passed it on; the origin customer of a ``c:``
  entry received none of it) passed on >= ``min_forward_ppm`` of what it received, and
  >= ``min_usd`` arrived. Once per chain, where it is first complete.
- ``indirect_exposure``: an entry from a sanctioned, mixer or high-risk address reaches a
  customer not yet on its path, after 1..``max_hops`` customers (the first customer's own
  deposit is S1's ``sanctioned_counterparty``/``mixer_exposure``), share >=
  ``network.min_share_ppm``, >= ``min_usd``.

Each fires at most once per customer, rule and path origin per aligned cooldown period: the
alert id is ``alert_id(customer, rule, "path:<origin>:<first event id>:<period>")``, period =
``order_s // cooldown_s`` of the record applied (``event:<last hop event>`` if cooldown is 0),
and the state remembers the ids in their period. The time span of a path is real event time:
from the origin's first transfer to the last hop.
"""

from datetime import UTC, datetime
from decimal import Decimal

from schemas.alerts import Alert, Evidence, NetworkEvidence, NetworkTransfer, TriggeringEvent
from schemas.network_config import PPM, FlowCycleConfig, IndirectExposureConfig, LayeringConfig
from schemas.rule_configs import RuleConfig
from streams.alerting import alert_id
from streams.money import setting_cents, to_usd
from streams.network.alerts import UNKNOWN_CUSTOMER, customer_snapshot, severity_for
from streams.network.flow_state import ALERTED_KEPT, FlowEntry, FlowState
from streams.network.records import PathAlert
from streams.ruleset import CompiledRules


def check_entry(state: FlowState, me: str, entry: FlowEntry, order_s: int,
                rules: CompiledRules) -> tuple[list[Alert], list[PathAlert]]:
    """The alerts ``entry`` raises at customer ``me`` (recorded in ``state.alerted``), and a
    ``PathAlert`` for every other customer on a cycle or chain it completes."""
    if not entry.path:
        return [], []
    configs = rules.config.rules
    min_share = rules.config.network.min_share_ppm
    customers = entry.customers()
    alerts: list[Alert] = []
    told: list[PathAlert] = []
    cycle = configs.flow_cycle
    if (cycle.enabled and me in customers and entry.share_ppm >= min_share
            and entry.usd_received >= setting_cents(cycle.min_usd)):
        members = _distinct(customers[customers.index(me):])
        if len(members) >= cycle.min_customers:
            fired = _fire(state, me, "flow_cycle", cycle, entry, order_s, rules,
                          _cycle_summary(entry, me, len(members), me))
            alerts += fired
            told += _tell(fired, members, me, "flow_cycle", cycle, entry, order_s)
    layering = configs.layering_chain
    distinct = len(set(customers)) + 1
    if (layering.enabled and me not in customers and distinct == layering.min_customers
            and entry.min_forward_ppm >= layering.min_forward_ppm
            and entry.usd_received >= setting_cents(layering.min_usd)):
        fired = _fire(state, me, "layering_chain", layering, entry, order_s, rules,
                      _chain_summary(entry, me, distinct, me))
        alerts += fired
        told += _tell(fired, _distinct(customers), me, "layering_chain", layering, entry,
                      order_s)
    exposure = configs.indirect_exposure
    if (exposure.enabled and entry.risky and me not in customers
            and 1 <= entry.hops <= exposure.max_hops and entry.share_ppm >= min_share
            and entry.usd_received >= setting_cents(exposure.min_usd)):
        between = f"{entry.hops} customer{'s' if entry.hops > 1 else ''}"
        summary = (f"value from {'/'.join(entry.lists)} {_short(entry.origin)} reached this "
                   f"customer after {between} within {_span(entry)} "
                   f"({_usd(entry.usd_received)} USD, {entry.share_ppm * 100 // PPM} %)")
        alerts += _fire(state, me, "indirect_exposure", exposure, entry, order_s, rules,
                        summary)
    return alerts, told


def member_alert(state: FlowState, told: PathAlert, order_s: int,
                 rules: CompiledRules) -> list[Alert]:
    """The alert of a customer on a cycle or chain found at another customer: the same
    finding, in the same cooldown period, with this customer's own profile and transfer."""
    config = getattr(rules.config.rules, told.rule_id)
    if not config.enabled:
        return []
    me, entry = told.recipient, FlowEntry.from_wire(told.entry)
    customers = entry.customers()
    if told.rule_id == "flow_cycle":
        members = _distinct(customers[customers.index(told.found_at):])
        summary = _cycle_summary(entry, told.found_at, len(members), me)
    else:
        summary = _chain_summary(entry, told.found_at, len(set(customers)) + 1, me)
    return _fire(state, me, told.rule_id, config, entry, order_s, rules, summary, told)


def _distinct(customers: tuple[str, ...]) -> tuple[str, ...]:
    """Each customer once, in the order of its first appearance."""
    return tuple(dict.fromkeys(customers))


def _cycle_summary(entry: FlowEntry, found_at: str, loop: int, me: str) -> str:
    back = "this customer" if found_at == me else found_at
    head = "" if found_at == me else f"on a loop of {loop} customers: "
    return (f"{head}value from {_short(entry.origin)} came back to {back} through {loop} "
            f"customers within {_span(entry)} ({_usd(entry.usd_received)} USD, "
            f"{entry.share_ppm * 100 // PPM} %)")


def _chain_summary(entry: FlowEntry, found_at: str, distinct: int, me: str) -> str:
    head = "" if found_at == me else f"on a chain ending at {found_at}: "
    return (f"{head}value from {_short(entry.origin)} passed through {distinct} customers "
            f"within {_span(entry)}, each intermediate passing on >= "
            f"{entry.min_forward_ppm * 100 // PPM} % ({_usd(entry.usd_received)} USD)")


def _measured(config: RuleConfig, entry: FlowEntry) -> tuple[Decimal, Decimal, str]:
    """What the rule compared: observed value, threshold, measure."""
    if isinstance(config, LayeringConfig):
        return (Decimal(len(set(entry.customers())) + 1), Decimal(config.min_customers),
                "customers_on_path")
    assert isinstance(config, FlowCycleConfig | IndirectExposureConfig)
    measure = "usd_returned" if isinstance(config, FlowCycleConfig) else "usd_from_listed_origin"
    return to_usd(entry.usd_received), to_usd(setting_cents(config.min_usd)), measure


def _period(config: RuleConfig, order_s: int, entry: FlowEntry) -> str:
    """The cooldown period a finding at ``order_s`` falls in (its last hop's event if none)."""
    cooldown = config.cooldown_s
    return str(order_s // cooldown) if cooldown else f"event:{entry.path[-1][1]}"


def _tell(fired: list[Alert], members: tuple[str, ...], me: str, rule_id: str,
          config: RuleConfig, entry: FlowEntry, order_s: int) -> list[PathAlert]:
    """A ``PathAlert`` for each other member, when the finding alerted here (once)."""
    if not fired:
        return []
    period = _period(config, order_s, entry)
    return [PathAlert(member, me, rule_id, period, entry.wire())
            for member in members if member != me]


def _fire(state: FlowState, me: str, rule_id: str, config: RuleConfig, entry: FlowEntry,
          order_s: int, rules: CompiledRules, summary: str,
          told: PathAlert | None = None) -> list[Alert]:
    """The alert of ``me``, unless its id is among the ones ``state`` remembers. A member told
    by a ``PathAlert`` is alerted in the finder's period, for its own transfer on the path."""
    period = told.period if told else _period(config, order_s, entry)
    until = ((int(period) + 1) * config.cooldown_s if period.isdigit() and config.cooldown_s
             else order_s + 1)
    identity = alert_id(me, rule_id, f"path:{entry.origin}:{entry.start_event}:{period}")
    if any(known == identity for _, known in state.alerted):
        return []
    state.alerted = [*state.alerted, (until, identity)][-ALERTED_KEPT:]
    snapshot = state.snapshot or UNKNOWN_CUSTOMER
    observed, threshold, measure = _measured(config, entry)
    # the finder: the transfer that brought the value; a member: its own transfer on the path
    trigger = (entry.path[-1] if told is None
               else next(hop for hop in entry.path if hop[0] == me))
    direction = "in" if told is None else "out"
    matches = ({"list": ",".join(entry.lists), "origin": entry.origin} if entry.risky
               else {"found_at": told.found_at} if told else {})
    return [Alert(
        alert_id=identity, customer_id=me, rule_id=rule_id, rule_set_version=rules.version,
        severity=severity_for(config.severity, snapshot, rules),
        triggered_at=_time(entry.path[-1][2]), summary=summary, observed_value=observed,
        threshold=threshold, measure=measure, window=None,
        evidence=Evidence(
            triggering_events=[TriggeringEvent(event_id=trigger[1], occurred_at=_time(trigger[2]),
                                               direction=direction,
                                               amount_usd=to_usd(trigger[3]))],
            aggregates={"usd": to_usd(entry.usd_received), "share_pct": _pct(entry.share_ppm),
                        "customers_before": Decimal(entry.hops),
                        "min_forwarded_pct": _pct(entry.min_forward_ppm)},
            matches=matches,
            network=NetworkEvidence(origin=entry.origin, path=_path(entry))),
        customer=customer_snapshot(snapshot),
    )]


def _path(entry: FlowEntry) -> list[NetworkTransfer]:
    """The origin's deposit (a listed address's value) then each hop passing it on."""
    rows = []
    if entry.origin.startswith("a:"):
        rows.append(NetworkTransfer(
            customer_id=entry.path[0][0], event_id=entry.start_event,
            occurred_at=_time(entry.start_at), direction="in",
            amount_usd=to_usd(entry.start_usd), share_pct=Decimal(100)))
    rows += [NetworkTransfer(customer_id=customer, event_id=event_id, occurred_at=_time(at_s),
                             direction="out", amount_usd=to_usd(usd), share_pct=_pct(share))
             for customer, event_id, at_s, usd, share in entry.path]
    return rows


def _time(at_s: int) -> datetime:
    return datetime.fromtimestamp(at_s, tz=UTC)


def _pct(ppm: int) -> Decimal:
    return Decimal(ppm).scaleb(-4)


def _usd(cents: int) -> str:
    return f"{cents // 100:,}"


def _short(origin: str) -> str:
    """A long address shortened (``a:0x0836…872f``); a customer in full."""
    if origin.startswith("c:") or len(origin) <= 16:
        return origin
    return f"{origin[:8]}…{origin[-4:]}"


def _span(entry: FlowEntry) -> str:
    """From the origin's first transfer to the last hop, in whole days, hours or minutes."""
    seconds = max(0, entry.path[-1][2] - entry.start_at)
    if seconds >= 86_400:
        return f"{seconds // 86_400}d"
    if seconds >= 3_600:
        return f"{seconds // 3_600}h"
    return f"{seconds // 60}min"
