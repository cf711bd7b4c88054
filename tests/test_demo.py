"""`make demo` and `make demo-serve` as a new user runs them: the real script, the real server on loopback."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from conftest import REPO
from servers import free_port


def test_demo_serve_answers_with_the_printed_key(tmp_path: Path) -> None:
    """The demo builds its bank and report, then serves it: the printed key works for a lookup and an
    upload, and the mirrored copy of a known photo is sent to review or blocked with the bank named."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            str(REPO / "demo" / "run_demo.py"),
            "--serve",
            "--out",
            str(tmp_path),
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        key, lines = None, []
        deadline = time.monotonic() + 240
        while key is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if m := re.search(r"API key (\S+) \(scopes", line):
                key = m.group(1)
        assert key, "no key printed:\n" + "".join(lines[-20:])
        assert (tmp_path / "report.html").is_file() and (tmp_path / "report.json").is_file()
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
            while time.monotonic() < deadline:
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.2)
            known = sorted((tmp_path / "known").glob("*.jpg"))[0]
            found = client.post("/v1/lookup", json={"md5": [hashlib.md5(known.read_bytes()).hexdigest()]})
            assert found.status_code == 200
            assert [m["bank"] for m in found.json()["results"][0]["matches"]] == ["demo-known"]
            upload = sorted((tmp_path / "inbox").glob("upload_*_mirrored.jpg"))[0]
            item = client.post("/v1/items", files={"file": (upload.name, upload.read_bytes(), "image/jpeg")})
            assert item.status_code == 201, item.text
            decision = item.json()["decision"]
            assert decision["action"] in ("review", "block")
            assert "demo-known" in json.dumps(decision["reasons"])
            assert client.get("/v1/banks").status_code == 403  # the demo key has no banks:write scope
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
