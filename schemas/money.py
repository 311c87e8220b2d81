"""Money at the edge: amounts are decimal strings on the wire and ``Decimal`` in the models.

A JSON number such as ``0.1`` would pass through a binary float on its way into a model, so an
event's amounts must be sent as strings. On the wire (``WirePositiveAmount``,
``WireNonNegativeAmount``) the reading is strict: a JSON number of any kind, a boolean, an
exponent (``"1e3"``), a sign or spaces are rejected, so every producer writes an amount one
way and the raw event shows the value the rules compared. Rule files (YAML, written by people)
may also give whole numbers (``large_transfer_usd: 10000``), exact either way.
"""

import re
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, WithJsonSchema

# Above this, an amount is a producer bug, not a transfer: a quadrillion units of anything.
ABSURD_AMOUNT = Decimal("1e15")
_DECIMAL_PATTERN = r"^[0-9]+(\.[0-9]+)?$"
_DECIMAL = re.compile(_DECIMAL_PATTERN)


def json_kind(value: Any) -> str:
    """How a JSON value reads to a producer, for an error message."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a JSON number"
    if value is None:
        return "null"
    return f"a JSON {'object' if isinstance(value, dict) else type(value).__name__}"


def _exact_decimal_only(value: Any) -> Any:
    if isinstance(value, float):
        raise ValueError("amounts must be decimal strings such as \"1250.50\", not JSON floats")
    if isinstance(value, bool):
        raise ValueError("amounts must be decimal strings, not booleans")
    return value


def _decimal_string_only(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError(f"amounts must be decimal strings such as \"1250.50\", not "
                         f"{json_kind(value)}")
    if not _DECIMAL.match(value):
        raise ValueError("amounts must be plain decimal strings such as \"1250.50\" "
                         "(digits and one optional decimal point: no sign, exponent or spaces)")
    return value


_POSITIVE = Field(gt=0, le=ABSURD_AMOUNT, allow_inf_nan=False)
_NON_NEGATIVE = Field(ge=0, le=ABSURD_AMOUNT, allow_inf_nan=False)
_POSITIVE_SCHEMA = WithJsonSchema({"type": "string", "pattern": _DECIMAL_PATTERN,
                                   "description": "A decimal string greater than 0, at most 1e15."})
_NON_NEGATIVE_SCHEMA = WithJsonSchema({"type": "string", "pattern": _DECIMAL_PATTERN,
                                       "description": "A decimal string from 0 to 1e15."})

WirePositiveAmount = Annotated[Decimal, BeforeValidator(_decimal_string_only), _POSITIVE,
                               _POSITIVE_SCHEMA]
"""An event's strictly positive amount: a plain decimal string, finite, at most 1e15."""

WireNonNegativeAmount = Annotated[Decimal, BeforeValidator(_decimal_string_only),
                                  _NON_NEGATIVE, _NON_NEGATIVE_SCHEMA]
"""An event's amount that may be zero (a declared volume, a USD value of dust)."""

NonNegativeAmount = Annotated[Decimal, BeforeValidator(_exact_decimal_only), _NON_NEGATIVE,
                              _NON_NEGATIVE_SCHEMA]
"""A configured amount (rule files): a decimal string or a whole number, from 0 to 1e15."""
