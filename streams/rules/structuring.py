"""Structuring: several transfers each just below the reporting threshold, close together."""

from decimal import Decimal

from schemas.rules import StructuringConfig
from streams.money import to_usd
from streams.rules.context import Check, Finding


def is_near_threshold(usd_cents: int, floor_cents: int, threshold_cents: int) -> bool:
    """``floor <= amount < threshold``: within the margin below, never at or above."""
    return floor_cents <= usd_cents < threshold_cents


def structuring(check: Check, config: StructuringConfig) -> Finding | None:
    thresholds = check.thresholds
    transfer = check.transfer
    if not is_near_threshold(
        transfer.usd_cents, thresholds.near_threshold_floor, thresholds.reporting_threshold
    ):
        return None
    since_s = transfer.at_s - config.window_s
    floor, threshold = thresholds.near_threshold_floor, thresholds.reporting_threshold
    near = [item for item in check.state.near_threshold
            if since_s < item[0] <= transfer.at_s and floor <= item[2] < threshold]
    if len(near) < config.min_transfers:
        return None
    return Finding(
        rule_id="structuring",
        severity=config.severity,
        summary=f"{len(near)} transfers within {config.margin_pct}% below the "
        f"{to_usd(thresholds.reporting_threshold)} USD threshold ({thresholds.profile}) in "
        f"{config.window_s // 3600}h",
        observed_value=Decimal(len(near)),
        threshold=Decimal(config.min_transfers),
        measure="count_near_threshold",
        aggregates={
            "near_threshold_usd_total": to_usd(sum(item[2] for item in near)),
            "near_threshold_floor_usd": to_usd(thresholds.near_threshold_floor),
            "reporting_threshold_usd": to_usd(thresholds.reporting_threshold),
            "window_s": Decimal(config.window_s),
        },
        matches={"near_threshold_event_ids": ",".join(str(item[1]) for item in near)},
        evidence_since_s=since_s,
    )
