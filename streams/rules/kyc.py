"""Activity by a customer who is not (or no longer) verified."""

from schemas.rules import RuleConfig
from streams.money import to_usd
from streams.rules.context import Check, Finding

VERIFIED = "verified"


def unverified_activity(check: Check, config: RuleConfig) -> Finding | None:
    status = check.state.profile.kyc_status
    if status == VERIFIED:
        return None
    amount = to_usd(check.transfer.usd_cents)
    direction = "withdrawal" if check.transfer.out else "deposit"
    return Finding(
        rule_id="unverified_activity",
        severity=config.severity,
        summary=f"{direction} of {amount} USD while KYC status is '{status}'",
        observed_value=amount,
        threshold=to_usd(0),
        measure="usd_transfer_while_unverified",
        matches={"kyc_status": status},
    )
