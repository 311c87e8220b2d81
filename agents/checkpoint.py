"""The flush, acknowledgement and commit protocol, in one place: what makes an event "done".

An input event is done when its effects are durable: the alerts, risk changes and dead letters
it produced are on the broker, and the state of its customer that includes it is in the store
and its changelog. Only then is its offset released for commit. The steps, in order:

1. ``sent(deliveries)``: the batch's outputs are handed to the producer (not awaited: the next
   batch goes on while the broker acknowledges them).
2. ``applied(messages)``: the batch's input messages (applied, replayed or dead-lettered).
3. ``cut()`` every ``interval_s`` (or when too many customers changed): takes the outputs sent
   so far, a snapshot of every customer changed since the last cut (encoded there and then:
   ``StateTable.snapshot``) and the messages applied so far; then, in the background,
   4. awaits the outputs until the broker has every one of them,
   5. writes the snapshot to the store and the changelog (awaited),
   6. acknowledges the messages (``Consumer.ack``, Faust's own offset bookkeeping).
7. Faust's commit (every ``commit_interval_s``, and at a rebalance or a stop) commits, per
   partition, the offset after the highest run of acknowledged messages.

So an offset is never committed ahead of its event's effects, and an alert is never behind the
state that records it was raised: a crash anywhere re-reads the events after the committed
offset, and re-sends the same alerts (same ids) rather than skipping them. One cut is written
at a time; a failed write leaves its messages unacknowledged and is raised by the next step
(``raise_if_failed``), which stops the worker.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from agents import metrics
from agents.state_table import Snapshot, StateTable


class Checkpointer:
    def __init__(self, states: Sequence[StateTable], ack: Callable[[Any], Any], interval_s: float,
                 max_dirty: int, before_cut: Callable[[], None] = lambda: None) -> None:
        self.states = states
        """The customer states first, then the network stages' (``agents.network_stages``)."""
        self.ack = ack
        """Release a message's offset for commit (its one reference: ``agents.fast_path``)."""
        self.interval_s = interval_s
        self.max_dirty = max_dirty
        self._applied: list[Any] = []
        self._in_flight: list[Awaitable[Any]] = []
        self._cut_at = time.monotonic()
        self._writer: asyncio.Future[None] | None = None
        self.before_cut = before_cut
        """Called at each cut, first: what must go with it into the tables (their meta)."""

    def _dirty(self) -> int:
        return sum(len(state.dirty) for state in self.states)

    def sent(self, deliveries: list[Awaitable[Any]]) -> None:
        self._in_flight.extend(deliveries)

    def applied(self, messages: list[Any]) -> None:
        self._applied.extend(messages)

    def maybe_cut(self) -> None:
        """Cut now if one is due and none is being written."""
        due = bool(self._applied or self._in_flight) and (
            time.monotonic() - self._cut_at >= self.interval_s
            or self._dirty() >= self.max_dirty)
        if due and not self.writing():
            self.cut()

    def writing(self) -> bool:
        return self._writer is not None and not self._writer.done()

    def raise_if_failed(self) -> None:
        """A write that failed (broker gone, a send refused) left its events unacknowledged;
        the caller stops the worker, which then re-reads them from the committed offsets."""
        if self._writer is not None and self._writer.done():
            self._writer.result()

    def cut(self) -> None:
        """Steps 3 to 6 (see the module docstring); the writing goes on in the background."""
        self.before_cut()
        in_flight, self._in_flight = self._in_flight, []
        applied, self._applied = self._applied, []
        snapshots = [state.snapshot() for state in self.states]
        self._cut_at = time.monotonic()
        self._writer = asyncio.ensure_future(self._write(in_flight, snapshots, applied))

    async def _write(self, in_flight: list[Awaitable[Any]], snapshots: list[Snapshot],
                     applied: list[Any]) -> None:
        started = time.monotonic()
        await asyncio.gather(*in_flight)
        for state, snapshot in zip(self.states, snapshots, strict=True):
            await state.write(snapshot)
        for message in applied:
            self.ack(message)
        metrics.CHECKPOINT_WRITE.observe(time.monotonic() - started)
        metrics.CUSTOMERS_IN_STATE.set(self.states[0].customers())

    async def flush(self) -> None:
        """Cut and write everything applied so far; return when it is written."""
        if self._writer is not None:
            await self._writer
        if self._applied or self._in_flight or self._dirty():
            self.cut()
            assert self._writer is not None
            await self._writer
