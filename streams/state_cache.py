"""A write-back cache of decoded customer states in front of a store, with a journal that
makes a failed event undoable: the worker's and the backtest's state, one mechanism.

Decoded states stay in memory; each customer changed since the last ``snapshot`` is encoded
once per snapshot (the caller writes the snapshot to its store). What changed a customer since
the latest snapshot is kept in ``journal`` (opaque here: the replay's events), so that its
state before a failed event can be rebuilt: the latest snapshot's (or the store's) state plus
those changes (``durable``, ``replace``; ``streams.replay`` does the rebuilding).
"""

import itertools
import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from streams.state import CustomerState

log = logging.getLogger(__name__)

Snapshot = list[tuple[bytes, Any, bytes]]
"""(key, one of the customer's input records, encoded state) of each changed customer."""

Stored = Callable[[bytes, Any], bytes | None]
"""The encoded state of a key in the store, if any; given one of the customer's records (the
worker's store picks its partition database from it)."""


class StateCache:
    """Of customers (S1) by default; ``decode`` reads another stage's states (``streams.network``:
    counterparties, flows), whose states have the same ``to_bytes``."""

    def __init__(self, stored: Stored, max_cached: int = 100_000,
                 decode: Callable[[bytes], Any] = CustomerState.from_bytes) -> None:
        self.stored = stored
        self.decode = decode
        self.max_cached = max_cached
        self.cached: OrderedDict[bytes, Any] = OrderedDict()
        self.dirty: dict[bytes, Any] = {}
        """Customers changed since the last snapshot -> one of their records."""
        self.journal: dict[bytes, list[Any]] = {}
        """Customer -> what changed it since the last snapshot, in order."""
        self.latest_cut: dict[bytes, bytes] = {}
        """The encoded states of the latest snapshot: newer than the store until written."""

    def load(self, key: bytes, record: Any) -> Any:
        """The state of ``key``; ``record`` is an input record of this customer."""
        state = self.cached.get(key)
        if state is not None:
            self.cached.move_to_end(key)
            return state
        raw = self.stored(key, record)
        if raw is None:
            return None
        state = self.decode(raw)
        self.cached[key] = state
        return state

    def mark_changed(self, key: bytes, state: Any, record: Any, change: Any) -> None:
        """``change`` made ``state`` of ``key``; called after ``load`` of the same key, which
        made it the most recently used (a new key is added last)."""
        self.cached[key] = state
        self.dirty[key] = record
        changes = self.journal.get(key)
        if changes is None:
            self.journal[key] = [change]
        else:
            changes.append(change)

    def durable(self, key: bytes, record: Any) -> Any:
        """``key``'s state as of the latest snapshot (or in the store): the cached one less
        the changes in ``journal[key]``. The cache is left as it is."""
        raw = self.latest_cut.get(key)
        if raw is None:
            raw = self.stored(key, record)
        return None if raw is None else self.decode(raw)

    def replace(self, key: bytes, state: Any, changes: list[Any]) -> None:
        """Put a rebuilt state (``durable`` plus ``changes``) in place of the cached one;
        ``None`` leaves the customer to be loaded again from the store."""
        if state is None:
            self.cached.pop(key, None)
        else:
            self.cached[key] = state
        if changes:
            self.journal[key] = changes
        else:
            self.journal.pop(key, None)

    def snapshot(self) -> Snapshot:
        """Every customer changed since the last snapshot, encoded now; none is dirty after."""
        dirty, self.dirty = self.dirty, {}
        self.journal.clear()
        snapshot = [(key, record, self.cached[key].to_bytes()) for key, record in dirty.items()]
        self.latest_cut = {key: raw for key, _, raw in snapshot}
        return snapshot

    def evict(self) -> None:
        """Keep the cache to ``max_cached``, least recently used first; a customer changed
        since the last snapshot stays (its newest state is not in the store yet)."""
        excess = len(self.cached) - self.max_cached
        if excess <= 0:
            return
        for key in list(itertools.islice(self.cached, excess)):
            if key not in self.dirty:
                del self.cached[key]

    def forget(self) -> None:
        """Drop the cache (after a rebalance another worker may have moved a customer on)."""
        self.cached.clear()
        self.dirty.clear()
        self.journal.clear()
        self.latest_cut.clear()


def rebuild(states: StateCache, key: bytes, record: Any, reapply: Callable[[Any, Any], Any]
            ) -> None:
    """Put ``key``'s state back as it was before a failed change: the durable state plus the
    changes journaled since, each applied again with ``reapply(state, change) -> state`` (the
    core is deterministic). If even that fails, the state is left to be read again."""
    changes = states.journal.get(key, [])
    try:
        state = states.durable(key, record)
        for change in changes:
            state = reapply(state, change)
    except Exception:
        log.exception("could not rebuild the state after a failure; it is reloaded")
        state, changes = None, []
    states.replace(key, state, changes)
