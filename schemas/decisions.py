"""Alert decisions on the wire: what an analyst or a case system decided about one alert.

Published to the ``alert-decisions`` topic keyed by ``customer_id`` (like the inbound events, so
the decision reaches the worker that owns the customer), validated like them, dead-lettered
when invalid. ``occurred_at`` is when the decision was made: the worker applies it at that
event time, in order with the customer's own events.
"""

from enum import StrEnum
from typing import Annotated

from pydantic import Field, StrictInt, StringConstraints

from schemas.events import Identifier, _Inbound


class DecisionKind(StrEnum):
    FALSE_POSITIVE = "false_positive"
    """Not suspicious: the alert's points leave the risk score; the counterparty can be
    whitelisted for this customer and rule (``whitelist_days``)."""
    ESCALATED = "escalated"
    """Handed to a senior investigator or a case."""
    REPORTED = "reported"
    """A suspicious-activity report was filed."""


Reason = Annotated[str, StringConstraints(min_length=1, max_length=2000, strip_whitespace=True)]
Analyst = Annotated[str, StringConstraints(min_length=1, max_length=128, strip_whitespace=True)]
CounterpartyRef = Annotated[str, StringConstraints(min_length=1, max_length=256,
                                                   strip_whitespace=True)]


class AlertDecision(_Inbound):
    """One decision on one alert. ``event_id`` is the decision's own id (a re-sent decision
    keeps it); ``occurred_at`` when it was made."""

    alert_id: Identifier = Field(description="The alert decided on (its alert_id).")
    rule_id: Identifier = Field(description="The alert's rule_id.")
    decision: DecisionKind = Field(description="false_positive, escalated or reported.")
    decided_by: Analyst = Field(description="Who decided: an analyst's id or a case system's.")
    reason: Reason = Field(description="Why, in the analyst's words (kept for audit).")
    counterparty: CounterpartyRef | None = Field(
        None, description="false_positive only: the address (or c:<customer_id>) to whitelist "
        "for this customer and rule; omitted: the counterparty of the alert's triggering "
        "transfer, as the worker remembers it.")
    whitelist_days: Annotated[StrictInt, Field(ge=0, le=3650)] | None = Field(
        None, description="false_positive only: how long the whitelist lasts, in days; 0 for "
        "none; omitted: the rule set's decisions.whitelist_days.")
