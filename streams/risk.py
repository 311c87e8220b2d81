"""Customer risk rating: KYC factors plus recent alerts (decaying), mapped to a level.

Re-rated at every event of the customer, at that event's time: a level changes only when the
customer does something, which is also when due diligence can act on it.

Published (``assessed``): a new customer's first rating once, as its initial assessment, when
its onboarding is settled (complete, past the grace period, or rated high), not at each
onboarding step; after that every change of level.
"""

import hashlib
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from schemas.alerts import Severity
from schemas.risk import RiskChange, RiskConfig, RiskLevel
from streams.reference_lists import JurisdictionLists
from streams.state import CustomerState

_SEVERITY_ORDER = (Severity.LOW, Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL)
_LEVEL_ORDER = (RiskLevel.LOW, RiskLevel.MEDIUM, RiskLevel.HIGH)


Factors = tuple[tuple[Decimal, str], ...]
"""(points, reason) of each factor that adds points."""


@dataclass(slots=True)
class Rating:
    score: Decimal
    level: RiskLevel
    factors: Factors

    @property
    def reasons(self) -> list[str]:
        return [f"{reason} (+{points})" for points, reason in self.factors]


def alert_points_at(state: CustomerState, at_s: int, config: RiskConfig) -> float:
    elapsed_s = max(0, at_s - state.alert_points_at_s)
    return float(state.alert_points * 0.5 ** (elapsed_s / config.alert_half_life_s))


def add_alert_points(state: CustomerState, severity: Severity, at_s: int,
                     config: RiskConfig) -> None:
    if at_s >= state.alert_points_at_s:
        state.alert_points = alert_points_at(state, at_s, config)
        state.alert_points_at_s = at_s
    state.alert_points += config.alert_points.get(severity, 0)


def remove_alert_points(state: CustomerState, severity: str, alerted_at_s: int, at_s: int,
                        config: RiskConfig) -> None:
    """Take one alert's points out of the score (a false positive), as much of them as is
    left after their decay since the alert."""
    if at_s >= state.alert_points_at_s:
        state.alert_points = alert_points_at(state, at_s, config)
        state.alert_points_at_s = at_s
    decayed_s = max(0, state.alert_points_at_s - alerted_at_s)
    points = config.alert_points.get(Severity(severity), 0)
    left = points * 0.5 ** (decayed_s / config.alert_half_life_s)
    state.alert_points = max(0.0, state.alert_points - left)


_ONBOARDING_SETTLED = frozenset(("verified", "rejected", "closed", "unknown"))
"""KYC statuses after which the initial assessment is due; "unknown": the customer acts with
no onboarding on record."""


def assessed(state: CustomerState, rating: "Rating", at_s: int, config: RiskConfig) -> bool:
    """Whether a rating that differs from the published level is published now."""
    if state.risk_published != "unrated" or rating.level is RiskLevel.HIGH:
        return True
    profile = state.profile
    if profile.kyc_status in _ONBOARDING_SETTLED:
        return True
    registered_s = profile.registered_at_s
    return registered_s is None or at_s - registered_s >= config.initial_assessment_grace_s


def _profile_points(state: CustomerState, lists: JurisdictionLists,
                    config: RiskConfig) -> list[tuple[int, str]]:
    profile, points = state.profile, config.points
    factors: list[tuple[int, str]] = []
    for whose, country in (("residence", profile.country_of_residence),
                           ("nationality", profile.nationality)):
        listed = lists.list_of(country)
        if listed is not None:
            factors.append((getattr(points, f"{whose}_fatf_{listed}"),
                            f"{whose} {country} on the FATF {listed} list"))
    if profile.pep:
        factors.append((points.pep, "politically exposed person"))
    if profile.sanctions_hit:
        factors.append((points.sanctions_hit, "sanctions-screening hit"))
    if profile.kyc_tier in (0, 1):
        factors.append((getattr(points, f"kyc_tier_{profile.kyc_tier}"),
                        f"KYC tier {profile.kyc_tier}"))
    if profile.kyc_status != "verified":
        factors.append((points.not_verified, f"KYC status {profile.kyc_status}"))
    return factors


class _ProfileFactors:
    """The profile part of the rating depends on six profile fields and the rule set only;
    customers share a few hundred combinations at most, so it is worked out once for each."""

    MAX_KEPT = 10_000

    def __init__(self) -> None:
        self.lists: JurisdictionLists | None = None
        self.config: RiskConfig | None = None
        self.by_profile: dict[tuple[object, ...], tuple[Decimal, Factors]] = {}

    def of(self, state: CustomerState, lists: JurisdictionLists,
           config: RiskConfig) -> tuple[Decimal, Factors]:
        """(score, factors) of the customer's profile."""
        if lists is not self.lists or config is not self.config or (
                len(self.by_profile) >= self.MAX_KEPT):
            self.lists, self.config, self.by_profile = lists, config, {}
        p = state.profile
        key = (p.kyc_status, p.kyc_tier, p.country_of_residence, p.nationality, p.pep,
               p.sanctions_hit)
        known = self.by_profile.get(key)
        if known is None:
            factors = tuple((Decimal(points), reason)
                            for points, reason in _profile_points(state, lists, config) if points)
            known = self.by_profile[key] = (sum((f for f, _ in factors), Decimal(0)), factors)
        return known


_PROFILE_FACTORS = _ProfileFactors()


def rate(state: CustomerState, at_s: int, lists: JurisdictionLists,
         config: RiskConfig) -> Rating:
    score, factors = _PROFILE_FACTORS.of(state, lists, config)
    points = alert_points_at(state, at_s, config)
    behaviour = Decimal(str(round(points, 2))) if points else Decimal(0)
    if behaviour:
        factors = (*factors, (behaviour, "recent alerts (decaying)"))
        score += behaviour
    level = (RiskLevel.HIGH if score >= config.high_from
             else RiskLevel.MEDIUM if score >= config.medium_from else RiskLevel.LOW)
    return Rating(score, level, factors)


def raised_severity(severity: Severity, level: str, config: RiskConfig) -> Severity:
    """One step up for customers at or above ``raise_severity_at``."""
    if config.raise_severity_at is None or level == "unrated":
        return severity
    if _LEVEL_ORDER.index(RiskLevel(level)) < _LEVEL_ORDER.index(config.raise_severity_at):
        return severity
    return _SEVERITY_ORDER[min(_SEVERITY_ORDER.index(severity) + 1, len(_SEVERITY_ORDER) - 1)]


def risk_change(customer_id: str, previous: str, rating: Rating, changed_at: datetime,
                event_id: str, rule_set_version: str) -> RiskChange:
    digest = hashlib.sha256(f"{customer_id}\x1f{rating.level}\x1f{event_id}".encode())
    return RiskChange(
        change_id=digest.hexdigest()[:32],
        customer_id=customer_id,
        previous_level=previous,
        level=rating.level,
        score=rating.score,
        reasons=rating.reasons,
        changed_at=changed_at,
        triggering_event_id=event_id,
        rule_set_version=rule_set_version,
    )
