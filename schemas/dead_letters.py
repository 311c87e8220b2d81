"""Outbound dead letter: an input the worker could not use, kept with the reasons.

The original bytes are kept whole up to a bound (``agents.settings``:
``dead_letter_max_original_bytes``, 512 KiB by default, so that a dead letter always fits the
broker's default 1 MB message limit); a larger input keeps its first bytes, and says so
(``truncated``) with its size and SHA-256 so the whole can be matched with the producer's copy.
"""

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
    OUTPUT_REJECTED = "output_rejected"
    """The broker refused an alert, risk change or dead letter this input produced, for a
    reason of that record (its size, say); the input is kept here instead."""


class DeadLetter(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = 1
    source_topic: str
    partition: int
    offset: int
    key: str | None = Field(description="The message key as text (UTF-8, replaced if not); "
                            "its first 1,024 characters if longer (then key_truncated).")
    key_truncated: bool = Field(False, description="The key was longer than 1,024 characters.")
    original_b64: str = Field(description="The message value exactly as received, base64; only "
                              "its first bytes if it was larger than the bound (truncated).")
    original_size: int = Field(description="Size of the original value in bytes.")
    original_sha256: str = Field(description="SHA-256 of the whole original value, hex.")
    truncated: bool = Field(False, description="original_b64 holds only the first bytes.")
    error_kind: ErrorKind
    reasons: list[str] = Field(min_length=1)
    received_at: AwareDatetime = Field(description="Wall-clock time the worker rejected it.")
