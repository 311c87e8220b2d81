"""The replay path of the network stages S2 (``counterparty``) and S3 (``flow``), the same in
the worker and the backtest, as ``streams.replay`` is for S1:

- decoding an internal record (``records.decode``); one this version cannot read is rejected
  (the caller dead-letters it) and acknowledged;
- ordering: the ``InternalAligner`` releases each partition's records in order-key order once
  every producer has promised nothing lower can come, so a stage applies the same sequence
  whatever the timing of its input topic;
- applying: ``counterparty.apply_leg`` or ``flow.apply_flow`` on the entity's state (a
  counterparty's, or a customer's provenance), replays recognised by the entity's last order
  key; a failure leaves the entity's state as it was (``state_cache.rebuild``);
- outputs: alerts, and (S3) provenance for the next customer and path alerts for the
  customers on a cycle or chain found, as ``Emitted`` records.

Which stage owns what: S2 owns ``<app>-counterparty-state`` (key ``a:<address>`` or
``c:<customer>``), reads ``cp-legs``; S3 owns ``<app>-flow-state`` (key customer id), reads
and writes ``flows``.
"""

import logging
from collections.abc import Sequence
from typing import Any

from schemas.alerts import Alert
from schemas.dead_letters import ErrorKind
from streams.intake import Rejected
from streams.intel import Listing
from streams.network.counterparty import apply_leg, screen_listing
from streams.network.emit import FLOWS, Emitted
from streams.network.flow import apply_flow
from streams.network.internal_order import InternalAligner
from streams.network.records import Envelope, FormatError, Leg, Marker, decode
from streams.partitioning import partition_of
from streams.replay import StepOutcome
from streams.ruleset import CompiledRules
from streams.state_cache import StateCache, rebuild

log = logging.getLogger(__name__)

COUNTERPARTY = "counterparty"
FLOW = "flow"


def entity_key(stage: str, envelope: Envelope) -> bytes:
    """The state an internal record changes: its counterparty (S2) or customer (S3)."""
    body = envelope.body
    if stage == COUNTERPARTY:
        assert isinstance(body, Leg) and body.cp_key is not None
        return body.cp_key.encode()
    return envelope.key.encode()


class StageReplay:
    def __init__(self, stage: str, rules: CompiledRules, states: StateCache,
                 aligner: InternalAligner, hop_delay_s: int) -> None:
        self.stage = stage
        self.rules = rules
        self.states = states
        self.aligner = aligner
        self.hop_delay_s = hop_delay_s
        self.partitions = aligner.partitions

    def admit(self, records: Sequence[Any], outcome: StepOutcome) -> None:
        for record in records:
            try:
                item = decode(record.value)
                if not self._fits(item):
                    raise FormatError(f"a record of another stage on the {self.stage} "
                                      f"stage's topic")
            except FormatError as exc:
                outcome.rejected.append((record, Rejected(ErrorKind.SCHEMA_VIOLATION,
                                                          [str(exc)])))
                outcome.consumed[(record.topic, "dead_lettered")] += 1
                outcome.done.append(record)
                continue
            self.aligner.add(record.partition, item, record)

    def _fits(self, item: Envelope | Marker) -> bool:
        """S2 applies only legs with a counterparty; S3 any record addressed to a customer."""
        if isinstance(item, Marker) or self.stage != COUNTERPARTY:
            return True
        return isinstance(item.body, Leg) and item.body.cp_key is not None

    def apply_released(self, outcome: StepOutcome) -> int:
        """Apply, in order, what the aligner lets go now; return how many records."""
        released = self.aligner.release()
        for partition, envelope, record in released:
            try:
                self._apply_one(partition, envelope, record, outcome)
            except Rejected as rejected:
                outcome.rejected.append((record, rejected))
                outcome.consumed[(record.topic, "dead_lettered")] += 1
            else:
                outcome.consumed[(record.topic, "processed")] += 1
            outcome.done.append(record)
        outcome.done.extend(self.aligner.finished())
        return len(released)

    def _apply(self, state: Any, envelope: Envelope, partition: int) -> tuple[Any, Any]:
        if self.stage == COUNTERPARTY:
            return apply_leg(state, envelope, self.rules)
        return apply_flow(state, envelope, self.rules, f"f{partition}", self.hop_delay_s)

    def _reapply(self, state: Any, change: tuple[Any, Any]) -> Any:
        """One journaled change again: an internal record, or a listing screened."""
        what, where = change
        if isinstance(what, Listing):
            screen_listing(state, where, what, self.rules)
            return state
        return self._apply(state, what, where)[0]

    def screen(self, cp_key: str, listing: Listing, record: Any) -> list[Alert]:
        """S2: retroactive screening of one counterparty for a new listing (``record``: one of
        the counterparty's partition, for the store)."""
        key = cp_key.encode()
        state = self.states.load(key, record)
        if state is None:
            return []
        alerts = screen_listing(state, cp_key, listing, self.rules)
        self.states.mark_changed(key, state, record, (listing, cp_key))
        return alerts

    def _apply_one(self, partition: int, envelope: Envelope, record: Any,
                   outcome: StepOutcome) -> None:
        key = entity_key(self.stage, envelope)
        try:
            state, result = self._apply(self.states.load(key, record), envelope, partition)
        except Exception as exc:
            log.exception("the %s stage failed on %s/%d offset %d", self.stage, record.topic,
                          record.partition, record.offset)
            rebuild(self.states, key, record, self._reapply)
            reason = f"internal error {type(exc).__name__} while applying the record"
            raise Rejected(ErrorKind.PROCESSING_ERROR, [reason]) from exc
        if result.replayed:
            outcome.replayed[record.topic] += 1
            return
        self.states.mark_changed(key, state, record, (envelope, partition))
        outcome.alerts.extend((alert, record) for alert in result.alerts)
        for emitted in getattr(result, "emitted", ()):
            recipient = emitted.key.encode()
            outcome.internal.append((Emitted(FLOWS, partition_of(recipient, self.partitions),
                                             recipient, emitted), record))
