"""Schemathesis against a real `vigie serve` on loopback: whatever the inputs, never a server error (5xx),
and every answer is one the OpenAPI document declares (its status, content type and schema), since
platforms generate their clients from it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from servers import home_env, start_server
from vigie.service.keys import KeyStore
from vigie.store import open_db


def test_fuzzing_finds_no_server_error_nor_undocumented_answer(db_url: str, tmp_path: Path) -> None:
    """On both databases: PostgreSQL enforces column lengths that SQLite ignores (a context field longer
    than its column was a 500 there only)."""
    st = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    if st is None:
        pytest.skip("schemathesis not installed (make test installs it)")
    url = db_url
    key = KeyStore(open_db(url)).create(["admin"])[1]
    server, base = start_server(home_env(tmp_path, url))
    try:
        run = subprocess.run(
            [
                st,
                "run",
                base + "/openapi.json",
                "--checks",
                "not_a_server_error,status_code_conformance,content_type_conformance,"
                "response_schema_conformance",
                "-H",
                f"Authorization: Bearer {key}",
                "--max-examples",
                "50",
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
