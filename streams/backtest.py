"""Run the core over events held in memory or in a file: the same alerts as the live worker.

Events go through the same decoding and ``apply`` as in the worker, with a dictionary for the
customer states. Rejected inputs are returned, not raised.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field

from schemas.alerts import Alert
from schemas.risk import RiskChange
from streams.engine import apply
from streams.intake import Rejected, decode_onboarding, decode_transfer
from streams.ruleset import CompiledRules
from streams.state import CustomerState

ONBOARDING = "onboarding"


@dataclass
class BacktestResult:
    alerts: list[Alert] = field(default_factory=list)
    risk_changes: list[RiskChange] = field(default_factory=list)
    rejected: list[tuple[int, Rejected]] = field(default_factory=list)
    """(input position, why) of every input that would be dead-lettered."""
    states: dict[bytes, CustomerState] = field(default_factory=dict)
    events_applied: int = 0


def run_backtest(inputs: Iterable[tuple[str, bytes | None, bytes]],
                 rules: CompiledRules) -> BacktestResult:
    """``inputs`` are (topic kind: ``onboarding`` or ``transactions``, key, raw value)."""
    result = BacktestResult()
    states = result.states
    for position, (topic, key, raw) in enumerate(inputs):
        try:
            event = (decode_onboarding(key, raw) if topic == ONBOARDING
                     else decode_transfer(key, raw, rules))
        except Rejected as rejected:
            result.rejected.append((position, rejected))
            continue
        assert key is not None  # decoding rejects a missing key
        state, decisions = apply(states.get(key), event, rules)
        states[key] = state
        result.alerts.extend(decisions.alerts)
        result.risk_changes.extend(decisions.risk_changes)
        result.events_applied += 1
    return result
