"""Rules against reference lists: FATF jurisdictions and sanctioned addresses."""

from schemas.alerts import Severity
from schemas.rules import JurisdictionConfig, RuleConfig
from streams.money import to_usd
from streams.rules.context import Check, Finding


def high_risk_jurisdiction(check: Check, config: JurisdictionConfig) -> Finding | None:
    """The customer's residence or nationality, or the counterparty's country, is FATF-listed."""
    lists = check.rules.jurisdictions
    profile = check.state.profile
    countries = (check.transfer.cp_country, profile.country_of_residence, profile.nationality)
    if lists.listed.isdisjoint(countries):
        return None  # the usual case, in one set operation
    hits: dict[str, str] = {}
    for whose, country in zip(("counterparty", "residence", "nationality"), countries,
                              strict=True):
        listed = lists.list_of(country)
        if listed is not None:
            hits[f"{whose}_country"] = f"{country} (FATF {listed} list)"
    black = any("black" in hit for hit in hits.values())
    severity: Severity = config.black_list_severity if black else config.grey_list_severity
    amount = to_usd(check.transfer.usd_cents)
    return Finding(
        rule_id="high_risk_jurisdiction",
        severity=severity,
        summary=f"transfer of {amount} USD involving "
        + ", ".join(f"{whose.removesuffix('_country')} {hit}" for whose, hit in hits.items()),
        observed_value=amount,
        threshold=to_usd(0),
        measure="usd_transfer_high_risk_jurisdiction",
        matches=hits,
    )


def sanctioned_counterparty(check: Check, config: RuleConfig) -> Finding | None:
    listed = check.rules.sanctioned.match(check.transfer.cp_address)
    if listed is None:
        return None
    amount = to_usd(check.transfer.usd_cents)
    direction = "to" if check.transfer.out else "from"
    return Finding(
        rule_id="sanctioned_counterparty",
        severity=config.severity,
        summary=f"transfer of {amount} USD {direction} an address of {listed.entity} "
        f"({listed.list_name})",
        observed_value=amount,
        threshold=to_usd(0),
        measure="usd_transfer_sanctioned_counterparty",
        matches={
            "list": listed.list_name,
            "listed_address": listed.address,
            "entity": listed.entity,
            "detail": listed.detail,
        },
    )
