"""Building blocks of the rule configuration: durations, windows, the strict base model."""

import re
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

COUNTERPARTIES_KEPT = 64
"""Distinct counterparties the customer state remembers per direction; counts saturate here."""
NEAR_THRESHOLD_KEPT = 32
"""Near-threshold transfers the customer state keeps, so the most structuring can count."""

_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d)\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration_s(value: Any) -> Any:
    """``"24h"`` -> 86400; integers are taken as seconds."""
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match is None:
            raise ValueError(f"duration {value!r} is not of the form 30s, 15m, 24h or 7d")
        return int(match.group(1)) * _UNIT_S[match.group(2)]
    return value


DurationS = Annotated[int, BeforeValidator(parse_duration_s), Field(ge=0)]


class Window(StrEnum):
    """The rolling windows the customer state keeps."""

    H1 = "1h"
    H24 = "24h"
    D7 = "7d"
    D30 = "30d"


class StrictConfig(BaseModel):
    """Configuration rejects unknown fields: a typo must not silently disable a setting."""

    model_config = ConfigDict(extra="forbid", frozen=True)
