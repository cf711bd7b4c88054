"""The service on SQLite and PostgreSQL: keys and scopes, lookups, bank changes, problem+json errors."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from vigie.service.app import create_app
from vigie.service.keys import KeyStore
from vigie.settings import Settings
from vigie.store import open_db

HEX = "0123456789abcdef"


def rhex(n: int, rng: random.Random) -> str:
    return "".join(rng.choice(HEX) for _ in range(n))


def flip(h: str, bits: int, rng: random.Random) -> str:
    v = int(h, 16)
    for b in rng.sample(range(256), bits):
        v ^= 1 << b
    return f"{v:064x}"


@pytest.fixture
def env(db_url: str, tmp_path: Path) -> dict[str, object]:
    settings = Settings(home=tmp_path, database_url=db_url)
    keys = KeyStore(open_db(db_url))
    secrets = {s: keys.create([s], s)[1] for s in ("lookup", "banks:write", "items:write", "admin")}
    client = TestClient(create_app(settings, refresh_interval=0.5))
    return {"client": client, "keys": secrets, "settings": settings, "store": keys}


def auth(env: dict[str, object], scope: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {env['keys'][scope]}"}  # type: ignore[index]


def test_health_is_open_everything_else_needs_the_right_scope(env: dict[str, object]) -> None:
    c: TestClient = env["client"]  # type: ignore[assignment]
    assert c.get("/healthz").json() == {"status": "ok"}
    assert c.get("/readyz").status_code == 200
    r = c.post("/v1/lookup", json={"md5": []})
    assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
    assert c.post("/v1/lookup", json={}, headers={"Authorization": "Bearer vg_wrong"}).status_code == 401
    # each scope opens only its own door; admin opens all
    assert c.post("/v1/lookup", json={}, headers=auth(env, "banks:write")).status_code == 403
    assert c.post("/v1/lookup", json={}, headers=auth(env, "items:write")).status_code == 403
    assert c.post("/v1/lookup", json={}, headers=auth(env, "lookup")).status_code == 200
    assert c.post("/v1/lookup", json={}, headers=auth(env, "admin")).status_code == 200
    assert c.get("/v1/banks", headers=auth(env, "lookup")).status_code == 403
    assert c.get("/v1/banks", headers=auth(env, "banks:write")).status_code == 200
    store: KeyStore = env["store"]  # type: ignore[assignment]
    store.revoke(next(k.id for k in store.list() if k.name == "lookup"))
    assert c.post("/v1/lookup", json={}, headers=auth(env, "lookup")).status_code == 401


def test_lookup_matches_with_bank_thresholds_and_labels(env: dict[str, object]) -> None:
    c: TestClient = env["client"]  # type: ignore[assignment]
    rng = random.Random(1)
    known, md5 = rhex(64, rng), rhex(32, rng)
    w = auth(env, "banks:write")
    assert c.post("/v1/banks", json={"name": "known", "pdq_threshold": 20}, headers=w).status_code == 201
    body = {
        "entries": [
            {"signal_type": "pdq", "value": known, "category": "A1", "external_id": "x-1"},
            {"signal_type": "md5", "value": md5, "category": "B2"},
        ]
    }
    assert c.post("/v1/banks/known/entries", json=body, headers=w).json() == {"added": 2}
    near, far = flip(known, 10, rng), flip(known, 25, rng)
    r = c.post(
        "/v1/lookup",
        json={"pdq": [near, far], "md5": [md5.upper()], "pdq_quality": 90},
        headers=auth(env, "lookup"),
    )
    assert r.status_code == 200
    res = r.json()["results"]
    assert [(x["signal"], len(x["matches"])) for x in res] == [("md5", 1), ("pdq", 1), ("pdq", 0)]
    m = res[1]["matches"][0]
    assert m["bank"] == "known" and m["distance"] == 10 and m["labels"]["category"] == "A1"
    assert set(m) == {"bank", "entry_id", "distance", "labels"}


def test_bad_input_is_problem_json_never_5xx(env: dict[str, object]) -> None:
    c: TestClient = env["client"]  # type: ignore[assignment]
    lk, w = auth(env, "lookup"), auth(env, "banks:write")
    r = c.post("/v1/lookup", json={"pdq": ["zz", "0" * 64], "md5": ["abc"]}, headers=lk)
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["errors"][0]["message"].startswith("md5[0]")
    assert c.post("/v1/lookup", json={"sha512": ["00"]}, headers=lk).status_code == 422
    assert (
        c.post(
            "/v1/lookup", content=b"{not json", headers={**lk, "content-type": "application/json"}
        ).status_code
        == 422
    )
    assert c.post("/v1/lookup", json={"pdq": ["0" * 64] * 1001}, headers=lk).status_code == 422
    assert (
        c.post(
            "/v1/banks/nope/entries", json={"entries": [{"signal_type": "md5", "value": "0" * 32}]}, headers=w
        ).status_code
        == 404
    )
    c.post("/v1/banks", json={"name": "b"}, headers=w)
    assert c.post("/v1/banks", json={"name": "b"}, headers=w).status_code == 409
    assert c.post("/v1/banks", json={"name": "bad name!"}, headers=w).status_code == 400
    bad = "pdq " + "0" * 64 + "\npdq nothex\nmd5 123\n"
    r = c.post("/v1/banks/b/import?format=te", content=bad.encode(), headers=w)
    assert r.status_code == 422 and [e["line"] for e in r.json()["errors"]] == [2, 3]
    assert c.get("/v1/banks", headers=w).json()[0]["entry_count"] == 0
    big = {**lk, "content-length": str(10**9)}
    assert c.post("/v1/lookup", content=b"{}", headers=big).status_code == 413
    assert c.post("/v1/banks/b/import?format=te", content=b"\xff\xfe", headers=w).status_code == 422


def test_bank_change_reaches_another_replica_without_rebuild(env: dict[str, object]) -> None:
    """Two apps on one database stand in for two replicas; the second sees the first's change in seconds."""
    c: TestClient = env["client"]  # type: ignore[assignment]
    replica = TestClient(create_app(env["settings"], refresh_interval=0.5))  # type: ignore[arg-type]
    rng = random.Random(2)
    h = rhex(64, rng)
    w = auth(env, "banks:write")
    c.post("/v1/banks", json={"name": "k"}, headers=w)
    c.post("/v1/banks/k/entries", json={"entries": [{"signal_type": "pdq", "value": h}]}, headers=w)

    def hits(client: TestClient) -> int:
        r = client.post("/v1/lookup", json={"pdq": [h]}, headers=auth(env, "lookup"))
        return len(r.json()["results"][0]["matches"])

    assert hits(c) == 1  # the writing replica: at once
    deadline = time.monotonic() + 5
    while hits(replica) == 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert hits(replica) == 1
    c.delete("/v1/banks/k", headers=w)
    assert hits(c) == 0
    time.sleep(0.6)
    assert hits(replica) == 0


def test_openapi_and_metrics(env: dict[str, object]) -> None:
    c: TestClient = env["client"]  # type: ignore[assignment]
    spec = c.get("/openapi.json").json()
    assert "/v1/lookup" in spec["paths"] and "/v1/banks/{name}/import" in spec["paths"]
    c.get("/healthz")
    assert 'vigie_http_requests_total{method="GET",path="/healthz",status="200"}' in c.get("/metrics").text


def test_keys_cli_prints_the_secret_on_its_last_line(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "VIGIE_HOME": str(tmp_path)}
    env.pop("VIGIE_DATABASE_URL", None)

    def run(*a: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "vigie", *a], env=env, capture_output=True, text=True)

    out = run("keys", "create", "--scope", "lookup", "--scope", "banks:write", "--name", "ci")
    assert out.returncode == 0, out.stderr
    secret = out.stdout.strip().splitlines()[-1]
    assert secret.startswith("vg_") and len(secret) > 40
    assert secret not in run("keys", "list").stdout
    assert run("keys", "create", "--scope", "root").returncode != 0
