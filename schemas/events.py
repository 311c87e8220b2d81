"""Inbound events: what upstream systems publish to the onboarding and transactions topics.

Both are keyed by ``customer_id`` on the wire (the Kafka message key must equal it).


Where a lenient reading would change an event's meaning, the wire types are strict: a time
only as an ISO-8601 string (a JSON number would be read as seconds since 1970), an amount only
as a decimal string (``schemas.money``), a flag only as ``true``/``false`` (not ``"true"`` or
``1``), a KYC tier only as a JSON integer.
"""

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
)

from schemas.money import WireNonNegativeAmount, WirePositiveAmount, json_kind

Identifier = Annotated[str, StringConstraints(min_length=1, max_length=128, strip_whitespace=True)]
CountryCode = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z]{2}$", to_upper=True, strip_whitespace=True)
]
"""ISO-3166 alpha-2 country code, upper-cased."""
AssetCode = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9.]{1,16}$", to_upper=True, strip_whitespace=True)
]


def _time_string_only(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError(f"times must be ISO-8601 strings with a timezone such as "
                         f"\"2026-11-21T10:00:00Z\", not {json_kind(value)}")
    return value


EventTime = Annotated[AwareDatetime, BeforeValidator(_time_string_only)]
"""An ISO-8601 string with a timezone offset; nothing else."""


class _Inbound(BaseModel):
    """Inbound models ignore fields they do not know, so producers can add fields first."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    schema_version: Literal[1] = Field(1, description="Version of this event format.")
    event_id: Identifier = Field(description="Unique id of the event, set by the producer.")
    customer_id: Identifier = Field(description="The customer; also the Kafka message key.")
    occurred_at: EventTime = Field(
        description="When it happened (event time), ISO-8601 with a timezone offset."
    )


class Direction(StrEnum):
    IN = "in"
    OUT = "out"


class Channel(StrEnum):
    CRYPTO = "crypto"
    FIAT = "fiat"


class CounterpartyType(StrEnum):
    EXCHANGE = "exchange"
    UNHOSTED_WALLET = "unhosted_wallet"
    MERCHANT = "merchant"
    MIXER = "mixer"
    BANK = "bank"
    OTHER = "other"


class Counterparty(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    address: Annotated[
        str, StringConstraints(min_length=1, max_length=256, strip_whitespace=True)
    ] | None = Field(
        None, description="Wallet address (crypto) or account reference (fiat)."
    )
    type: CounterpartyType = Field(CounterpartyType.OTHER, description="What kind of party.")
    country: CountryCode | None = Field(None, description="Counterparty jurisdiction, if known.")
    customer_id: Identifier | None = Field(
        None,
        description="The counterparty is this customer of ours (an internal transfer): set it "
        "on both legs, the sender's withdrawal and the recipient's deposit. The network rules "
        "then follow the value from one customer to the next; equal to the event's own "
        "customer_id it is a transfer between the customer's own accounts, which they ignore.",
    )


class TransactionEvent(_Inbound):
    """A deposit (``in``) or withdrawal (``out``) of crypto or fiat."""

    direction: Direction
    asset: AssetCode = Field(description="Asset ticker, e.g. BTC, ETH, USDT, USD, EUR.")
    amount: WirePositiveAmount = Field(description="Amount in units of the asset, decimal string.")
    amount_usd: WireNonNegativeAmount | None = Field(
        None,
        description="USD value at the time; when absent, converted with the price table.",
    )
    channel: Channel
    counterparty: Counterparty = Field(default_factory=Counterparty)
    tx_hash: Annotated[str, StringConstraints(max_length=256)] | None = None


class OnboardingType(StrEnum):
    REGISTERED = "registered"
    KYC_SUBMITTED = "kyc_submitted"
    KYC_VERIFIED = "kyc_verified"
    KYC_REJECTED = "kyc_rejected"
    PROFILE_UPDATED = "profile_updated"
    SCREENING_RESULT = "screening_result"
    CLOSED = "closed"


class OnboardingEvent(_Inbound):
    """A change in who the customer is. Absent (null) fields leave the profile as it was."""

    type: OnboardingType
    kyc_tier: Annotated[StrictInt, Field(ge=0, le=3)] | None = Field(
        None, description="KYC tier 0 (none) to 3 (enhanced); limits are set per tier."
    )
    country_of_residence: CountryCode | None = None
    nationality: CountryCode | None = None
    pep: StrictBool | None = Field(None, description="Politically exposed person.")
    sanctions_hit: StrictBool | None = Field(
        None, description="Sanctions-screening hit on the person.")
    expected_monthly_volume_usd: WireNonNegativeAmount | None = Field(
        None, description="Declared expected monthly volume in USD."
    )
