"""What the network stages need to build alerts: the customer as the leg described it."""

from schemas.alerts import CustomerSnapshot, Severity
from streams.money import to_usd
from streams.network.records import Snapshot
from streams.risk import raised_severity
from streams.ruleset import CompiledRules
from streams.state import CustomerState

UNKNOWN_CUSTOMER: Snapshot = ("unknown", 0, None, None, False, False, None, "unrated")
"""A customer the stage has seen no leg of yet."""


def snapshot_of_state(state: CustomerState) -> Snapshot:
    """S1: the customer, as each of its legs carries it."""
    profile = state.profile
    return (profile.kyc_status, profile.kyc_tier, profile.country_of_residence,
            profile.nationality, profile.pep, profile.sanctions_hit,
            profile.expected_monthly_usd_cents, state.risk_level)


def customer_snapshot(snapshot: Snapshot) -> CustomerSnapshot:
    (kyc_status, kyc_tier, country, nationality, pep, sanctions_hit, expected_cents,
     risk_level) = snapshot
    return CustomerSnapshot(
        kyc_status=kyc_status, kyc_tier=kyc_tier, country_of_residence=country,
        nationality=nationality, pep=pep, sanctions_hit=sanctions_hit,
        expected_monthly_volume_usd=None if expected_cents is None else to_usd(expected_cents),
        risk_level=risk_level,
    )


def severity_for(severity: Severity, snapshot: Snapshot, rules: CompiledRules) -> Severity:
    """Raised one step for a customer at the risk level that raises it, as S1 does."""
    return raised_severity(severity, snapshot[7], rules.config.risk)
