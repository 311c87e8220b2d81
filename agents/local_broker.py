"""Start and stop a throwaway single-node Kafka broker on 127.0.0.1 from Python.

A thin wrapper around ``scripts/kafka-local`` (which fetches the broker from Maven Central on
first use and caches it outside the repo). Used by the CLI demo and the integration tests::

    with LocalBroker(port=free_port_pair(), data_dir=tmp_path) as broker:
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)

A secured one (SASL_SSL, SCRAM users made at format time, a CA written to ``broker.ca_file``)::

    LocalBroker(port, data_dir, security="sasl_ssl",
                scram_users=[ScramUser("SCRAM-SHA-512", "amlstream", "s3cret")])

Standard library only: importing this module does not import Faust or aiokafka.
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Literal, NamedTuple

__all__ = ["HOST", "SCRIPT", "LocalBroker", "ScramUser", "free_port_pair"]

HOST = "127.0.0.1"
SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "kafka-local"

# Lines of the script's output kept for the error message when a command fails.
_TAIL_LINES = 80


def _port_is_free(port: int) -> bool:
    """True when nothing listens on 127.0.0.1:port (and we may bind it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Like the broker's own listener: a closed connection in TIME_WAIT does not block it.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def free_port_pair(attempts: int = 200) -> int:
    """Return a port P such that P (client port) and P+1 (controller port) are free.

    Ports are picked at random below Linux's default ephemeral range (32768+), so outgoing
    connections are unlikely to take them between this check and the broker's start.
    """
    for _ in range(attempts):
        port = random.randrange(20000, 32000)
        if _port_is_free(port) and _port_is_free(port + 1):
            return port
    raise RuntimeError(f"no two consecutive free ports found on {HOST} after {attempts} tries")


class ScramUser(NamedTuple):
    """A SCRAM user of a secured broker (created when its storage is formatted)."""

    mechanism: Literal["SCRAM-SHA-256", "SCRAM-SHA-512"]
    name: str
    password: str


class LocalBroker:
    """One local broker: its client port, its controller port (port + 1) and its data directory.

    ``security``: the client listener, ``plaintext`` (default), ``sasl_plaintext`` or
    ``sasl_ssl`` (``scripts/kafka-local``'s KAFKA_SECURITY). Secured brokers have a SCRAM-SHA-512
    super user ``admin`` (``admin_password``) and ``scram_users``; with ``authorizer`` they
    enforce ACLs (add them with :meth:`acl`).
    """

    def __init__(self, port: int = 9092, data_dir: Path | None = None,
                 security: Literal["plaintext", "sasl_plaintext", "sasl_ssl"] = "plaintext",
                 scram_users: Iterable[ScramUser] = (), admin_password: str = "admin-secret",
                 authorizer: bool = False) -> None:
        self.port = port
        self.controller_port = port + 1
        # None: the script's default, $AMLSTREAM_CACHE/broker-<port> (kept between runs).
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self.security = security
        self.scram_users = tuple(scram_users)
        self.admin_password = admin_password
        self.authorizer = authorizer

    @property
    def ca_file(self) -> Path:
        """The PEM CA that signed the broker certificate (``sasl_ssl``; written at start)."""
        cache = Path(os.environ.get("AMLSTREAM_CACHE", Path.home() / ".cache" / "amlstream"))
        data_dir = self.data_dir if self.data_dir is not None else cache / f"broker-{self.port}"
        return data_dir.resolve() / "tls" / "ca.pem"

    def acl(self, *args: str) -> None:
        """Run ``kafka-acls`` as the admin user, e.g. ``acl("--add", "--allow-principal",
        "User:amlstream", "--operation", "Read", "--topic", "alerts")``."""
        self._run("acl", *args)

    @property
    def bootstrap(self) -> str:
        """The bootstrap servers string for clients, e.g. ``"127.0.0.1:9092"``."""
        return f"{HOST}:{self.port}"

    def start(self) -> None:
        """Start the broker (fetching Kafka first if needed) and wait until it serves requests.

        Succeeds at once if this broker is already running. Raises RuntimeError, with the end of
        the script's output and of the broker log, if it cannot start.
        """
        self._run("start")

    def stop(self) -> None:
        """Stop the broker (SIGTERM, then SIGKILL after 30 s). Does nothing if it is not running."""
        self._run("stop")

    def wipe(self) -> None:
        """Stop the broker and delete its data directory: the next start is a fresh cluster."""
        self._run("wipe")

    def is_running(self) -> bool:
        """True if the broker process for this port and data directory is alive."""
        result = subprocess.run(
            ["bash", str(SCRIPT), "status"],
            env=self._env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )
        return result.returncode == 0

    def __enter__(self) -> LocalBroker:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return (f"LocalBroker(bootstrap={self.bootstrap!r}, data_dir={self.data_dir!r}, "
                f"security={self.security!r})")

    def _env(self) -> dict[str, str]:
        """The environment for the script: this broker's ports and data directory."""
        env = dict(os.environ)
        env["KAFKA_PORT"] = str(self.port)
        env["KAFKA_CONTROLLER_PORT"] = str(self.controller_port)
        if self.data_dir is not None:
            env["KAFKA_DATA_DIR"] = str(self.data_dir)
        else:
            env.pop("KAFKA_DATA_DIR", None)  # a value from the shell must not pick the directory
        env["KAFKA_SECURITY"] = self.security
        env["KAFKA_SCRAM_USERS"] = " ".join(":".join(user) for user in self.scram_users)
        env["KAFKA_ADMIN_PASSWORD"] = self.admin_password
        env["KAFKA_AUTHORIZER"] = "1" if self.authorizer else "0"
        return env

    def _run(self, command: str, *args: str) -> None:
        """Run ``kafka-local <command>``, echoing its output to stderr; raise if it fails."""
        if not SCRIPT.is_file():
            raise RuntimeError(f"{SCRIPT} is missing")
        tail: deque[str] = deque(maxlen=_TAIL_LINES)
        with subprocess.Popen(
            ["bash", str(SCRIPT), command, *args],
            env=self._env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        ) as proc:
            assert proc.stdout is not None
            for line in proc.stdout:
                sys.stderr.write(line)
                sys.stderr.flush()
                tail.append(line)
            returncode = proc.wait()
        if returncode != 0:
            raise RuntimeError(
                f"kafka-local {command} failed for {self.bootstrap} (exit {returncode}):\n"
                + "".join(tail)
            )
