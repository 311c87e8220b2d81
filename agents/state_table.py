"""Customer state in a changelog-backed Faust table, written once per customer per batch.

Faust decides where a table read or write goes (the changelog partition, and the RocksDB
partition database) from the stream's *current event*. Inside a batch that would be the batch's last
event, not the customer's, and recovery after a rebalance would then restore the state on the
wrong worker. So around every read and write of a customer we make that customer's own event
current:
the write lands in the changelog partition of the customer's source partition. Keys and
values are raw bytes: the key is the message key itself (``customer_id``), the value the
core's compact encoding (``CustomerState.to_bytes``).
"""

import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from faust.streams import _current_event  # no public setter; see the module docstring

from streams.state import CustomerState


class StateTable:
    def __init__(self, table: Any) -> None:
        self.table = table

    def load(self, key: bytes, event: Any) -> CustomerState | None:
        """The state of ``key``; ``event`` is an event of this customer from the batch."""
        with _as_current(event):
            raw = self.table.get(key)
        return None if raw is None else CustomerState.from_bytes(raw)

    def save(self, key: bytes, state: CustomerState, event: Any) -> None:
        with _as_current(event):
            self.table[key] = state.to_bytes()

    def __len__(self) -> int:
        return len(self.table)


@contextmanager
def _as_current(event: Any) -> Iterator[None]:
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)
