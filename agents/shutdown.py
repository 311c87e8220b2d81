"""A bounded stop: whatever the worker is doing, it exits within ``shutdown_timeout_s``.

Faust stops gracefully on SIGTERM or SIGINT (flush, commit, leave the group), and on a fatal
error (``App.crash``). Either can hang: a commit to a broker that is gone, a flush waiting for
acknowledgements that never come. So each of them also arms a timer on a thread of its own,
which the event loop cannot block; when it fires, the process exits at once with
``EXIT_TIMED_OUT``. Nothing is lost by that: what was not committed is read again by the next
worker, and its alerts come again with the same ids.
"""

import logging
import os
import signal
import sys
import threading
from typing import Any

from faust.worker import Worker

from agents.fast_path import graceful_stop

log = logging.getLogger(__name__)

EXIT_TIMED_OUT = 70
"""Exit status when the stop did not finish in time (EX_SOFTWARE)."""

_armed = threading.Event()


def arm(timeout_s: float, why: str) -> None:
    """Start the countdown (once; later calls do nothing)."""
    if _armed.is_set():
        return
    _armed.set()
    log.warning("stopping (%s): exiting within %.0f s", why, timeout_s)

    def expire() -> None:
        print(f"amlstream worker: the stop ({why}) took longer than {timeout_s:.0f} s "
              f"(AMLSTREAM_SHUTDOWN_TIMEOUT_S); exiting now, uncommitted events will be read "
              f"again at restart", file=sys.stderr, flush=True)
        os._exit(EXIT_TIMED_OUT)

    timer = threading.Timer(timeout_s, expire)
    timer.daemon = True
    timer.start()


class BoundedWorker(Worker):  # type: ignore[misc]
    """Faust's worker, whose stop on SIGTERM or SIGINT is bounded by ``timeout_s``."""

    timeout_s = 30.0

    def install_signal_handlers(self) -> None:
        super().install_signal_handlers()
        for sig in (signal.SIGTERM, signal.SIGINT):
            self.loop.add_signal_handler(sig, self._bounded(graceful_stop(self, sig.name), sig))

    def _bounded(self, graceful: Any, sig: signal.Signals) -> Any:
        def handle() -> None:
            arm(self.timeout_s, sig.name)
            graceful()
        return handle
