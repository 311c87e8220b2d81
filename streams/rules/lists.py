"""Rules against reference lists: FATF jurisdictions, sanctioned and mixer addresses, and a
provider's risk scores.

An address matches the rule file's lists (``config/lists``) or the address intelligence in
force (``streams.intel``, the ``address-intel`` topic); the alert's ``matches`` say where it
was found (``found_in``: ``rule_file``, ``intel_topic`` or both) and name the list, the entity
and the source.
"""

from datetime import UTC, datetime
from decimal import Decimal

from schemas.alerts import Severity
from schemas.rules import JurisdictionConfig, RuleConfig
from streams.intel import Listing, high_risk
from streams.money import to_usd
from streams.reference_lists import ListedAddress
from streams.rules.context import Check, Finding

MIXER = "mixer"
"""The counterparty type of a mixing service (``schemas.events.CounterpartyType``)."""
RULE_FILE = "rule_file"
INTEL_TOPIC = "intel_topic"


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


def _file_fields(listed: ListedAddress, entity_key: str) -> dict[str, str]:
    return {"list": listed.list_name, entity_key: listed.entity, "detail": listed.detail,
            "listed_address": listed.address}


def _intel_fields(listing: Listing, entity_key: str = "entity") -> dict[str, str]:
    fields = {"list": listing.list, "listed_address": listing.address, entity_key: listing.entity,
              "category": listing.category, "chain": listing.chain,
              "risk_score": None if listing.risk_score is None else str(listing.risk_score),
              "source": listing.source, "reference": listing.reference,
              "listed_at": datetime.fromtimestamp(listing.listed_at_s, UTC).isoformat()}
    return {name: value for name, value in fields.items() if value is not None}


def _list_matches(listed: ListedAddress | None, listing: Listing | None,
                  entity_key: str = "entity") -> dict[str, str]:
    """What matched: the rule file's entry, else the intel listing; when both, the listing's
    fields follow prefixed ``intel_``."""
    if listed is None:
        assert listing is not None
        return {**_intel_fields(listing, entity_key), "found_in": INTEL_TOPIC}
    fields = _file_fields(listed, entity_key)
    if listing is None:
        return {**fields, "found_in": RULE_FILE}
    return {**fields,
            **{f"intel_{name}": value for name, value in _intel_fields(listing).items()},
            "found_in": f"{RULE_FILE},{INTEL_TOPIC}"}


def _direction(check: Check) -> str:
    return "to" if check.transfer.out else "from"


def sanctioned_counterparty(check: Check, config: RuleConfig) -> Finding | None:
    """The counterparty's address is sanctioned: on the rule file's list or the intel topic's
    ``sanctions`` list."""
    address = check.transfer.cp_address
    listed = check.rules.sanctioned.match(address)
    listing = check.rules.intel.get(address, "sanctions")
    if listed is None and listing is None:
        return None
    if listed is not None:
        entity, where = listed.entity, listed.list_name
    else:
        assert listing is not None
        entity = listing.entity or "a sanctioned party"
        where = listing.source or "address intelligence"
    amount = to_usd(check.transfer.usd_cents)
    return Finding(
        rule_id="sanctioned_counterparty",
        severity=config.severity,
        summary=f"transfer of {amount} USD {_direction(check)} an address of {entity} ({where})",
        observed_value=amount,
        threshold=to_usd(0),
        measure="usd_transfer_sanctioned_counterparty",
        matches=_list_matches(listed, listing),
    )


def mixer_exposure(check: Check, config: RuleConfig) -> Finding | None:
    """The counterparty is a mixer: by its type, the rule file's list or the intel topic's
    ``mixer`` list."""
    transfer = check.transfer
    listed = check.rules.mixers.match(transfer.cp_address)
    listing = check.rules.intel.get(transfer.cp_address, "mixer")
    if listed is None and listing is None and transfer.cp_type != MIXER:
        return None
    matches = {"counterparty_type": transfer.cp_type}
    if listed is not None or listing is not None:
        matches |= _list_matches(listed, listing, entity_key="service")
    if listed is not None:
        service = listed.entity
    elif listing is not None:
        service = listing.entity or "a listed mixer"
    else:
        service = "a mixing service"
    amount = to_usd(transfer.usd_cents)
    return Finding(
        rule_id="mixer_exposure",
        severity=config.severity,
        summary=f"transfer of {amount} USD {_direction(check)} {service}",
        observed_value=amount,
        threshold=to_usd(0),
        measure="usd_transfer_mixer",
        matches=matches,
    )


def high_risk_counterparty(check: Check, config: RuleConfig) -> Finding | None:
    """The counterparty's address has a provider's risk score (intel ``chain_risk``) at or
    above ``network.chain_risk_high_from``."""
    band = check.rules.config.network.chain_risk_high_from
    listing = check.rules.intel.get(check.transfer.cp_address, "chain_risk")
    if listing is None or not high_risk(listing, band):
        return None
    assert listing.risk_score is not None
    source = listing.source or "a risk provider"
    category = f" ({listing.category})" if listing.category else ""
    return Finding(
        rule_id="high_risk_counterparty",
        severity=config.severity,
        summary=f"transfer of {to_usd(check.transfer.usd_cents)} USD {_direction(check)} an "
        f"address scored {listing.risk_score}/100 by {source}{category}",
        observed_value=Decimal(listing.risk_score),
        threshold=Decimal(band),
        measure="provider_risk_score",
        matches={**_intel_fields(listing), "found_in": INTEL_TOPIC},
    )
