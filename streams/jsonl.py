"""Events as JSON Lines: the backtest's input and output format.

One event a line, wrapped with the topic it belongs to::

    {"topic": "onboarding", "event": {"event_id": "o-1", "customer_id": "c-1", ...}}
    {"topic": "transactions", "event": {"event_id": "t-1", "customer_id": "c-1", ...}}
    {"topic": "alert-decisions", "event": {"event_id": "d-1", "customer_id": "c-1", ...}}

An event object with a ``"topic"`` field of its own is read the same way. The Kafka key is the
event's ``customer_id`` (as upstream producers must set it), unless the line gives ``"key"``
(a string, or null for none). A line that is not such an object is not an
error of the reader: it is yielded as an undecodable transaction with the line's bytes, so
the replay path dead-letters it with its line number, as the worker would a bad record.
"""

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

TOPICS = ("onboarding", "transactions", "alert-decisions")

Line = tuple[int, str, bytes | None, bytes]
"""(line number from 1, topic kind, message key, message value)."""


def parse_line(number: int, line: bytes) -> Line:
    try:
        wrapped = orjson.loads(line)
    except orjson.JSONDecodeError:
        return number, "transactions", None, line
    if not (isinstance(wrapped, dict) and wrapped.get("topic") in TOPICS):
        return number, "transactions", None, line
    if "event" not in wrapped:  # an event with its own "topic"
        wrapped = {"topic": wrapped["topic"], "event": wrapped}
    if not isinstance(wrapped["event"], dict):
        return number, "transactions", None, line
    event: dict[str, Any] = wrapped["event"]
    if "key" in wrapped:
        key = wrapped["key"]
        key_bytes = key.encode() if isinstance(key, str) else None
    else:
        customer = event.get("customer_id")
        key_bytes = customer.encode() if isinstance(customer, str) else None
    return number, wrapped["topic"], key_bytes, orjson.dumps(event)


def read_events(path: Path) -> Iterator[Line]:
    """The lines of ``path`` (blank lines skipped); ``OSError`` if it cannot be read."""
    with path.open("rb") as lines:
        for number, line in enumerate(lines, 1):
            if line.strip():
                yield parse_line(number, line.rstrip(b"\r\n"))


def message_line(topic: str, key: bytes | None, value: bytes) -> bytes:
    """One line for a Kafka message as it would be produced: its event wrapped with its topic
    (and its key when it is not the event's customer); a value that is not a JSON object is
    written as it is (on one line), and will be dead-lettered as it would be from Kafka."""
    try:
        event = orjson.loads(value)
    except orjson.JSONDecodeError:
        event = None
    if not isinstance(event, dict):
        return value.replace(b"\n", b" ").replace(b"\r", b" ") + b"\n"
    wrapped: dict[str, Any] = {"topic": topic, "event": event}
    customer = event.get("customer_id")
    if key is None or not isinstance(customer, str) or key != customer.encode():
        wrapped["key"] = None if key is None else key.decode("utf-8", "replace")
    return orjson.dumps(wrapped) + b"\n"


def write_events(path: Path, events: Iterable[tuple[str, dict[str, Any]]]) -> int:
    """Write (topic kind, event) pairs as JSON Lines; return how many."""
    count = 0
    with path.open("wb") as out:
        for topic, event in events:
            out.write(orjson.dumps({"topic": topic, "event": event}) + b"\n")
            count += 1
    return count
