"""The worker and the CLI against a SASL_SSL broker (SCRAM-SHA-512 and SCRAM-SHA-256 users, a
CA of its own, host names checked) that enforces ACLs: with exactly the ACLs the README lists
per principal, alerts flow; a wrong password, an untrusted certificate or a plaintext client
are refused with a message naming the setting; no password reaches a log."""

import asyncio
import dataclasses
import os
import secrets
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError, TopicAuthorizationFailedError
from aiokafka.protocol.admin import CreateAclsRequest

from agents import kafka_clients
from agents.kafka_clients import KafkaSecurityError
from agents.local_broker import LocalBroker, ScramUser, free_port_pair
from agents.settings import Settings
from agents.topics import ensure_topics
from schemas.alerts import Alert
from streams.synthetic import planted_scenarios, to_messages

pytestmark = pytest.mark.integration

END = datetime.now(UTC).replace(microsecond=0)
WORKER_PASSWORD = f"worker-{secrets.token_hex(8)}"
READER_PASSWORD = f"reader-{secrets.token_hex(8)}"
UPSTREAM_PASSWORD = f"upstream-{secrets.token_hex(8)}"
PUBLISHER_PASSWORD = f"publisher-{secrets.token_hex(8)}"
ADMIN_PASSWORD = f"admin-{secrets.token_hex(8)}"
WRONG_PASSWORD = f"wrong-{secrets.token_hex(8)}"
WORKER_EXIT_TIMEOUT_S = 30.0


@pytest.fixture(scope="module")
def secured_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    broker = LocalBroker(port=free_port_pair(), data_dir=tmp_path_factory.mktemp("sasl-ssl"),
                         security="sasl_ssl", authorizer=True, admin_password=ADMIN_PASSWORD,
                         scram_users=[ScramUser("SCRAM-SHA-512", "amlstream", WORKER_PASSWORD),
                                      ScramUser("SCRAM-SHA-256", "reader", READER_PASSWORD),
                                      ScramUser("SCRAM-SHA-512", "upstream", UPSTREAM_PASSWORD),
                                      ScramUser("SCRAM-SHA-512", "publisher",
                                                PUBLISHER_PASSWORD)])
    broker.start()  # raises (the tests fail) if the broker cannot start
    yield broker
    broker.stop()


def _security(broker: LocalBroker, user: str = "amlstream", password: str = WORKER_PASSWORD,
              mechanism: str = "SCRAM-SHA-512") -> dict[str, str]:
    return {"broker_security_protocol": "SASL_SSL", "broker_sasl_mechanism": mechanism,
            "broker_username": user, "broker_password": password,
            "broker_ssl_cafile": str(broker.ca_file)}


