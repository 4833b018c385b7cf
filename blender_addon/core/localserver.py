"""Start and stop a local ``python -m maskel serve`` child process for the add-on's "Start local server"."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

from .client import CONFIG, DIED, TIMEOUT, MaskelClient, ServerError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalServer:
    """One child server process. ``start`` waits until /v1/health answers (or the process dies)."""

    def __init__(self, python: str, port: int, checkpoint: str = "", token: str = "", log_path: str | None = None,
                 sr_checkpoint: str = ""):  # fmt: skip
        self.python = python
        self.port = int(port)
        self.checkpoint = checkpoint
        self.sr_checkpoint = sr_checkpoint
        self.token = token
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None
        self._log = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        cmd = [self.python, "-m", "maskel", "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        if self.checkpoint:
            cmd += ["--checkpoint", self.checkpoint]
        if self.sr_checkpoint:
            cmd += ["--sr", self.sr_checkpoint]
        return cmd

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, wait: float = 120.0) -> dict:
        """Launch and health-poll; returns the health JSON. Raises ServerError with the log's last line."""
        if not self.python or not Path(self.python).is_file():
            raise ServerError(f"Python interpreter {self.python!r} not found (set it in the add-on preferences)", CONFIG)
        for what, path in (("checkpoint", self.checkpoint), ("SR checkpoint", self.sr_checkpoint)):
            if path and not Path(path).is_file():
                raise ServerError(f"{what} {path!r} not found", CONFIG)
        env = dict(os.environ)
        if self.token:
            env["MASKEL_TOKEN"] = self.token
        self._log = open(self.log_path, "wb") if self.log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(self.command(), stdout=self._log, stderr=subprocess.STDOUT, env=env,
                                     stdin=subprocess.DEVNULL)  # fmt: skip
        client = MaskelClient(self.url, timeout=2.0, token=self.token)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.log_tail()
                self.stop()
                raise ServerError(f"the local MaSkel server exited with code {self.proc.returncode}: {tail}", DIED)
            try:
                return client.health(timeout=2.0)
            except ServerError:
                time.sleep(0.25)
        self.stop()
        raise ServerError(f"the local MaSkel server did not become healthy within {wait:g} s", TIMEOUT)

    def log_tail(self) -> str:
        if not self.log_path or not Path(self.log_path).is_file():
            return "no log"
        lines = [ln for ln in Path(self.log_path).read_text(errors="replace").splitlines() if ln.strip()]
        return lines[-1].strip()[:300] if lines else "empty log"

    def stop(self, grace: float = 5.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(grace)
        if self._log not in (None, subprocess.DEVNULL):
            self._log.close()
        self._log = None
