"""Rules on who the customer deals with: many senders or receivers, a new address used again
and again, and unhosted wallets right after a deposit (mixers: ``streams.rules.lists``)."""

from decimal import Decimal

from schemas.rule_configs import (
    FanConfig,
    RepeatedNewAddressConfig,
    UnhostedAfterDepositConfig,
)
from streams.money import to_usd
from streams.rules.context import Check, Finding
from streams.state import distinct_since

UNHOSTED = "unhosted_wallet"


def _fan(check: Check, config: FanConfig, out: bool, rule_id: str) -> Finding | None:
    """Distinct senders (deposits) or receivers (withdrawals) last seen within the window (exact
    event time, not buckets), at least ``min_counterparties``; exact up to the 64 kept."""
    if check.transfer.out is not out:
        return None
    seen = check.state.counterparties_out if out else check.state.counterparties_in
    if len(seen) < config.min_counterparties:
        return None  # too few ever seen, whatever the window
    distinct = distinct_since(seen, check.window_start_s(config.window))
    if distinct < config.min_counterparties:
        return None
    who = "receivers" if out else "senders"
    return Finding(
        rule_id=rule_id,
        severity=config.severity,
        summary=f"{distinct} distinct {who} in {config.window}",
        observed_value=Decimal(distinct),
        threshold=Decimal(config.min_counterparties),
        measure=f"distinct_{who}_{config.window}",
        window=config.window,
        evidence_since_s=check.window_start_s(config.window),
    )


def fan_in(check: Check, config: FanConfig) -> Finding | None:
    return _fan(check, config, out=False, rule_id="fan_in")


def fan_out(check: Check, config: FanConfig) -> Finding | None:
    return _fan(check, config, out=True, rule_id="fan_out")


def fan_in_7d(check: Check, config: FanConfig) -> Finding | None:
    """Many distinct senders over days (default: 15 in 7d); the window is the config's."""
    return _fan(check, config, out=False, rule_id="fan_in_7d")


def fan_out_7d(check: Check, config: FanConfig) -> Finding | None:
    return _fan(check, config, out=True, rule_id="fan_out_7d")


def fan_in_30d(check: Check, config: FanConfig) -> Finding | None:
    """Many distinct senders over a month (default: 25 in 30d)."""
    return _fan(check, config, out=False, rule_id="fan_in_30d")


def fan_out_30d(check: Check, config: FanConfig) -> Finding | None:
    return _fan(check, config, out=True, rule_id="fan_out_30d")


def repeated_new_address(check: Check, config: RepeatedNewAddressConfig) -> Finding | None:
    transfer = check.transfer
    address, key = transfer.cp_address, check.counterparty_key
    if not transfer.out or not address or key is None:
        return None
    entry = check.state.counterparties_out.get(key)
    if entry is None:
        return None
    first_seen_s, _, transfers = entry
    if first_seen_s <= transfer.at_s - config.window_s or transfers < config.min_transfers:
        return None
    return Finding(
        rule_id="repeated_new_address",
        severity=config.severity,
        summary=f"{transfers} withdrawals to an address first used "
        f"{(transfer.at_s - first_seen_s) / 3600:.1f}h ago",
        observed_value=Decimal(transfers),
        threshold=Decimal(config.min_transfers),
        measure="count_withdrawals_to_new_address",
        matches={"address": address},
        evidence_since_s=first_seen_s - 1,
    )


def unhosted_after_deposit(check: Check, config: UnhostedAfterDepositConfig) -> Finding | None:
    transfer = check.transfer
    if not transfer.out or transfer.cp_type != UNHOSTED:
        return None
    threshold = check.thresholds.travel_rule_threshold
    if transfer.usd_cents < threshold:
        return None
    deposits = check.totals(config.window)
    if deposits.count_in == 0:
        return None
    return Finding(
        rule_id="unhosted_after_deposit",
        severity=config.severity,
        summary=f"withdrawal of {to_usd(transfer.usd_cents)} USD to an unhosted wallet after "
        f"{deposits.count_in} deposit(s) of {to_usd(deposits.usd_in_cents)} USD in "
        f"{config.window}",
        observed_value=to_usd(transfer.usd_cents),
        threshold=to_usd(threshold),
        measure="usd_withdrawal_unhosted",
        window=config.window,
        aggregates={f"usd_in_{config.window}": to_usd(deposits.usd_in_cents),
                    f"count_in_{config.window}": Decimal(deposits.count_in)},
        matches={"jurisdiction_profile": check.thresholds.profile},
        evidence_since_s=check.window_start_s(config.window),
    )
