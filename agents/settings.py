"""Worker settings, from environment variables prefixed ``AMLSTREAM_`` (or a ``.env`` file)."""

import socket
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from streams.network import HOP_DELAY_S, LATENESS_S

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AMLSTREAM_", env_file=".env", extra="ignore")

    app_id: str = Field("amlstream", description="Consumer group and prefix of internal topics.")
    broker: str = Field("kafka://127.0.0.1:9092", description="Kafka bootstrap, kafka://host:port.")
    broker_wait_s: float = Field(
        30.0, ge=0, description="How long a command waits for an unreachable broker at start, "
        "retrying every 5 s with a countdown on stderr, before it gives up (0: one attempt).")
    broker_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="How every Kafka client connects: PLAINTEXT, SSL (TLS), "
        "SASL_PLAINTEXT (SASL login, no TLS) or SASL_SSL (SASL login over TLS).")
    broker_sasl_mechanism: Literal["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"] = Field(
        "SCRAM-SHA-512", description="SASL mechanism (SASL_* protocols); PLAIN only over SASL_SSL.")
    broker_username: str | None = Field(
        None, description="SASL user (required by the SASL_* protocols).")
    broker_password: SecretStr | None = Field(
        None, description="SASL password (required by the SASL_* protocols); never logged.")
    broker_ssl_cafile: Path | None = Field(
        None, description="PEM file of the CA(s) that sign the broker certificates (SSL, "
        "SASL_SSL); unset: the system's trusted CAs.")
    broker_ssl_certfile: Path | None = Field(
        None, description="PEM client certificate (chain), for brokers that require mutual TLS.")
    broker_ssl_keyfile: Path | None = Field(
        None, description="PEM private key of the client certificate (unset: in the certfile).")
    broker_ssl_key_password: SecretStr | None = Field(
        None, description="Password of an encrypted client key; never logged.")
    broker_ssl_check_hostname: bool = Field(
        True, description="Check that the broker certificate names the host connected to.")
    onboarding_topic: str = Field("onboarding", description="Inbound onboarding events.")
    transactions_topic: str = Field("transactions", description="Inbound transaction events.")
    alerts_topic: str = Field("alerts", description="Outbound alerts.")
    dead_letter_topic: str = Field("dead-letters", description="Outbound rejected inputs.")
    risk_topic: str = Field("customer-risk", description="Outbound risk-level changes.")
    rules_topic: str = Field("rules", description="Rule sets (compacted); newest in force.")
    rules_history_topic: str = Field(
        "rules-history", description="Every rule set ever published, keyed by version "
        "(compacted per version, so none is lost): what was in force, for audit.")
    decisions_topic: str = Field(
        "alert-decisions", description="Inbound decisions on alerts (false_positive, "
        "escalated, reported), keyed by customer_id, applied by the worker.")
    address_intel_topic: str = Field(
        "address-intel", description="Address intelligence (compacted, 1 partition): listings "
        "keyed <list>:<canonical address>, read whole by every worker.")
    intel_max_entries: int = Field(
        2_000_000, ge=0, description="Most address-intel listings a worker holds (~330 B "
        "each); a new one beyond is rejected and counted.")
    partitions: int = Field(4, ge=1, description="Partitions of the input topics and the state.")
    store: str = Field("rocksdb://", description="Faust table store: rocksdb:// or memory://.")
    data_dir: Path = Field(Path("data/worker"), description="Local state (RocksDB) directory.")
    rules_path: Path = Field(PROJECT_ROOT / "config" / "rules.yaml", description="Rule file.")
    metrics_port: int = Field(9464, description="Port of the Prometheus /metrics endpoint.")
    metrics_host: str = Field(
        "0.0.0.0", min_length=1, description="Interface the /metrics endpoint listens on: "
        "0.0.0.0 every interface (a container Prometheus scrapes), 127.0.0.1 this host only.")
    web_port: int = Field(
        6066, description="Port of the worker's web server: the investigators' customer and "
        "alert view (/customers/ID, /alerts/ID), /ready and /live.")
    web_host: str = Field(
        "127.0.0.1", min_length=1, description="Interface the web server listens on "
        "(0.0.0.0 in a container); other workers reach it at AMLSTREAM_WEB_URL.")
    web_url: str | None = Field(
        None, description="How other workers and users reach this worker's web server "
        "(unset: http://<web host>:<web port>); requests for a customer another worker owns "
        "are forwarded there.")
    batch_max_events: int = Field(
        5000, ge=1, description="Most records taken from the broker in one fetch (one batch).")
    ordering_max_held_per_partition: int = Field(
        20_000, ge=1, description="Events of one input partition waiting for the other input "
        "topic (event-time ordering) before fetching that partition pauses.")
    dead_letter_max_original_bytes: int = Field(
        512 * 1024, ge=0, le=700 * 1024, description="Largest input value a dead letter "
        "carries whole; of a larger one it carries this many first bytes, with the size and "
        "SHA-256 (base64 and JSON must stay under the broker's 1 MB message limit).")
    shutdown_timeout_s: float = Field(
        30.0, gt=0, description="Longest a stop (SIGTERM, or after a fatal error) may take; "
        "then the worker exits at once (what is not committed is read again at restart).")
    state_flush_interval_s: float = Field(
        0.5, gt=0, description="How often changed customer states are written (write-back).")
    state_cache_customers: int = Field(
        100_000, ge=0, description="Decoded customer states kept in memory between flushes "
        "(~5 KB each for an active customer).")
    commit_interval_s: float = Field(1.0, gt=0, description="How often offsets are committed.")
    session_timeout_s: float = Field(
        30.0, gt=0, description="A worker silent this long leaves the group (its partitions move).")
    producer_request_timeout_s: float = Field(
        30.0, gt=0, description="A request of the worker's producer (outputs, metadata) the "
        "broker has not answered in this time is given up and retried on a new connection.")
    delivery_timeout_s: float = Field(
        300.0, gt=0, description="An output (alert, state, internal record) the broker has not "
        "taken in this time stops the worker: a broker outage longer than this needs the "
        "worker restarted (it re-reads from the committed offsets and loses nothing).")
    log_level: str = Field("info", description="Worker log level.")
    input_start: str = Field(
        "earliest", pattern="^(earliest|latest)$", description="Where a new consumer group "
        "starts reading the inputs: earliest or latest (a group with committed offsets goes on "
        "from them).")

    network: bool = Field(
        True, description="Run the network stages (counterparty and flow: rules across "
        "customers). Off: the worker is S1 alone, with no internal topics.")
    network_lateness_s: int = Field(
        LATENESS_S, ge=0, le=3600, description="A transfer this much older than the newest of "
        "its input partition is re-timed for the network stages (fixed per deployment).")
    network_hop_delay_s: int = Field(
        HOP_DELAY_S, ge=60, le=86400, description="Provenance is applied at the recipient this "
        "long in event time after the transfer that sent it (fixed per deployment).")
    network_max_held_per_partition: int = Field(
        200_000, ge=1, description="Internal records of one partition waiting for their "
        "producers' promises before fetching that partition pauses.")
    network_idle_after_s: float = Field(
        2.0, gt=0, description="An input partition read to its end and quiet this long is "
        "idle: the network stages stop waiting for it (legs it sends later may be applied on "
        "arrival, counted as recipient-late).")
    network_marker_interval_s: float = Field(
        1.0, gt=0, description="How often every producer repeats its promise to every "
        "partition (it is also sent whenever it moves).")

    @property
    def canonical_web_url(self) -> str:
        """``web_url``, else this host's name (or the interface listened on) and port."""
        if self.web_url:
            return self.web_url.rstrip("/")
        host = socket.gethostname() if self.web_host in ("0.0.0.0", "::") else self.web_host
        return f"http://{host}:{self.web_port}"

    @property
    def input_topics(self) -> tuple[str, str, str]:
        """The topics read by customer, co-partitioned, in the order of a tie in event time."""
        return (self.onboarding_topic, self.transactions_topic, self.decisions_topic)

    @property
    def cp_legs_topic(self) -> str:
        """Internal: legs keyed by counterparty (S1 to S2)."""
        return f"{self.app_id}-cp-legs-repartition"

    @property
    def flows_topic(self) -> str:
        """Internal: legs and provenance keyed by customer (S1 and S3 to S3)."""
        return f"{self.app_id}-flows-repartition"

    @model_validator(mode="after")
    def _check_timeouts(self) -> Self:
        if self.delivery_timeout_s < self.producer_request_timeout_s:
            raise ValueError(
                f"AMLSTREAM_DELIVERY_TIMEOUT_S={self.delivery_timeout_s:g} is below "
                f"AMLSTREAM_PRODUCER_REQUEST_TIMEOUT_S={self.producer_request_timeout_s:g}: "
                "raise it to at least the request timeout")
        return self

    @model_validator(mode="after")
    def _check_broker_security(self) -> Self:
        """Refuse contradictory or incomplete security settings, naming the variable."""
        protocol = self.broker_security_protocol
        where = f"with AMLSTREAM_BROKER_SECURITY_PROTOCOL={protocol}"
        if protocol.startswith("SASL_"):
            if not self.broker_username:
                raise ValueError(f"AMLSTREAM_BROKER_USERNAME is required {where}")
            if self.broker_password is None or not self.broker_password.get_secret_value():
                raise ValueError(f"AMLSTREAM_BROKER_PASSWORD is required {where}")
            if self.broker_sasl_mechanism == "PLAIN" and protocol == "SASL_PLAINTEXT":
                raise ValueError("AMLSTREAM_BROKER_SASL_MECHANISM=PLAIN would send the password "
                                 "in the clear over SASL_PLAINTEXT: use SASL_SSL or SCRAM")
        else:
            for name in ("broker_username", "broker_password"):
                if getattr(self, name) is not None:
                    raise ValueError(f"AMLSTREAM_{name.upper()} is set but unused {where}: "
                                     "set AMLSTREAM_BROKER_SECURITY_PROTOCOL to SASL_SSL")
        files = ("broker_ssl_cafile", "broker_ssl_certfile", "broker_ssl_keyfile")
        if not protocol.endswith("SSL"):
            for name in (*files, "broker_ssl_key_password"):
                if getattr(self, name) is not None:
                    raise ValueError(f"AMLSTREAM_{name.upper()} is set but {protocol} has no "
                                     "TLS: use SSL or SASL_SSL")
        for name in files:
            path = getattr(self, name)
            if path is not None and not path.is_file():
                raise ValueError(f"AMLSTREAM_{name.upper()}: no file at {path}")
        if self.broker_ssl_certfile is None:
            for name in ("broker_ssl_keyfile", "broker_ssl_key_password"):
                if getattr(self, name) is not None:
                    raise ValueError(
                        f"AMLSTREAM_{name.upper()} needs AMLSTREAM_BROKER_SSL_CERTFILE")
        return self

    @property
    def bootstrap(self) -> str:
        """host:port list for plain Kafka clients."""
        return ",".join(url.split("://", 1)[-1] for url in self.broker.split(";"))

    def shadow(self, name: str, rules_path: Path, start: str = "earliest") -> "Settings":
        """The settings of a shadow run named ``name``: the same input topics, its own
        consumer group, state directory and output topics (``NAME-alerts``,
        ``NAME-customer-risk``, ``NAME-dead-letters``), its own rule file, rules topic and rules
        history (``NAME-rules``, ``NAME-rules-history``: a candidate rule set published there
        stays out of production's audit history), reading from ``start`` (``earliest`` or
        ``latest``)."""
        return self.model_copy(update={
            "app_id": f"{self.app_id}-shadow-{name}",
            "alerts_topic": f"{name}-alerts",
            "risk_topic": f"{name}-customer-risk",
            "dead_letter_topic": f"{name}-dead-letters",
            "rules_topic": f"{name}-rules",
            "rules_history_topic": f"{name}-rules-history",
            "rules_path": rules_path,
            "data_dir": self.data_dir.parent / f"{self.data_dir.name}-shadow-{name}",
            "input_start": start,
        })
