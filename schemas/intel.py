"""Address intelligence on the wire: the value of one entry of the compacted ``address-intel``
topic (``docs/network-design.md`` §7), keyed ``<list>:<canonical address>``.

Strict where a lenient reading would change an entry's meaning, like the inbound events
(``schemas.events``): ``listed_at`` only as an ISO-8601 string with an offset, ``risk_score``
only as a JSON integer. Unknown fields are ignored, so a publisher can add fields first.
"""

from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StringConstraints, model_validator

from schemas.events import EventTime


class IntelList(StrEnum):
    SANCTIONS = "sanctions"
    MIXER = "mixer"
    CHAIN_RISK = "chain_risk"
    """An upstream analytics provider's risk score (0-100) for the address."""
    SERVICE = "service"
    """A known exchange or merchant hot wallet: never a collection or distribution point."""


Address = Annotated[str, StringConstraints(min_length=1, max_length=256, strip_whitespace=True)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=256, strip_whitespace=True)]
"""An entity, a source, a reference: free text, not empty."""
Code = Annotated[str, StringConstraints(min_length=1, max_length=64, strip_whitespace=True)]
"""A chain or a category."""


class AddressIntel(BaseModel):
    """One listing: an address on one list, with who listed it and when."""

    model_config = ConfigDict(extra="ignore", frozen=True, json_schema_extra={
        # what ``_chain_risk_has_a_score`` checks, for producers that validate with the schema
        "if": {"properties": {"list": {"const": "chain_risk"}}, "required": ["list"]},
        "then": {"properties": {"risk_score": {"type": "integer"}}, "required": ["risk_score"]},
    })

    schema_version: Literal[1] = Field(1, description="Version of this format.")
    list: IntelList = Field(description="sanctions, mixer, chain_risk or service.")
    address: Address = Field(
        description="The address as the source wrote it; the message key holds its canonical "
        "form (0x-hex and bech32 lower-cased, other formats as they are).")
    chain: Code | None = Field(None, description="Chain, e.g. ETH, BTC, TRX.")
    entity: Name | None = Field(
        None, description="Who the address belongs to, e.g. LAZARUS GROUP, Tornado Cash.")
    category: Code | None = Field(
        None, description="The source's category, e.g. sanctioned, mixer, darknet market.")
    risk_score: Annotated[StrictInt, Field(ge=0, le=100)] | None = Field(
        None, description="The provider's score, 0 (none) to 100; required for chain_risk.")
    listed_at: EventTime = Field(
        description="When the source listed the address, ISO-8601 with a timezone offset.")
    source: Name | None = Field(
        None, description="Who published the listing, e.g. OFAC SDN, a provider's name.")
    reference: Name | None = Field(
        None, description="The source's own reference, e.g. an SDN uid or a case number.")

    @model_validator(mode="after")
    def _chain_risk_has_a_score(self) -> Self:
        if self.list is IntelList.CHAIN_RISK and self.risk_score is None:
            raise ValueError("a chain_risk listing needs a risk_score (0-100)")
        return self
