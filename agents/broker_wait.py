"""Wait for the Kafka broker before a command starts talking to it.

Every command that talks to Kafka calls :func:`wait_for_broker` once, up front: it opens a
plain TCP connection to each bootstrap server (``AMLSTREAM_BROKER``, or ``--broker``) and, while
none answers, says so on stderr with a countdown and tries again, for up to
``AMLSTREAM_BROKER_WAIT_S`` seconds; then it raises :class:`BrokerUnreachable`, whose message is
the one line the user sees. The TLS and SASL settings are not needed to see whether a broker
listens; a refused login is told later, by ``kafka_clients.start`` (``KafkaSecurityError``).
"""

import math
import socket
import sys
import time
from collections.abc import Callable

from agents.settings import Settings

RETRY_EVERY_S = 5.0
"""Seconds between two attempts (less for the last one, so the whole wait is the setting's)."""
CONNECT_TIMEOUT_S = 3.0
"""Longest one TCP connection attempt may take (a host that drops packets never refuses)."""


class BrokerUnreachable(Exception):
    """No bootstrap server accepted a connection within ``AMLSTREAM_BROKER_WAIT_S``."""


def unreachable_message(bootstrap: str, reason: str = "") -> str:
    """The one line said when the broker cannot be reached: which, and what to do."""
    from agents.demo import DEMO_PORT

    why = f" ({reason})" if reason else ""
    return (f"cannot reach the Kafka broker at {bootstrap}{why}: start it, or point "
            "AMLSTREAM_BROKER (or --broker URL) at a running one (the demo's, while it runs: "
            f"kafka://127.0.0.1:{DEMO_PORT})")


def _servers(bootstrap: str) -> list[tuple[str, int]]:
    servers = []
    for server in bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        servers.append((host.strip("[]"), int(port)))
    return servers


def reach(bootstrap: str, timeout_s: float = CONNECT_TIMEOUT_S) -> str | None:
    """None if one of the servers (``host:port,...``) accepts a TCP connection; otherwise why
    the last one did not (e.g. ``Connection refused``)."""
    reason = "no server given"
    for host, port in _servers(bootstrap):
        try:
            with socket.create_connection((host, port), timeout=timeout_s):
                return None
        except TimeoutError:
            reason = f"no answer within {timeout_s:g} s"
        except OSError as exc:
            reason = exc.strerror or str(exc)
    return reason


def wait_for_broker(settings: Settings, say: Callable[[str], None] | None = None,
                    sleep: Callable[[float], None] = time.sleep) -> None:
    """Return once a bootstrap server accepts a connection; until then, every
    ``RETRY_EVERY_S`` seconds for ``settings.broker_wait_s`` in all, say when the next attempt
    comes. Raise :class:`BrokerUnreachable` at the end (at once with a wait of 0)."""
    say = say or (lambda line: print(line, file=sys.stderr, flush=True))
    wait_s = settings.broker_wait_s
    retries = math.ceil(wait_s / RETRY_EVERY_S)
    bootstrap = settings.bootstrap
    for attempt in range(1, retries + 2):
        reason = reach(bootstrap)
        if reason is None:
            return
        if attempt > retries:
            break
        delay = min(RETRY_EVERY_S, wait_s - RETRY_EVERY_S * (attempt - 1))
        say(f"amlstream: Kafka broker at {bootstrap} not reachable ({reason}); retrying in "
            f"{delay:g} s (attempt {attempt + 1} of {retries + 1}, "
            f"AMLSTREAM_BROKER_WAIT_S={wait_s:g})")
        sleep(delay)
    raise BrokerUnreachable(unreachable_message(
        bootstrap, f"{reason}, after AMLSTREAM_BROKER_WAIT_S={wait_s:g} s"))
