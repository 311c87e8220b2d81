"""Every Kafka client of amlstream is built here, from the ``AMLSTREAM_BROKER_*`` settings.

``client_kwargs`` gives the connection and security keyword arguments of aiokafka's producer,
consumer and admin client; ``faust_credentials`` gives the same to Faust (its consumer,
producer and topic creation). ``start`` starts a client and, when it cannot reach the broker,
tells a refused login or certificate apart from a broker that is down
(:class:`KafkaSecurityError`, a one-line message naming the setting to check).

The dictionaries returned hold the password: never log them. ``Settings`` keeps passwords as
``SecretStr`` (masked in its repr); Faust's ``SASLCredentials`` repr shows the username only.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterable, Sequence
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka import errors as kafka_errors
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.conn import create_conn
from aiokafka.protocol.metadata import MetadataRequest

from agents.settings import Settings

__all__ = ["KafkaSecurityError", "PartitionRead", "admin", "check_access", "client_kwargs",
           "consumer", "faust_credentials", "partition_counts", "producer", "read_to_end",
           "security_kwargs", "ssl_context", "start"]

PROBE_TIMEOUT_S = 10.0
"""Longest one diagnostic connection (TCP, TLS, SASL) may take."""
READ_STALL_S = 30.0
"""``read_to_end`` gives up when this long passes with no record and no partition done."""


class KafkaSecurityError(RuntimeError):
    """The broker refused our login or TLS settings (or we refused its certificate)."""


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context of the SSL and SASL_SSL protocols (None for the others): the broker's
    certificate is verified against the CA file (or the system's CAs), and its host name
    checked unless ``AMLSTREAM_BROKER_SSL_CHECK_HOSTNAME`` is false."""
    if not settings.broker_security_protocol.endswith("SSL"):
        return None
    cafile = settings.broker_ssl_cafile
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH,
                                             cafile=str(cafile) if cafile else None)
    except (OSError, ssl.SSLError) as exc:
        raise KafkaSecurityError(f"AMLSTREAM_BROKER_SSL_CAFILE={cafile} is not a readable "
                                 f"PEM CA file: {exc}") from None
    context.check_hostname = settings.broker_ssl_check_hostname
    context.verify_mode = ssl.CERT_REQUIRED
    if settings.broker_ssl_certfile is not None:
        key_password = settings.broker_ssl_key_password
        try:
            context.load_cert_chain(
                str(settings.broker_ssl_certfile),
                str(settings.broker_ssl_keyfile) if settings.broker_ssl_keyfile else None,
                key_password.get_secret_value() if key_password is not None else None)
        except (OSError, ssl.SSLError) as exc:
            raise KafkaSecurityError(
                "AMLSTREAM_BROKER_SSL_CERTFILE / AMLSTREAM_BROKER_SSL_KEYFILE (and "
                f"AMLSTREAM_BROKER_SSL_KEY_PASSWORD) do not load as a client certificate: "
                f"{type(exc).__name__}") from None
    return context


def security_kwargs(settings: Settings) -> dict[str, Any]:
    """``security_protocol``, ``ssl_context`` and the SASL login, for any aiokafka client."""
    protocol = settings.broker_security_protocol
    kwargs: dict[str, Any] = {"security_protocol": protocol}
    context = ssl_context(settings)
    if context is not None:
        kwargs["ssl_context"] = context
    if protocol.startswith("SASL_"):
        assert settings.broker_password is not None  # Settings checks it
        kwargs.update(sasl_mechanism=settings.broker_sasl_mechanism,
                      sasl_plain_username=settings.broker_username,
                      sasl_plain_password=settings.broker_password.get_secret_value())
    return kwargs


def client_kwargs(settings: Settings) -> dict[str, Any]:
    """``bootstrap_servers`` plus :func:`security_kwargs`."""
    return {"bootstrap_servers": settings.bootstrap, **security_kwargs(settings)}


def producer(settings: Settings, **kwargs: Any) -> AIOKafkaProducer:
    return AIOKafkaProducer(**client_kwargs(settings), **kwargs)


def consumer(settings: Settings, *topics: str, **kwargs: Any) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(*topics, **client_kwargs(settings), **kwargs)


def admin(settings: Settings, **kwargs: Any) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(**client_kwargs(settings), **kwargs)


def faust_credentials(settings: Settings) -> faust.SASLCredentials | faust.SSLCredentials | None:
    """Faust's ``broker_credentials``: Faust hands them to its consumer, producer and topic
    creation (SASLCredentials with an ssl_context is SASL_SSL)."""
    protocol = settings.broker_security_protocol
    context = ssl_context(settings)
    if protocol.startswith("SASL_"):
        assert settings.broker_password is not None  # Settings checks it
        return faust.SASLCredentials(username=settings.broker_username,
                                     password=settings.broker_password.get_secret_value(),
                                     mechanism=settings.broker_sasl_mechanism,
                                     ssl_context=context)
    if context is not None:
        return faust.SSLCredentials(context=context)
    return None


async def start(client: AIOKafkaProducer | AIOKafkaConsumer | AIOKafkaAdminClient,
                settings: Settings) -> None:
    """``client.start()``; if it cannot bootstrap, raise :class:`KafkaSecurityError` when the
    cause is the login or TLS (aiokafka reports every cause as "Unable to bootstrap")."""
    try:
        await client.start()
    except kafka_errors.KafkaConnectionError:
        try:
            await check_access(settings)
        except KafkaSecurityError:
            await (client.close() if isinstance(client, AIOKafkaAdminClient) else client.stop())
            raise
        raise


