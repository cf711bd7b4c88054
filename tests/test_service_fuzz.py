"""Schemathesis against a real `vigie serve` on loopback: whatever the inputs, never a server error (5xx)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from vigie.service.keys import KeyStore
from vigie.store import open_db


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_fuzzing_the_openapi_finds_no_server_error(tmp_path: Path) -> None:
    st = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    if st is None:
        pytest.skip("schemathesis not installed (make test installs it)")
    url = f"sqlite:///{tmp_path / 'vigie.db'}"
    key = KeyStore(open_db(url)).create(["admin"])[1]
    env = {**os.environ, "VIGIE_HOME": str(tmp_path), "VIGIE_DATABASE_URL": url}
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "vigie", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise AssertionError("vigie serve did not start") from None
                time.sleep(0.2)
        run = subprocess.run(
            [
                st,
                "run",
                base + "/openapi.json",
                "--checks",
                "not_a_server_error",
                "-H",
                f"Authorization: Bearer {key}",
                "--max-examples",
                "20",
                "--seed",
                "1",
                "--request-timeout",
                "30",
            ],
            capture_output=True,
            text=True,
            timeout=400,
            env={**os.environ, "NO_COLOR": "1"},
        )
        assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    finally:
        server.terminate()
        server.wait(timeout=20)
