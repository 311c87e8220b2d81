"""A LocalBroker starts, serves a produce/consume round trip with a consumer group, and stops."""

from __future__ import annotations

import asyncio
import socket
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from agents.local_broker import HOST, LocalBroker, free_port_pair

pytestmark = pytest.mark.integration


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((HOST, port)) == 0


async def test_local_broker_round_trip(tmp_path: Path) -> None:
    port = free_port_pair()
    broker = LocalBroker(port=port, data_dir=tmp_path / "broker")
    # start/stop block (first run also fetches Kafka): keep them off the event loop.
    await asyncio.to_thread(broker.start)  # raises, and so fails the test, if it cannot start
    try:
        assert _port_open(port)
        topic = f"roundtrip-{uuid.uuid4().hex[:8]}"  # auto-created by the broker

        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(topic, b"hello", key=b"k1")
        finally:
            await producer.stop()

        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=broker.bootstrap,
            group_id="roundtrip",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            message = await asyncio.wait_for(consumer.getone(), timeout=30)
            await consumer.commit()
        finally:
            await consumer.stop()

        assert (message.key, message.value) == (b"k1", b"hello")
    finally:
        await asyncio.to_thread(broker.stop)

    assert not broker.is_running()
    assert not _port_open(port)