async def check_access(settings: Settings) -> None:
    """Connect to each bootstrap server with the configured security. Raise
    :class:`KafkaSecurityError` if one refuses the login or TLS, or twice closes the
    connection on the first request (a listener of another protocol does that); return
    otherwise (also when none could be reached: that is not a security problem)."""
    for server in settings.bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        for attempt in range(2):
            try:
                await asyncio.wait_for(_probe(host, int(port), settings), PROBE_TIMEOUT_S)
            except kafka_errors.KafkaConnectionError:
                # TCP connected (a refused connect is an OSError), then the broker hung up on
                # the first request (ApiVersions, the SASL handshake, or, on a SASL listener
                # that answers ApiVersions before the login, Metadata).
                if attempt == 0:
                    await asyncio.sleep(1.0)
                    continue
                raise KafkaSecurityError(
                    f"the broker {server} closed the connection on the first request: check "
                    "AMLSTREAM_BROKER_SECURITY_PROTOCOL="
                    f"{settings.broker_security_protocol} (does that listener want TLS or "
                    "SASL?)") from None
            except (TimeoutError, kafka_errors.KafkaError, OSError) as exc:
                reason = _security_reason(settings, server, exc)
                if reason is not None:
                    raise KafkaSecurityError(reason) from None
                break
            return


async def _probe(host: str, port: int, settings: Settings) -> None:
    """Connect (TLS, SASL login as configured) and ask for the cluster metadata."""
    conn = await create_conn(host, port, request_timeout_ms=int(PROBE_TIMEOUT_S * 1000),
                             **security_kwargs(settings))
    try:
        await conn.send(MetadataRequest([]))
    finally:
        conn.close()


def _security_reason(settings: Settings, server: str, exc: BaseException) -> str | None:
    """A one-line explanation naming the setting to check, if ``exc`` is a security refusal."""
    user = f"AMLSTREAM_BROKER_USERNAME={settings.broker_username}"
    mechanism = f"AMLSTREAM_BROKER_SASL_MECHANISM={settings.broker_sasl_mechanism}"
    protocol = f"AMLSTREAM_BROKER_SECURITY_PROTOCOL={settings.broker_security_protocol}"
    if isinstance(exc, kafka_errors.SaslAuthenticationFailed):
        return (f"the broker {server} refused the login of {user} with {mechanism}: check "
                "AMLSTREAM_BROKER_PASSWORD (and the user's SCRAM mechanism on the broker)")
    if isinstance(exc, kafka_errors.UnsupportedSaslMechanismError):
        return f"the broker {server} does not accept {mechanism}: {exc}"
    if isinstance(exc, kafka_errors.IllegalSaslStateError):
        return f"the broker {server} does not expect a SASL login: check {protocol}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (f"the TLS certificate of the broker {server} is not trusted "
                f"({exc.verify_message}): check AMLSTREAM_BROKER_SSL_CAFILE and "
                "AMLSTREAM_BROKER_SSL_CHECK_HOSTNAME")
    if isinstance(exc, ssl.SSLError):
        return (f"the TLS handshake with the broker {server} failed ({exc.reason}): check "
                f"{protocol} (is that listener TLS?) and the client certificate settings")
    return None


async def partition_counts(client: AIOKafkaAdminClient, names: Iterable[str]) -> dict[str, int]:
    """The partition count of each of ``names`` that exists (the others left out). Only
    topics listed are described: a metadata request for a missing topic may create it
    (brokers with auto.create.topics.enable), with the broker's defaults."""
    present = set(await client.list_topics()) & set(names)
    described = await client.describe_topics(sorted(present)) if present else []
    return {t["topic"]: len(t["partitions"]) for t in described if t["error_code"] == 0}


class PartitionRead:
    """One partition read by :func:`read_to_end`: its records, from ``start`` (the first
    offset the broker keeps) to ``end`` (its end offset when the reading began)."""

    __slots__ = ("end", "records", "start")

    def __init__(self, start: int, end: int) -> None:
        self.start = start
        self.end = end
        self.records: list[ConsumerRecord[bytes, bytes]] = []


async def read_to_end(client: AIOKafkaConsumer, partitions: Sequence[TopicPartition],
                      stall_s: float = READ_STALL_S) -> dict[TopicPartition, PartitionRead]:
    """Assign ``partitions`` to ``client`` (a consumer outside any group) and read each from
    its first offset to its end offset now, then stop: records written meanwhile are left
    out. Raise ``TimeoutError`` if the reading stalls ``stall_s``."""
    if not partitions:
        return {}
    client.assign(list(partitions))
    starts = await client.beginning_offsets(list(partitions))
    ends = await client.end_offsets(list(partitions))
    read = {tp: PartitionRead(starts[tp], ends[tp]) for tp in partitions}
    pending = []
    for tp in partitions:
        client.seek(tp, starts[tp])
        if starts[tp] < ends[tp]:
            pending.append(tp)
    loop = asyncio.get_running_loop()
    progress_at = loop.time()
    while pending:
        batch = await client.getmany(*pending, timeout_ms=1000)
        for tp, records in batch.items():
            read[tp].records.extend(r for r in records if r.offset < ends[tp])
        done = [tp for tp in pending if await client.position(tp) >= ends[tp]]
        if batch or done:
            progress_at = loop.time()
        elif loop.time() - progress_at > stall_s:
            tp = pending[0]
            raise TimeoutError(f"reading {tp.topic} partition {tp.partition} stalled at offset "
                               f"{await client.position(tp)} of {ends[tp]}")
        pending = [tp for tp in pending if tp not in done]
    return read
