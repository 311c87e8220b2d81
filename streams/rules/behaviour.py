"""Rules on how a customer's activity compares with itself: pass-through, consolidation,
dormancy, new accounts, the declared profile, and spikes against the customer's own baseline."""

from decimal import Decimal

from schemas.config_types import Window
from schemas.network_config import ConsolidationConfig
from schemas.rule_configs import (
    DeclaredProfileConfig,
    DormantConfig,
    NewAccountConfig,
    RapidInOutConfig,
    SpikeConfig,
)
from streams.money import setting_cents, setting_ratio, to_usd
from streams.rules.context import Check, Finding

DAY_S = 86400
TRAILING_DAYS = 29
"""The baseline of the spike rule: the 30d window without its last 24h."""
CONSOLIDATION_WINDOW = Window.D7
"""The window of ``deposits_consolidated``: daily buckets, so 6 to 7 days."""
_CENTS = Decimal("0.01")


def rapid_in_out(check: Check, config: RapidInOutConfig) -> Finding | None:
    """Pass-through: deposits withdrawn again, most of them, within the window."""
    if not check.transfer.out:
        return None
    totals = check.totals(config.window)
    deposits, withdrawals = totals.usd_in_cents, totals.usd_out_cents
    if deposits < setting_cents(config.min_deposits_usd):
        return None
    if withdrawals * 100 < deposits * config.withdrawn_pct:
        return None
    share = (Decimal(withdrawals) * 100 / deposits).quantize(Decimal("0.1"))
    return Finding(
        rule_id="rapid_in_out",
        severity=config.severity,
        summary=f"{share}% of {to_usd(deposits)} USD deposited in {config.window} withdrawn "
        f"within the same {config.window}",
        observed_value=share,
        threshold=config.withdrawn_pct,
        measure=f"pct_deposits_withdrawn_{config.window}",
        window=config.window,
        aggregates={f"usd_in_{config.window}": to_usd(deposits),
                    f"usd_out_{config.window}": to_usd(withdrawals)},
        evidence_since_s=check.window_start_s(config.window),
    )


def deposits_consolidated(check: Check, config: ConsolidationConfig) -> Finding | None:
    """Many small deposits, then most of it out in a few large withdrawals (aggregation).

    On a withdrawal, over the 7d window: ``min_deposits`` deposits or more, none above
    ``max_single_deposit_pct`` of their total, which is ``min_deposits_usd`` or more and not
    zero; ``max_withdrawals`` withdrawals or fewer, taking ``withdrawn_pct`` of the deposits or
    more, their mean ``withdrawal_to_deposit_ratio`` x the mean deposit or more. Compared in
    integer cents (``x <= y * r`` as ``x * den <= y * num``)."""
    if not check.transfer.out:
        return None
    window = CONSOLIDATION_WINDOW
    totals = check.totals(window)
    n_in, usd_in, n_out, usd_out = (totals.count_in, totals.usd_in_cents, totals.count_out,
                                    totals.usd_out_cents)
    if n_in < config.min_deposits or not 0 < n_out <= config.max_withdrawals:
        return None
    if usd_in <= 0 or usd_in < setting_cents(config.min_deposits_usd):
        return None
    num, den = setting_ratio(config.max_single_deposit_pct)
    if totals.max_in_cents * 100 * den > usd_in * num:  # the largest deposit is too big a part
        return None
    num, den = setting_ratio(config.withdrawn_pct)
    if usd_out * 100 * den < usd_in * num:  # too little of it withdrawn
        return None
    num, den = setting_ratio(config.withdrawal_to_deposit_ratio)
    # mean out >= ratio x mean in: usd_out / n_out >= ratio x usd_in / n_in
    if usd_out * n_in * den < usd_in * n_out * num:
        return None
    ratio = (Decimal(usd_out * n_in) / Decimal(usd_in * n_out)).quantize(_CENTS)
    mean_in, mean_out = _mean_usd(usd_in, n_in), _mean_usd(usd_out, n_out)
    share = (Decimal(usd_out) * 100 / usd_in).quantize(Decimal("0.1"))
    return Finding(
        rule_id="deposits_consolidated",
        severity=config.severity,
        summary=f"{n_in} deposits of {to_usd(usd_in)} USD in {window} (mean {mean_in}, largest "
        f"{to_usd(totals.max_in_cents)}), then {n_out} withdrawal(s) of {to_usd(usd_out)} USD "
        f"({share}%, mean {mean_out}: {ratio} x the mean deposit)",
        observed_value=ratio,
        threshold=config.withdrawal_to_deposit_ratio,
        measure=f"ratio_mean_withdrawal_to_mean_deposit_{window}",
        window=window,
        aggregates={f"count_in_{window}": Decimal(n_in),
                    f"usd_in_{window}": to_usd(usd_in),
                    f"mean_in_usd_{window}": mean_in,
                    f"max_in_usd_{window}": to_usd(totals.max_in_cents),
                    f"count_out_{window}": Decimal(n_out),
                    f"usd_out_{window}": to_usd(usd_out),
                    f"mean_out_usd_{window}": mean_out,
                    f"pct_withdrawn_{window}": share},
        evidence_since_s=check.window_start_s(window),
    )


