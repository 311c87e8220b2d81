"""Money at the edge: amounts are decimal strings on the wire and ``Decimal`` in the models.

A JSON number such as ``0.1`` would pass through a binary float on its way into a model, so
amounts must be sent as strings (integers are accepted too, being exact).
"""

from decimal import Decimal
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, WithJsonSchema

# Above this, an amount is a producer bug, not a transfer: a quadrillion units of anything.
ABSURD_AMOUNT = Decimal("1e15")
_DECIMAL_PATTERN = r"^[0-9]+(\.[0-9]+)?$"


def _exact_decimal_only(value: Any) -> Any:
    if isinstance(value, float):
        raise ValueError("amounts must be decimal strings such as \"1250.50\", not JSON floats")
    if isinstance(value, bool):
        raise ValueError("amounts must be decimal strings, not booleans")
    return value


PositiveAmount = Annotated[
    Decimal,
    BeforeValidator(_exact_decimal_only),
    Field(gt=0, le=ABSURD_AMOUNT, allow_inf_nan=False),
    WithJsonSchema({"type": "string", "pattern": _DECIMAL_PATTERN,
                    "description": "A decimal string greater than 0, at most 1e15."}),
]
"""A strictly positive, finite amount of an asset, below the absurdity bound."""

NonNegativeAmount = Annotated[
    Decimal,
    BeforeValidator(_exact_decimal_only),
    Field(ge=0, le=ABSURD_AMOUNT, allow_inf_nan=False),
    WithJsonSchema({"type": "string", "pattern": _DECIMAL_PATTERN,
                    "description": "A decimal string from 0 to 1e15."}),
]
"""A finite amount that may be zero (a declared expected volume, a USD value of dust)."""
