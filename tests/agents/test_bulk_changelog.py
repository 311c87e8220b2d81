"""Changelog records produced in bulk (``agents.app._bulk_sender``), against a stand-in for
aiokafka's producer; on a real broker every integration test writes the changelog this way,
and the kill-and-recover test rebuilds the state from it."""

import asyncio
from types import SimpleNamespace

import pytest

from agents.app import _bulk_sender


class _Batch:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.records: list[tuple[bytes, bytes]] = []

    def append(self, *, key: bytes, value: bytes, timestamp: None) -> object | None:
        if len(self.records) == self.capacity or len(value) > 100:
            return None
        self.records.append((key, value))
        return object()

    def record_count(self) -> int:
        return len(self.records)


class _Producer:
    """Gives each batch the next offsets of its partition, as the broker would."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.sent: list[tuple[str, int, list[tuple[bytes, bytes]]]] = []
        self.next_offset = 100

    def create_batch(self) -> _Batch:
        return _Batch(self.capacity)

    async def send_batch(self, batch: _Batch, topic: str, *, partition: int) -> asyncio.Future:
        self.sent.append((topic, partition, batch.records))
        delivered = asyncio.get_running_loop().create_future()
        delivered.set_result(SimpleNamespace(offset=self.next_offset))
        self.next_offset += batch.record_count()
        return delivered


def _app(producer: _Producer) -> SimpleNamespace:
    return SimpleNamespace(producer=SimpleNamespace(_ensure_producer=lambda: producer))


async def test_records_go_in_order_as_whole_batches_and_report_their_last_offsets():
    producer = _Producer(capacity=2)
    send_records = _bulk_sender(_app(producer), "customer-state-changelog")
    records = [(f"k{n}".encode(), b"state") for n in range(5)]

    offsets = await asyncio.gather(*await send_records(3, records))

    assert [(topic, partition) for topic, partition, _ in producer.sent] == [
        ("customer-state-changelog", 3)] * 3
    assert [record for _, _, batch in producer.sent for record in batch] == records
    assert offsets == [101, 103, 104]  # the last record of each batch (offsets 100-104)


@pytest.mark.parametrize("before", [0, 1, 2])
async def test_a_state_larger_than_a_batch_is_refused_loudly(before):
    producer = _Producer(capacity=2)
    send_records = _bulk_sender(_app(producer), "customer-state-changelog")
    records = [(b"k", b"state")] * before + [(b"big", b"x" * 101)]

    with pytest.raises(ValueError, match="exceeds a producer batch"):
        await send_records(0, records)
    assert all(batch for _, _, batch in producer.sent)  # no empty batch sent
