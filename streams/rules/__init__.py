"""The rule catalogue: each rule is a function ``(Check, its config) -> Finding | None``."""

from collections.abc import Callable
from typing import Any, NamedTuple

from streams.rules.behaviour import (
    declared_volume_exceeded,
    deposits_consolidated,
    dormant_reactivated,
    new_account_high_volume,
    rapid_in_out,
    volume_spike,
)
from streams.rules.context import Check, Finding
from streams.rules.kyc import unverified_activity
from streams.rules.limits import large_transfer, velocity_1h, velocity_24h, volume_24h, volume_30d
from streams.rules.lists import (
    high_risk_counterparty,
    high_risk_jurisdiction,
    mixer_exposure,
    sanctioned_counterparty,
)
from streams.rules.network import (
    fan_in,
    fan_in_7d,
    fan_in_30d,
    fan_out,
    fan_out_7d,
    fan_out_30d,
    repeated_new_address,
    unhosted_after_deposit,
)
from streams.rules.structuring import structuring


class TransferRule(NamedTuple):
    rule_id: str
    check: Callable[[Check, Any], Finding | None]
    uses_windows: bool
    """Window rules are skipped for events too late to count in the windows."""
    on: str = "both"
    """Which transfers the rule looks at: ``in`` (deposits), ``out`` (withdrawals) or both."""


TRANSFER_RULES: tuple[TransferRule, ...] = (
    TransferRule("sanctioned_counterparty", sanctioned_counterparty, uses_windows=False),
    TransferRule("large_transfer", large_transfer, uses_windows=False),
    TransferRule("unverified_activity", unverified_activity, uses_windows=False),
    TransferRule("high_risk_jurisdiction", high_risk_jurisdiction, uses_windows=False),
    TransferRule("structuring", structuring, uses_windows=True),
    TransferRule("volume_24h", volume_24h, uses_windows=True),
    TransferRule("volume_30d", volume_30d, uses_windows=True),
    TransferRule("velocity_1h", velocity_1h, uses_windows=True),
    TransferRule("velocity_24h", velocity_24h, uses_windows=True),
    TransferRule("mixer_exposure", mixer_exposure, uses_windows=False),
    TransferRule("high_risk_counterparty", high_risk_counterparty, uses_windows=False),
    TransferRule("dormant_reactivated", dormant_reactivated, uses_windows=False),
    TransferRule("rapid_in_out", rapid_in_out, uses_windows=True, on="out"),
    TransferRule("new_account_high_volume", new_account_high_volume, uses_windows=True),
    TransferRule("declared_volume_exceeded", declared_volume_exceeded, uses_windows=True),
    TransferRule("fan_in", fan_in, uses_windows=True, on="in"),
    TransferRule("fan_out", fan_out, uses_windows=True, on="out"),
    TransferRule("repeated_new_address", repeated_new_address, uses_windows=True, on="out"),
    TransferRule("volume_spike", volume_spike, uses_windows=True),
    TransferRule("unhosted_after_deposit", unhosted_after_deposit, uses_windows=True, on="out"),
    # Per customer, over days (issue 14, S1 of the network design).
    TransferRule("fan_in_7d", fan_in_7d, uses_windows=True, on="in"),
    TransferRule("fan_out_7d", fan_out_7d, uses_windows=True, on="out"),
    TransferRule("fan_in_30d", fan_in_30d, uses_windows=True, on="in"),
    TransferRule("fan_out_30d", fan_out_30d, uses_windows=True, on="out"),
    TransferRule("deposits_consolidated", deposits_consolidated, uses_windows=True, on="out"),
)

RULE_IDS: tuple[str, ...] = tuple(rule.rule_id for rule in TRANSFER_RULES)

__all__ = ["RULE_IDS", "TRANSFER_RULES", "Check", "Finding", "TransferRule"]
