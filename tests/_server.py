"""Launch a real ``python -m maskel serve`` subprocess on a free port (used by conftest and tests)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@dataclass
class Server:
    url: str
    proc: subprocess.Popen
    log_path: Path
    token: str | None = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}


def stop(proc: subprocess.Popen, timeout: float = 30.0) -> int:
    """SIGTERM, wait, then SIGKILL; returns the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    return proc.returncode


@contextmanager
def start_server(
    checkpoint: Path,
    *extra_args: str,
    token: str | None = None,
    host: str = "127.0.0.1",
    env: dict[str, str] | None = None,
    startup_timeout: float = 180.0,
) -> Iterator[Server]:
    port = free_port(host)
    args = [sys.executable, "-m", "maskel", "serve", "--checkpoint", str(checkpoint), "--host", host, "--port", str(port)]
    args += list(extra_args)
    env = {**(env or {}), **({"MASKEL_TOKEN": token} if token else {})}  # not --token: it would show in ps
    fd, log_name = tempfile.mkstemp(prefix="maskel-serve-", suffix=".log")
    os.close(fd)
    log_path = Path(log_name)
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(args, cwd=REPO, stdout=log_file, stderr=subprocess.STDOUT, env={**os.environ, **env})
    server = Server(url=f"http://{host}:{port}", proc=proc, log_path=log_path, token=token)
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"maskel serve exited with {proc.returncode}:\n{server.log()}")
            try:
                if httpx.get(server.url + "/v1/health", headers=server.headers(), timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"maskel serve did not answer /v1/health in {startup_timeout:.0f} s:\n{server.log()}")
            time.sleep(0.2)
        yield server
    finally:
        stop(proc)
        log_path.unlink(missing_ok=True)
