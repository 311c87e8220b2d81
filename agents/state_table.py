"""Customer state in a changelog-backed Faust table, written once per customer per batch.

Why not ``table[key] = value``: Faust then picks the changelog partition from the *current*
event of the stream, which inside a batch is the batch's last event, not the customer's. The
table must write a customer's state to the changelog partition equal to the customer's source
partition, or recovery after a rebalance restores it on the wrong worker. So writes go to the
local store and to the changelog with the source partition named explicitly. Keys and values
are raw bytes: the key is the message key itself (``customer_id``), the value the core's
compact encoding (``CustomerState.to_bytes``).
"""

from typing import Any

from streams.state import CustomerState


class StateTable:
    def __init__(self, table: Any) -> None:
        self.table = table

    def load(self, key: bytes) -> CustomerState | None:
        raw = self.table.data.get(key)
        return None if raw is None else CustomerState.from_bytes(raw)

    def save(self, key: bytes, state: CustomerState, partition: int) -> None:
        raw = state.to_bytes()
        self.table.data[key] = raw
        self.table.send_changelog(partition, key, raw)

    def __len__(self) -> int:
        return len(self.table.data)
