"""Read events from JSON Lines: one event per line, for backtests and evaluations.

A line is either an envelope ``{"topic": "onboarding"|"transactions", "key": optional,
"event": {...}}`` or an event object with a ``"topic"`` field of its own. The key defaults to
the event's ``customer_id``. Blank lines are skipped. A line that is none of these (not JSON,
not an object, no known topic) is still yielded, as topic ``transactions``, no key and its own
bytes, so that the core rejects it (dead-letters it) like any other bad input: a file is never
refused for one bad line.
"""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

TOPICS = ("onboarding", "transactions")
MALFORMED_TOPIC = "transactions"


def _parse(raw: bytes) -> tuple[str, bytes | None, bytes] | None:
    try:
        document: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(document, dict) or document.get("topic") not in TOPICS:
        return None
    event, key = ((document["event"], document.get("key")) if "event" in document
                  else (document, None))
    if not isinstance(event, dict):
        return None
    if key is None:
        key = event.get("customer_id")
    value = orjson.dumps(event) if event is not document else raw
    return document["topic"], key.encode() if isinstance(key, str) else None, value


def read_events(path: Path) -> Iterator[tuple[int, str, bytes | None, bytes]]:
    """(line number from 1, topic kind, key, raw value) per non-blank line; raises OSError if
    the file cannot be read."""
    with path.open("rb") as file:
        for number, line in enumerate(file, start=1):
            raw = line.strip()
            if not raw:
                continue
            parsed = _parse(raw)
            if parsed is None:
                yield number, MALFORMED_TOPIC, None, raw
            else:
                yield number, *parsed
