"""Security settings: checked at start with a message naming the variable; turned into the same
aiokafka arguments and Faust credentials for every client; passwords never in a repr."""

import asyncio
import ssl
import subprocess
from pathlib import Path

import faust
import pytest
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from pydantic import ValidationError

from agents import kafka_clients
from agents.app import create_app
from agents.cli import main
from agents.fast_path import track_topics
from agents.settings import Settings

PASSWORD = "pa55-not-for-logs"


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A self-signed CA, and a client certificate + key (openssl, as scripts/kafka-local)."""
    directory = tmp_path_factory.mktemp("tls")
    ca_key, ca, key, cert = (directory / name for name in ("ca.key", "ca.pem", "c.key", "c.pem"))
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(ca_key), "-out", str(ca), "-days", "2", "-subj", "/CN=test CA"],
                   check=True, capture_output=True)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=client"],
                   check=True, capture_output=True)
    return {"ca": ca, "cert": cert, "key": key}


def sasl_ssl(tls_files: dict[str, Path], **overrides: object) -> Settings:
    values: dict[str, object] = {
        "broker": "kafka://b1:9093;kafka://b2:9093", "broker_security_protocol": "SASL_SSL",
        "broker_sasl_mechanism": "SCRAM-SHA-256", "broker_username": "amlstream",
        "broker_password": PASSWORD, "broker_ssl_cafile": tls_files["ca"]}
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def test_plaintext_by_default() -> None:
    settings = Settings(broker="kafka://h:9092")
    assert kafka_clients.client_kwargs(settings) == {"bootstrap_servers": "h:9092",
                                                     "security_protocol": "PLAINTEXT"}
    assert kafka_clients.faust_credentials(settings) is None


def test_sasl_ssl_kwargs_and_faust_credentials_agree(tls_files: dict[str, Path]) -> None:
    settings = sasl_ssl(tls_files)
    kwargs = kafka_clients.client_kwargs(settings)
    assert kwargs["bootstrap_servers"] == "b1:9093,b2:9093"
    assert kwargs["security_protocol"] == "SASL_SSL"
    assert kwargs["sasl_mechanism"] == "SCRAM-SHA-256"
    assert (kwargs["sasl_plain_username"], kwargs["sasl_plain_password"]) == ("amlstream",
                                                                              PASSWORD)
    context = kwargs["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "test CA"),),)]

    credentials = kafka_clients.faust_credentials(settings)
    assert isinstance(credentials, faust.SASLCredentials)
    faust_kwargs = dict(credentials_to_aiokafka_auth(credentials))  # what Faust gives aiokafka
    assert faust_kwargs.pop("ssl_context").get_ca_certs() == context.get_ca_certs()
    assert faust_kwargs == {key: kwargs[key] for key in faust_kwargs}
    assert PASSWORD not in repr(credentials)
    assert PASSWORD not in repr(settings) and PASSWORD not in str(settings.model_dump())


def test_faust_app_uses_the_credentials(tls_files: dict[str, Path], tmp_path: Path) -> None:
    settings = sasl_ssl(tls_files, broker_sasl_mechanism="SCRAM-SHA-512", data_dir=tmp_path,
                        store="memory://")
    app = create_app(settings).faust
    auth = credentials_to_aiokafka_auth(app.conf.broker_credentials, app.conf.ssl_context)
    assert auth["security_protocol"] == "SASL_SSL"
    assert auth["sasl_mechanism"] == "SCRAM-SHA-512"
    assert auth["sasl_plain_password"] == PASSWORD


def test_sasl_plaintext_has_no_tls_and_ssl_has_no_login(tls_files: dict[str, Path]) -> None:
    plain = sasl_ssl(tls_files, broker_security_protocol="SASL_PLAINTEXT", broker_ssl_cafile=None)
    assert "ssl_context" not in kafka_clients.security_kwargs(plain)
    credentials = kafka_clients.faust_credentials(plain)
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials_to_aiokafka_auth(credentials)["security_protocol"] == "SASL_PLAINTEXT"

    tls = Settings(broker_security_protocol="SSL", broker_ssl_cafile=tls_files["ca"],
                   broker_ssl_certfile=tls_files["cert"], broker_ssl_keyfile=tls_files["key"],
                   broker_ssl_check_hostname=False)
    kwargs = kafka_clients.security_kwargs(tls)
    assert set(kwargs) == {"security_protocol", "ssl_context"}
    assert kwargs["security_protocol"] == "SSL" and not kwargs["ssl_context"].check_hostname
    credentials = kafka_clients.faust_credentials(tls)
    assert isinstance(credentials, faust.SSLCredentials)
    assert credentials_to_aiokafka_auth(credentials)["security_protocol"] == "SSL"


@pytest.mark.parametrize(("overrides", "named"), [
    ({"broker_username": None}, "AMLSTREAM_BROKER_USERNAME is required"),
    ({"broker_password": None}, "AMLSTREAM_BROKER_PASSWORD is required"),
    ({"broker_password": ""}, "AMLSTREAM_BROKER_PASSWORD is required"),
    ({"broker_security_protocol": "PLAINTEXT", "broker_ssl_cafile": None},
     "AMLSTREAM_BROKER_USERNAME is set but unused"),
    ({"broker_security_protocol": "SASL_PLAINTEXT"}, "AMLSTREAM_BROKER_SSL_CAFILE is set but"),
    ({"broker_security_protocol": "SASL_PLAINTEXT", "broker_ssl_cafile": None,
      "broker_sasl_mechanism": "PLAIN"}, "AMLSTREAM_BROKER_SASL_MECHANISM=PLAIN"),
    ({"broker_ssl_cafile": Path("/nonexistent/ca.pem")}, "AMLSTREAM_BROKER_SSL_CAFILE: no file"),
    ({"broker_ssl_key_password": "x"}, "AMLSTREAM_BROKER_SSL_KEY_PASSWORD needs"),
])
def test_contradictions_are_refused_naming_the_setting(tls_files: dict[str, Path],
                                                       overrides: dict[str, object],
                                                       named: str) -> None:
    with pytest.raises(ValidationError, match=named):
        sasl_ssl(tls_files, **overrides)


def test_cli_prints_one_line_naming_the_setting(monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("AMLSTREAM_BROKER_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("AMLSTREAM_BROKER_PASSWORD", PASSWORD)
    assert main(["rules", "show"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == ["amlstream: invalid settings: AMLSTREAM_BROKER_USERNAME is "
                                "required with AMLSTREAM_BROKER_SECURITY_PROTOCOL=SASL_SSL"]
    monkeypatch.setenv("AMLSTREAM_BROKER_SECURITY_PROTOCOL", "TLS")
    assert main(["alerts"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("amlstream: invalid settings: AMLSTREAM_BROKER_SECURITY_PROTOCOL: ")
    assert len(err.splitlines()) == 1 and PASSWORD not in err


def test_unreadable_ca_file_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate\n")
    settings = Settings(broker_security_protocol="SSL", broker_ssl_cafile=bad)
    with pytest.raises(kafka_clients.KafkaSecurityError, match="AMLSTREAM_BROKER_SSL_CAFILE"):
        kafka_clients.security_kwargs(settings)


async def test_a_listener_that_hangs_up_is_named_and_a_closed_port_is_not() -> None:
    async def hang_up(reader: object, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        settings = Settings(broker=f"kafka://127.0.0.1:{port}")
        with pytest.raises(kafka_clients.KafkaSecurityError,
                           match="AMLSTREAM_BROKER_SECURITY_PROTOCOL=PLAINTEXT"):
            await kafka_clients.check_access(settings)
    # Nothing listens any more: a broker that is down is not a security problem.
    await kafka_clients.check_access(settings)


async def test_request_and_delivery_timeouts_reach_the_clients(tmp_path: Path) -> None:
    settings = Settings(broker="kafka://h:9092", producer_request_timeout_s=45,
                        delivery_timeout_s=200, data_dir=tmp_path, store="memory://")
    app = create_app(settings).faust
    assert app.conf.broker_request_timeout == 90  # the consumer's: Faust's default
    producer = app.producer._new_producer()
    # requests give up after 45 s; an output waits up to 200 s to be delivered
    assert producer.client._request_timeout_ms == 45_000
    assert producer._request_timeout_ms == 200_000
    with pytest.raises(ValidationError, match="AMLSTREAM_DELIVERY_TIMEOUT_S=40 is below"):
        Settings(delivery_timeout_s=40, producer_request_timeout_s=50)


async def test_the_producer_tracks_every_output_topic(tmp_path: Path) -> None:
    """Its metadata refreshes must cover every topic written, not only those found unknown
    at a first send (see ``track_output_topics``)."""
    settings = Settings(broker="kafka://h:9092", data_dir=tmp_path, store="memory://")
    client = create_app(settings).faust.producer._new_producer().client
    assert not client._topics  # aiokafka's start: all topics, then only those met unknown
    track_topics(client, [settings.alerts_topic, settings.flows_topic])
    assert client._topics == {settings.alerts_topic, settings.flows_topic}
