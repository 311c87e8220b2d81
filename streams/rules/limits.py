"""Rules that compare one number with a KYC-tier limit: size, volume and velocity."""

from decimal import Decimal

from schemas.rules import RuleConfig, Window
from streams.money import to_usd
from streams.rules.context import Check, Finding
from streams.state import distinct_since
from streams.windows import WindowTotals


def _window_aggregates(check: Check, window: Window) -> dict[str, Decimal]:
    totals = check.totals(window)
    since_s = check.window_start_s(window)
    state = check.state
    return {
        f"distinct_senders_{window}": Decimal(distinct_since(state.counterparties_in, since_s)),
        f"distinct_receivers_{window}": Decimal(
            distinct_since(state.counterparties_out, since_s)),
        **_usd_aggregates(totals, window),
    }


def _usd_aggregates(totals: WindowTotals, window: Window) -> dict[str, Decimal]:
    return {
        f"usd_in_{window}": to_usd(totals.usd_in_cents),
        f"usd_out_{window}": to_usd(totals.usd_out_cents),
        f"count_in_{window}": Decimal(totals.count_in),
        f"count_out_{window}": Decimal(totals.count_out),
        f"max_single_usd_{window}": to_usd(max(totals.max_in_cents, totals.max_out_cents)),
    }


def large_transfer(check: Check, config: RuleConfig) -> Finding | None:
    """A single transfer at or above the tier's ``large_transfer_usd``."""
    amount = check.transfer.usd_cents
    limit = check.limits.large_transfer
    if amount < limit:
        return None
    return Finding(
        rule_id="large_transfer",
        severity=config.severity,
        summary=f"single transfer of {to_usd(amount)} USD >= {to_usd(limit)} USD "
        f"(tier {check.state.profile.kyc_tier})",
        observed_value=to_usd(amount),
        threshold=to_usd(limit),
        measure="usd_single_transfer",
    )


def _volume(check: Check, config: RuleConfig, window: Window, limit: int) -> Finding | None:
    totals = check.totals(window)
    if totals.usd_cents <= limit:
        return None
    return Finding(
        rule_id=f"volume_{window}",
        severity=config.severity,
        summary=f"{window} volume {to_usd(totals.usd_cents)} USD (in + out) > tier "
        f"{check.state.profile.kyc_tier} limit {to_usd(limit)} USD",
        observed_value=to_usd(totals.usd_cents),
        threshold=to_usd(limit),
        measure=f"usd_total_{window}",
        window=window,
        aggregates=_window_aggregates(check, window),
        evidence_since_s=check.window_start_s(window),
    )


def volume_24h(check: Check, config: RuleConfig) -> Finding | None:
    return _volume(check, config, Window.H24, check.limits.volume_24h)


def volume_30d(check: Check, config: RuleConfig) -> Finding | None:
    return _volume(check, config, Window.D30, check.limits.volume_30d)


def _velocity(check: Check, config: RuleConfig, window: Window, limit: int) -> Finding | None:
    totals = check.totals(window)
    if totals.count_total <= limit:
        return None
    return Finding(
        rule_id=f"velocity_{window}",
        severity=config.severity,
        summary=f"{totals.count_total} transfers in {window} > tier "
        f"{check.state.profile.kyc_tier} limit {limit}",
        observed_value=Decimal(totals.count_total),
        threshold=Decimal(limit),
        measure=f"count_transfers_{window}",
        window=window,
        aggregates=_window_aggregates(check, window),
        evidence_since_s=check.window_start_s(window),
    )


def velocity_1h(check: Check, config: RuleConfig) -> Finding | None:
    return _velocity(check, config, Window.H1, check.limits.max_transfers_1h)


def velocity_24h(check: Check, config: RuleConfig) -> Finding | None:
    return _velocity(check, config, Window.H24, check.limits.max_transfers_24h)
