"""Run ``amlstream worker`` as a child process (for the demo and the integration tests)."""

import os
import signal
import subprocess
import sys
from pathlib import Path

from agents.local_broker import free_port_pair


class WorkerProcess:
    def __init__(self, env: dict[str, str], log_path: Path, args: list[str] | None = None) -> None:
        self.env = {**os.environ, **env}
        # Each worker serves its web view on a port of its own (6066 is everyone's default).
        self.env.setdefault("AMLSTREAM_WEB_PORT", str(free_port_pair()))
        self.log_path = log_path
        self.args = args or []
        """Options of ``amlstream worker`` (e.g. a shadow run's)."""
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "agents.cli", "worker", *self.args], env=self.env, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self, timeout_s: float = 30.0) -> None:
        """Graceful stop: SIGTERM lets Faust commit and close; SIGKILL if it hangs."""
        self._end(signal.SIGTERM, timeout_s)

    def kill(self) -> None:
        """A crash: no chance to flush or commit."""
        self._end(signal.SIGKILL, 10.0)

    def _end(self, sig: signal.Signals, timeout_s: float) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, sig)
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
