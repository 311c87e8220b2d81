"""Outbound dead letter: an input the worker could not use, kept whole with the reasons."""

from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class ErrorKind(StrEnum):
    INVALID_JSON = "invalid_json"
    SCHEMA_VIOLATION = "schema_violation"
    MISSING_KEY = "missing_key"
    KEY_MISMATCH = "key_mismatch"
    UNPRICED_ASSET = "unpriced_asset"
    PROCESSING_ERROR = "processing_error"
    """A valid event the core failed on (a bug): kept here rather than stopping the worker."""


class DeadLetter(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = 1
    source_topic: str
    partition: int
    offset: int
    key: str | None = Field(description="The message key as text (UTF-8, replaced if not).")
    original_b64: str = Field(description="The message value exactly as received, base64.")
    error_kind: ErrorKind
    reasons: list[str] = Field(min_length=1)
    received_at: AwareDatetime = Field(description="Wall-clock time the worker rejected it.")
