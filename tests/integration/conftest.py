"""Integration tests run against a real Apache Kafka broker that the session starts itself.

If the broker cannot start, every test here fails (no skipping). Each test gets its own
worker process with its own consumer group and topic names, so tests do not see each other.
"""

import asyncio
import os
import socket
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from agents import kafka_clients
from agents.local_broker import LocalBroker, free_port_pair
from agents.settings import Settings
from agents.worker_process import WorkerProcess
from schemas.alerts import Alert
from streams.synthetic import Message

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    local = LocalBroker(port=free_port_pair(), data_dir=tmp_path_factory.mktemp("broker"))
    local.start()
    yield local
    local.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Deployment:
    """One worker's topics, state directory and metrics port on the shared broker."""

    bootstrap: str
    name: str
    work_dir: Path
    metrics_port: int
    security: dict[str, str] = field(default_factory=dict)
    """Security settings by field name (``broker_security_protocol``...), for the worker's
    environment and this deployment's own clients."""

    @property
    def topics(self) -> dict[str, str]:
        return {kind: f"{self.name}-{kind}" for kind in
                ("onboarding", "transactions", "alerts", "dead-letters", "customer-risk",
                 "rules", "rules-history", "alert-decisions", "address-intel")}

    @property
    def changelog_topic(self) -> str:
        return f"{self.name}-customer-state-changelog"

    def worker(self, state_dir: str = "state") -> WorkerProcess:
        env = {
            "AMLSTREAM_APP_ID": self.name,
            "AMLSTREAM_BROKER": f"kafka://{self.bootstrap}",
            "AMLSTREAM_ONBOARDING_TOPIC": self.topics["onboarding"],
            "AMLSTREAM_TRANSACTIONS_TOPIC": self.topics["transactions"],
            "AMLSTREAM_ALERTS_TOPIC": self.topics["alerts"],
            "AMLSTREAM_DEAD_LETTER_TOPIC": self.topics["dead-letters"],
            "AMLSTREAM_RISK_TOPIC": self.topics["customer-risk"],
            "AMLSTREAM_RULES_TOPIC": self.topics["rules"],
            "AMLSTREAM_RULES_HISTORY_TOPIC": self.topics["rules-history"],
            "AMLSTREAM_DECISIONS_TOPIC": self.topics["alert-decisions"],
            "AMLSTREAM_ADDRESS_INTEL_TOPIC": self.topics["address-intel"],
            "AMLSTREAM_DATA_DIR": str(self.work_dir / state_dir),
            "AMLSTREAM_METRICS_PORT": str(self.metrics_port),
            "AMLSTREAM_COMMIT_INTERVAL_S": "0.5",
            "AMLSTREAM_SESSION_TIMEOUT_S": "6",
            "AMLSTREAM_LOG_LEVEL": os.environ.get("AMLSTREAM_TEST_WORKER_LOG_LEVEL", "warning"),
            **{f"AMLSTREAM_{name.upper()}": value for name, value in self.security.items()},
        }
        return WorkerProcess(env, self.work_dir / f"worker-{uuid.uuid4().hex[:6]}.log")

    async def produce(self, messages: list[Message]) -> None:
        """Send in order; finish one topic's run before the next, as upstream systems do."""
        producer = kafka_clients.producer(self.settings, acks="all", linger_ms=5)
        await kafka_clients.start(producer, self.settings)
        try:
            for n, message in enumerate(messages):
                await producer.send(self.topics[message.topic], message.value, key=message.key)
                if n + 1 == len(messages) or messages[n + 1].topic != message.topic:
                    await producer.flush()
        finally:
            await producer.stop()

    async def read(self, topic: str, enough: Any, timeout_s: float = 90.0,
                   quiet_s: float = 3.0) -> list[Any]:
        """Records of ``topic`` from the start, once ``enough(records)`` has held for
        ``quiet_s`` with nothing new (so extra records would be seen), or at the timeout."""
        consumer = kafka_clients.consumer(self.settings, topic, auto_offset_reset="earliest",
                                          enable_auto_commit=False)
        await kafka_clients.start(consumer, self.settings)
        records: list[Any] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        last_new = loop.time()
        try:
            while loop.time() < deadline:
                batch = await consumer.getmany(timeout_ms=300)
                for partition_records in batch.values():
                    records.extend(partition_records)
                    last_new = loop.time()
                if enough(records) and loop.time() - last_new >= quiet_s:
                    break
        finally:
            await consumer.stop()
        return records

    async def alerts_for(self, customer_id: str) -> list[Alert]:
        """The alerts of one customer, once at least one came and the topic went quiet."""
        records = await self.read(
            self.topics["alerts"],
            lambda rs: any(Alert.model_validate_json(r.value).customer_id == customer_id
                           for r in rs), timeout_s=60, quiet_s=1)
        return [a for a in (Alert.model_validate_json(r.value) for r in records)
                if a.customer_id == customer_id]

    @property
    def settings(self) -> Settings:
        """Settings naming this deployment's broker and topics (for the CLI's helpers)."""
        return Settings(broker=f"kafka://{self.bootstrap}", rules_topic=self.topics["rules"],
                        rules_history_topic=self.topics["rules-history"],
                        decisions_topic=self.topics["alert-decisions"],
                        risk_topic=self.topics["customer-risk"],
                        alerts_topic=self.topics["alerts"],
                        onboarding_topic=self.topics["onboarding"],
                        transactions_topic=self.topics["transactions"],
                        dead_letter_topic=self.topics["dead-letters"],
                        address_intel_topic=self.topics["address-intel"],
                        **self.security)  # type: ignore[arg-type]

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics",
                                    timeout=5) as response:
            text = response.read().decode()
        return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
                for family in text_string_to_metric_families(text) for sample in family.samples}

    def metrics_text(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics",
                                    timeout=5) as response:
            return str(response.read().decode())


@pytest.fixture
def deployment(broker: LocalBroker, tmp_path: Path) -> Deployment:
    return Deployment(bootstrap=broker.bootstrap, name=f"it-{uuid.uuid4().hex[:8]}",
                      work_dir=tmp_path, metrics_port=free_port())


@pytest.fixture
def new_deployment(tmp_path: Path) -> Any:
    """A factory of deployments on another broker (e.g. a secured one) and with security
    settings: ``new_deployment(broker, {"broker_security_protocol": "SASL_SSL", ...})``."""
    def make(broker: LocalBroker, security: dict[str, str]) -> Deployment:
        return Deployment(bootstrap=broker.bootstrap, name=f"it-{uuid.uuid4().hex[:8]}",
                          work_dir=tmp_path, metrics_port=free_port(), security=security)
    return make


@pytest.fixture
def request_cleanup() -> Iterator[Any]:
    """Register a call to make when the test ends, however it ends (e.g. stop a worker)."""
    calls: list[Any] = []
    yield calls.append
    for call in reversed(calls):
        call()


@pytest.fixture
def running_worker(deployment: Deployment) -> Iterator[WorkerProcess]:
    worker = deployment.worker()
    worker.start()
    yield worker
    worker.stop()
