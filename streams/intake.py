"""Validate raw input into events, or say exactly why not: the edge of the core.

``decode_*`` take the raw message key and value. A rejection carries an error kind and readable
reasons, for the dead-letter topic.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Context
from typing import TypeVar

from pydantic import ValidationError

from schemas.dead_letters import ErrorKind
from schemas.decisions import AlertDecision
from schemas.events import OnboardingEvent, TransactionEvent
from streams.money import to_cents
from streams.ruleset import CompiledRules

MAX_REASONS = 10
_EXACT = Context(prec=100)
"""Enough digits that amount x price is exact before the one rounding, to the cent."""


class Rejected(Exception):
    def __init__(self, kind: ErrorKind, reasons: list[str]) -> None:
        super().__init__(f"{kind.value}: {'; '.join(reasons)}")
        self.kind = kind
        self.reasons = reasons

    def __reduce__(self) -> tuple[type["Rejected"], tuple[ErrorKind, list[str]]]:
        """Picklable as itself (a parallel backtest sends rejections between processes)."""
        return Rejected, (self.kind, self.reasons)


@dataclass(slots=True)
class Transfer:
    """A validated transaction, normalised for the core: event time in epoch seconds, USD in
    integer cents, counterparty address as given."""

    event_id: str
    customer_id: str
    occurred_at: datetime
    at_s: int
    out: bool
    usd_cents: int
    asset: str
    channel: str
    cp_address: str | None
    cp_type: str
    cp_country: str | None
    cp_customer_id: str | None = None
    """The counterparty is this customer of ours (an internal transfer)."""
    cp_listed: tuple[str, ...] | None = None
    """The lists the counterparty address was on when S1 applied the transfer (set there)."""
    to_flows: bool = False
    """S1 sends this transfer to the flow stage (set by ``note_network_activity``)."""
    untraced_cents: int = 0
    """With it, the customer's earlier unlisted deposits not sent one by one."""


def _reasons(exc: ValidationError) -> list[str]:
    return [
        f"{'.'.join(str(p) for p in err['loc']) or '(event)'}: {err['msg']}"
        for err in exc.errors()[:MAX_REASONS]
    ]


_Event = TypeVar("_Event", TransactionEvent, OnboardingEvent, AlertDecision)


def _validate(model: type[_Event], raw: bytes) -> _Event:
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        if any(err["type"] == "json_invalid" for err in exc.errors()):
            raise Rejected(ErrorKind.INVALID_JSON, _reasons(exc)) from None
        raise Rejected(ErrorKind.SCHEMA_VIOLATION, _reasons(exc)) from None


def _check_key(key: bytes | None, customer_id: str) -> None:
    if not key:
        raise Rejected(ErrorKind.MISSING_KEY, ["message has no key; the key must be customer_id"])
    if key != customer_id.encode():
        raise Rejected(ErrorKind.KEY_MISMATCH, ["message key differs from customer_id"])


def decode_onboarding(key: bytes | None, raw: bytes) -> OnboardingEvent:
    event = _validate(OnboardingEvent, raw)
    _check_key(key, event.customer_id)
    return event


def decode_decision(key: bytes | None, raw: bytes) -> AlertDecision:
    decision = _validate(AlertDecision, raw)
    _check_key(key, decision.customer_id)
    return decision


def to_transfer(event: TransactionEvent, rules: CompiledRules) -> Transfer:
    if event.amount_usd is not None:
        usd = event.amount_usd
    else:
        price = rules.usd_per_unit.get(event.asset)
        if price is None:
            raise Rejected(
                ErrorKind.UNPRICED_ASSET,
                [f"asset {event.asset!r} has no amount_usd and no price in the price table"],
            )
        usd = _EXACT.multiply(event.amount, price)
    cp = event.counterparty
    return Transfer(
        event_id=event.event_id,
        customer_id=event.customer_id,
        occurred_at=event.occurred_at,
        at_s=int(event.occurred_at.timestamp()),
        out=event.direction == "out",
        usd_cents=to_cents(usd),
        asset=event.asset,
        channel=event.channel,  # a StrEnum is its str value (``.value`` costs a call)
        cp_address=cp.address,
        cp_type=cp.type,
        cp_country=cp.country,
        cp_customer_id=cp.customer_id,
    )


def decode_transfer(key: bytes | None, raw: bytes, rules: CompiledRules) -> Transfer:
    event = _validate(TransactionEvent, raw)
    _check_key(key, event.customer_id)
    return to_transfer(event, rules)
