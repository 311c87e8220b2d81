"""What a rule sees (``Check``) and what it returns when breached (``Finding``)."""

from dataclasses import dataclass, field
from decimal import Decimal
from typing import cast

from schemas.alerts import Severity
from schemas.risk import RiskLevel
from schemas.rules import Window
from streams.intake import Transfer
from streams.ruleset import CompiledRules, ThresholdsCents, TierLimitsCents
from streams.state import CustomerState, transfer_counterparty_key
from streams.windows import WINDOW_S, WindowTotals


@dataclass(slots=True)
class Finding:
    rule_id: str
    severity: Severity
    summary: str
    observed_value: Decimal
    threshold: Decimal
    measure: str
    window: Window | None = None
    aggregates: dict[str, Decimal] = field(default_factory=dict)
    matches: dict[str, str] = field(default_factory=dict)
    evidence_since_s: int | None = None
    """Recent transfers after this event time are added to the evidence."""


class Check:
    """One transfer, the customer's state after it, and the rules: the input of every rule.

    Window totals are computed at the transfer's event time, once per window and check.
    """

    __slots__ = ("_totals", "counterparty_key", "limits", "previous_transfer_s", "rules",
                 "state", "thresholds", "transfer")

    def __init__(self, transfer: Transfer, state: CustomerState, rules: CompiledRules,
                 previous_transfer_s: int) -> None:
        self.transfer = transfer
        self.state = state
        self.rules = rules
        self.previous_transfer_s = previous_transfer_s
        """Event time of the customer's newest transfer before this one; 0 if none."""
        # An unrated customer counts as low. ``RiskLevel`` is a ``StrEnum``, so the level as
        # stored (a ``str``) finds its limits without building the enum for each event.
        level = RiskLevel.LOW if state.risk_level == "unrated" else state.risk_level
        self.limits: TierLimitsCents = rules.limits[cast(RiskLevel, level)][
            state.profile.kyc_tier]
        self.thresholds: ThresholdsCents = rules.thresholds_for(
            state.profile.country_of_residence)
        self._totals: dict[Window, WindowTotals] = {}
        self.counterparty_key = transfer_counterparty_key(
            transfer.customer_id, transfer.cp_customer_id, transfer.cp_address)
        """The counterparty's key in the state (``streams.state.transfer_counterparty_key``):
        the other customer of an internal transfer, else the address; None if neither, or for
        a transfer between the customer's own accounts."""

    def totals(self, window: Window) -> WindowTotals:
        totals = self._totals.get(window)
        if totals is None:
            totals = self.state.windows.totals(window, self.transfer.at_s)
            self._totals[window] = totals
        return totals

    def window_start_s(self, window: Window) -> int:
        return self.transfer.at_s - WINDOW_S[window]
