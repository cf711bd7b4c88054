"""Start a real `vigie serve` on a free loopback port for process-level tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(
    env: dict[str, str], port: int | None = None, args: tuple[str, ...] = (), timeout_s: float = 60
) -> tuple[subprocess.Popen[bytes], str]:
    """The server process (in its own session, so tests can kill -9 it) and its base URL, once healthy."""
    port = port or free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "vigie", "serve", "--port", str(port), *args],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            urllib.request.urlopen(base + "/healthz", timeout=1).close()
            return proc, base
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise AssertionError("vigie serve did not start") from None
            time.sleep(0.1)


def home_env(home: Path, db_url: str) -> dict[str, str]:
    return {"VIGIE_HOME": str(home), "VIGIE_DATABASE_URL": db_url}