def _cli(deployment: Any, *args: str) -> subprocess.CompletedProcess[str]:
    """``amlstream ARGS`` in a child process, with the deployment's settings in its env."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AMLSTREAM_")}
    env.update({f"AMLSTREAM_{name.upper()}": value
                for name, value in deployment.security.items()})
    env.update(AMLSTREAM_BROKER=f"kafka://{deployment.bootstrap}",
               AMLSTREAM_ALERTS_TOPIC=deployment.topics["alerts"],
               AMLSTREAM_RULES_TOPIC=deployment.topics["rules"],
               AMLSTREAM_RULES_HISTORY_TOPIC=deployment.topics["rules-history"])
    return subprocess.run([sys.executable, "-m", "agents.cli", *args], env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("amlstream: ")]
    assert len(lines) == 1, result.stderr
    return lines[0]


# Kafka's protocol codes (org.apache.kafka.common.acl / resource).
TOPIC, GROUP = 2, 3
READ, WRITE, CREATE = 3, 4, 5
LITERAL, PREFIXED = 3, 4
ALLOW = 3


async def _create_acls(settings: Settings,
                       acls: list[tuple[str, int, str, int, tuple[int, ...]]]) -> None:
    """(principal, resource type, name, pattern type, operations) ACLs, from Python: one JVM
    per ``kafka-acls`` call costs seconds on a small machine."""
    admin = kafka_clients.admin(settings)
    await kafka_clients.start(admin, settings)
    try:
        for principal, resource_type, name, pattern_type, operations in acls:
            for operation in operations:
                response = await admin._send_request(CreateAclsRequest(
                    resource_type, name, pattern_type, principal, "*", operation, ALLOW))
                assert [error for error, _ in response.creation_responses] == [0], response
    finally:
        await admin.close()


async def _grant_the_readme_acls(broker: LocalBroker, deployment: Any, app_id: str) -> None:
    """The topics exist (made by an operator, here the super user ``admin``); each principal
    gets the ACLs the README's Security section lists, and no more (Read and Write imply
    Describe)."""
    as_admin = dataclasses.replace(deployment, security=_security(broker, "admin",
                                                                   ADMIN_PASSWORD))
    await ensure_topics(as_admin.settings)
    topics = deployment.topics
    worker, upstream, publisher = "User:amlstream", "User:upstream", "User:publisher"
    grants = [
        *((worker, TOPIC, topics[name], LITERAL, (READ,))
          for name in ("onboarding", "transactions", "alert-decisions", "rules",
                       "address-intel")),
        (worker, GROUP, app_id, LITERAL, (READ,)),
        *((worker, TOPIC, topics[name], LITERAL, (WRITE,))
          for name in ("alerts", "dead-letters", "customer-risk")),
        (worker, TOPIC, f"{app_id}-", PREFIXED, (CREATE, READ, WRITE)),
        *((upstream, TOPIC, topics[name], LITERAL, (WRITE,))
          for name in ("onboarding", "transactions")),
        *((publisher, TOPIC, topics[name], LITERAL, (READ, WRITE))
          for name in ("rules", "rules-history")),
    ]
    # The reader's through scripts/kafka-local acl (kafka-acls), meanwhile.
    await asyncio.gather(
        _create_acls(as_admin.settings, grants),
        asyncio.to_thread(broker.acl, "--add", "--allow-principal", "User:reader",
                          "--operation", "Read", "--topic", topics["alerts"],
                          "--topic", topics["rules"]))


async def test_worker_and_cli_on_a_sasl_ssl_broker(secured_broker: LocalBroker, new_deployment,
                                                   request_cleanup) -> None:
    deployment = new_deployment(secured_broker, _security(secured_broker))
    worker = deployment.worker()
    # An app id that is not a prefix of the topic names: the prefixed ACL on "<app_id>-"
    # then covers Faust's internal topics only.
    app_id = f"app-{deployment.name}"
    worker.env["AMLSTREAM_APP_ID"] = app_id
    worker.env["AMLSTREAM_LOG_LEVEL"] = "info"  # the most it logs: the password must not be there
    await _grant_the_readme_acls(secured_broker, deployment, app_id)
    worker.start()
    request_cleanup(worker.stop)

    planted = planted_scenarios(END)
    upstream = dataclasses.replace(deployment, security=_security(
        secured_broker, "upstream", UPSTREAM_PASSWORD))
    await upstream.produce(to_messages(planted))
    expected = Counter((s.customer_id, rule) for s in planted for rule in s.expected_rules)

    # Another user, another mechanism: SCRAM-SHA-256.
    reader = dataclasses.replace(deployment, security=_security(
        secured_broker, "reader", READER_PASSWORD, "SCRAM-SHA-256"))
    records = await reader.read(deployment.topics["alerts"],
                                lambda r: len(r) >= sum(expected.values()), timeout_s=60.0,
                                quiet_s=1.0)
    alerts = [Alert.model_validate_json(r.value) for r in records]
    assert Counter((a.customer_id, a.rule_id) for a in alerts) == expected
    assert worker.running, worker.log_tail()

    # The ACLs are enforced: the reader may not write events.
    denied = kafka_clients.producer(reader.settings, request_timeout_ms=10_000)
    await kafka_clients.start(denied, reader.settings)
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            await denied.send_and_wait(deployment.topics["transactions"], b"{}", key=b"k")
    finally:
        await denied.stop()

    publisher = dataclasses.replace(deployment, security=_security(
        secured_broker, "publisher", PUBLISHER_PASSWORD))
    published = _cli(publisher, "rules", "publish", str(Settings().rules_path))
    assert published.returncode == 0, published.stderr
    assert published.stdout.startswith(f"published to {deployment.topics['rules']}")

    tail, show = await asyncio.gather(
        asyncio.to_thread(_cli, reader, "alerts", "--from-beginning", "--idle-exit-s", "3"),
        asyncio.to_thread(_cli, reader, "rules", "show"))
    assert tail.returncode == 0, tail.stderr
    assert Counter(line.split()[3] for line in tail.stdout.splitlines()) == Counter(
        rule for _, rule in expected.elements())
    assert show.returncode == 0, show.stderr
    assert show.stdout.startswith("# in force: version "), show.stdout

    worker.stop()
    log = worker.log_path.read_text(errors="replace")
    assert "Authenticated as amlstream via SCRAM-SHA-512" in log  # the log is really verbose
    assert WORKER_PASSWORD not in log
    broker_log = (secured_broker.ca_file.parent.parent / "broker.log").read_text(errors="replace")
    assert WORKER_PASSWORD not in broker_log and READER_PASSWORD not in broker_log
    assert ADMIN_PASSWORD not in broker_log and PUBLISHER_PASSWORD not in broker_log


async def test_wrong_password_untrusted_ca_and_plaintext_are_refused(
        secured_broker: LocalBroker, new_deployment, request_cleanup) -> None:
    wrong = new_deployment(secured_broker, _security(secured_broker, password=WRONG_PASSWORD))

    # The worker: a one-line message naming the password setting, exit 2, at once.
    worker = wrong.worker()
    started = time.monotonic()
    worker.start()
    request_cleanup(worker.kill)
    assert worker.process is not None
    returncode = worker.process.wait(WORKER_EXIT_TIMEOUT_S)
    log = worker.log_path.read_text(errors="replace")
    assert returncode == 2, log
    message = [line for line in log.splitlines() if line.startswith("amlstream: ")]
    assert len(message) == 1, log
    assert "refused the login of AMLSTREAM_BROKER_USERNAME=amlstream" in message[0]
    assert "AMLSTREAM_BROKER_PASSWORD" in message[0]
    assert WRONG_PASSWORD not in log
    assert time.monotonic() - started < WORKER_EXIT_TIMEOUT_S

    # The CLI and a client of our own, likewise.
    show = _cli(wrong, "rules", "show")
    assert show.returncode == 2
    assert "AMLSTREAM_BROKER_PASSWORD" in _one_line_error(show)
    assert WRONG_PASSWORD not in show.stderr + show.stdout
    producer = kafka_clients.producer(wrong.settings)
    with pytest.raises(KafkaSecurityError, match="AMLSTREAM_BROKER_PASSWORD"):
        await kafka_clients.start(producer, wrong.settings)

    # A mechanism the user has no credentials for is a failed login as well.
    sha256 = new_deployment(secured_broker, _security(secured_broker, mechanism="SCRAM-SHA-256"))
    with pytest.raises(KafkaSecurityError, match="SCRAM-SHA-256"):
        await kafka_clients.check_access(sha256.settings)

    # Without our CA, the broker's certificate is not trusted.
    untrusted = dataclasses.replace(wrong, security=_security(secured_broker))
    untrusted.security.pop("broker_ssl_cafile")
    with pytest.raises(KafkaSecurityError, match="AMLSTREAM_BROKER_SSL_CAFILE"):
        await kafka_clients.check_access(untrusted.settings)

    # Host names are checked: "127.1" reaches the broker, but its certificate names 127.0.0.1
    # and localhost only. Unless the check is turned off.
    by_other_name = Settings(broker=f"kafka://127.1:{secured_broker.port}",
                             **_security(secured_broker))  # type: ignore[arg-type]
    with pytest.raises(KafkaSecurityError, match=r"Hostname mismatch.*CHECK_HOSTNAME"):
        await kafka_clients.check_access(by_other_name)
    await kafka_clients.check_access(by_other_name.model_copy(
        update={"broker_ssl_check_hostname": False}))

    # A plaintext client (and a SASL one without TLS) gets nothing from the TLS port, and we
    # say which setting to check.
    for protocol in ("PLAINTEXT", "SASL_PLAINTEXT"):
        security = {**_security(secured_broker), "broker_security_protocol": protocol}
        security.pop("broker_ssl_cafile")
        if protocol == "PLAINTEXT":
            security = {}
        settings = Settings(broker=f"kafka://{secured_broker.bootstrap}", **security)  # type: ignore[arg-type]
        consumer = kafka_clients.consumer(settings, wrong.topics["alerts"],
                                          request_timeout_ms=5000)
        with pytest.raises(KafkaConnectionError):
            await asyncio.wait_for(consumer.start(), 20)
        await consumer.stop()
        with pytest.raises(KafkaSecurityError,
                           match=f"AMLSTREAM_BROKER_SECURITY_PROTOCOL={protocol} "):
            await asyncio.wait_for(kafka_clients.check_access(settings), 20)

    # And the good credentials work on the same broker (the refusals are about credentials).
    await kafka_clients.check_access(
        new_deployment(secured_broker, _security(secured_broker)).settings)