def _mean_usd(cents: int, count: int) -> Decimal:
    """The mean of ``count`` amounts totalling ``cents``, in USD to the cent (half-even)."""
    return (Decimal(cents) / count / 100).quantize(_CENTS)


def dormant_reactivated(check: Check, config: DormantConfig) -> Finding | None:
    previous_s = check.previous_transfer_s
    transfer = check.transfer
    if previous_s <= 0 or transfer.at_s - previous_s < config.silence_s:
        return None
    if transfer.usd_cents < setting_cents(config.min_amount_usd):
        return None
    silent_days = Decimal(transfer.at_s - previous_s) / DAY_S
    return Finding(
        rule_id="dormant_reactivated",
        severity=config.severity,
        summary=f"transfer of {to_usd(transfer.usd_cents)} USD after {silent_days:.0f} days "
        "without any",
        observed_value=silent_days.quantize(Decimal("0.01")),
        threshold=Decimal(config.silence_s) / DAY_S,
        measure="days_since_previous_transfer",
        aggregates={"usd_transfer": to_usd(transfer.usd_cents),
                    "min_amount_usd": config.min_amount_usd},
    )


def new_account_high_volume(check: Check, config: NewAccountConfig) -> Finding | None:
    registered_s = check.state.profile.registered_at_s
    if registered_s is None or check.transfer.at_s - registered_s >= config.account_age_s:
        return None
    volume = check.totals(Window.D30).usd_cents
    if volume <= setting_cents(config.volume_usd):
        return None
    age_days = Decimal(check.transfer.at_s - registered_s) / DAY_S
    return Finding(
        rule_id="new_account_high_volume",
        severity=config.severity,
        summary=f"{to_usd(volume)} USD moved by an account registered {age_days:.1f} days ago "
        f"(limit {config.volume_usd} USD in its first {config.account_age_s // DAY_S} days)",
        observed_value=to_usd(volume),
        threshold=config.volume_usd,
        measure="usd_total_30d",
        window=Window.D30,
        aggregates={"account_age_days": age_days.quantize(Decimal("0.01"))},
        evidence_since_s=registered_s,
    )


def declared_volume_exceeded(check: Check, config: DeclaredProfileConfig) -> Finding | None:
    declared = check.state.profile.expected_monthly_usd_cents
    if declared is None:
        return None
    volume = check.totals(Window.D30).usd_cents
    if volume <= setting_cents(config.min_volume_usd):
        return None
    numerator, denominator = setting_ratio(config.multiplier)
    if volume * denominator <= declared * numerator:  # volume <= declared x multiplier
        return None
    limit = max(declared * config.multiplier, Decimal(setting_cents(config.min_volume_usd)))
    return Finding(
        rule_id="declared_volume_exceeded",
        severity=config.severity,
        summary=f"30d volume {to_usd(volume)} USD > {config.multiplier} x the declared "
        f"{to_usd(declared)} USD a month",
        observed_value=to_usd(volume),
        threshold=(limit / 100).quantize(Decimal("0.01")),
        measure="usd_total_30d",
        window=Window.D30,
        aggregates={"declared_monthly_usd": to_usd(declared)},
        evidence_since_s=check.window_start_s(Window.D30),
    )


def volume_spike(check: Check, config: SpikeConfig) -> Finding | None:
    """24h volume far above the customer's own trailing daily mean (a baseline is needed)."""
    day = check.totals(Window.H24).usd_cents
    if day < setting_cents(config.floor_usd):
        return None
    trailing = check.totals(Window.D30).usd_cents - day
    if trailing <= 0:
        return None
    numerator, denominator = setting_ratio(config.multiplier)
    if day * TRAILING_DAYS * denominator <= trailing * numerator:  # day <= mean x multiplier
        return None
    mean = Decimal(trailing) / TRAILING_DAYS
    return Finding(
        rule_id="volume_spike",
        severity=config.severity,
        summary=f"24h volume {to_usd(day)} USD is {Decimal(day) / mean:.1f} x the trailing "
        f"daily mean of {to_usd(int(mean))} USD",
        observed_value=to_usd(day),
        threshold=(mean * config.multiplier / 100).quantize(Decimal("0.01")),
        measure="usd_total_24h",
        window=Window.H24,
        aggregates={"trailing_daily_mean_usd": (mean / 100).quantize(Decimal("0.01")),
                    "trailing_days": Decimal(TRAILING_DAYS)},
        evidence_since_s=check.window_start_s(Window.H24),
    )
