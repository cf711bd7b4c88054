"""The service on SQLite and PostgreSQL: keys and scopes, lookups, bank changes, problem+json errors."""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from conftest import PHOTOS
from fakehashes import flip, rhex
from vigie.service.app import KEY_CACHE_S, MAX_PDQ_VARIANTS, create_app
from vigie.service.items import new_item_id
from vigie.service.keys import KeyStore
from vigie.settings import Settings
from vigie.store import open_db


@pytest.fixture
def env(db_url: str, tmp_path: Path) -> dict[str, object]:
    settings = Settings(home=tmp_path, database_url=db_url)
    keys = KeyStore(open_db(db_url))
    secrets = {s: keys.create([s], s)[1] for s in ("lookup", "banks:write", "items:write", "admin")}
    client = TestClient(create_app(settings, refresh_interval=0.5))
    return {"client": client, "keys": secrets, "settings": settings, "store": keys}


def test_a_served_process_keeps_its_start_up_out_of_full_collections(tmp_path: Path) -> None:
    """Starting to serve freezes what start-up built, so a full collection under load walks only what came
    after; building an app without serving it (as most tests here do) freezes nothing."""
    import gc

    gc.unfreeze()
    app = create_app(Settings(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'v.db'}"))
    assert gc.get_freeze_count() == 0
    try:
        with TestClient(app) as c:
            assert c.get("/healthz").status_code == 200
            assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()


def test_streamed_bodies_over_the_limit_are_refused(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chunked body carries no Content-Length to refuse up front; it is counted as it arrives."""
    import vigie.service.app as service_app

    monkeypatch.setattr(service_app, "MAX_BODY_BYTES", 256 * 1024)
    key = KeyStore(open_db(db_url)).create(["items:write", "lookup"], "k")[1]
    c = TestClient(create_app(Settings(home=tmp_path, database_url=db_url)))
    hdr = {"Authorization": f"Bearer {key}"}

    def chunks(total: int) -> Iterator[bytes]:
        yield b'{"pdq": ["' + b"0" * 64 + b'"], "md5": ["'
        for _ in range(total // 65536):
            yield b"a" * 65536
        yield b'"]}'

    r = c.post("/v1/lookup", content=chunks(512 * 1024), headers={**hdr, "content-type": "application/json"})
    assert r.status_code == 413 and r.headers["content-type"] == "application/problem+json"
    boundary = "b0undary"
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="x.jpg"\r\n\r\n'.encode()
    body = iter([head, *([b"\xff" * 65536] * 8), f"\r\n--{boundary}--\r\n".encode()])
    r = c.post(
        "/v1/items",
        content=body,
        headers={**hdr, "content-type": f"multipart/form-data; boundary={boundary}"},
    )
    assert r.status_code == 413
    small = c.post("/v1/lookup", content=chunks(1024), headers={**hdr, "content-type": "application/json"})
    assert small.status_code == 422  # under the limit: read whole, then refused as a malformed md5


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
    time.sleep(KEY_CACHE_S + 0.1)  # revocation reaches every replica within the key cache's lifetime
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
    junk = {"signal_type": "pdq", "value": "0" * 64, "extra": {"features": "not-keypoints"}}
    r = c.post("/v1/banks/b/entries", json={"entries": [junk]}, headers=w)  # would break the verifier
    assert r.status_code == 422 and "features" in r.json()["errors"][0]["message"]
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
    assert c.get("/metrics").status_code == 401  # every endpoint but health needs a key
    assert c.get("/metrics", headers=auth(env, "lookup")).status_code == 403
    scraper = env["store"].create(["metrics"], "prometheus")[1]  # type: ignore[attr-defined]
    text = c.get("/metrics", headers={"Authorization": f"Bearer {scraper}"}).text
    assert 'vigie_http_requests_total{method="GET",path="/healthz",status="200"}' in text
    assert c.post("/v1/lookup", json={}, headers={"Authorization": f"Bearer {scraper}"}).status_code == 403


def test_openapi_documents_errors_scopes_and_idempotency(env: dict[str, object]) -> None:
    """What a generated client needs: every error is problem+json, every operation says its key scope."""
    c: TestClient = env["client"]  # type: ignore[assignment]
    spec = c.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["apiKey"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "`Authorization: Bearer KEY`",
    }
    assert "HTTPValidationError" not in json.dumps(spec)  # FastAPI's 422 body is not what vigie sends
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            errors = {s: r for s, r in op["responses"].items() if s >= "400"}
            for status, r in errors.items():
                assert list(r["content"]) == ["application/problem+json"], (method, path, status)
            if path in ("/healthz", "/readyz"):
                assert "security" not in op
                continue
            assert op["security"] == [{"apiKey": []}] and {"401", "403", "503"} <= set(errors)
            names = [p["name"] for p in op.get("parameters", [])]
            assert ("Idempotency-Key" in names) == (method in ("post", "delete")), (method, path)
    remove = spec["paths"]["/v1/banks/{name}/entries/remove"]["post"]
    assert "`banks:write`" in remove["description"] and "404" in remove["responses"]
    items = spec["paths"]["/v1/items"]["post"]
    assert "415" in items["responses"]
    hashes_only = items["requestBody"]["content"]["application/json"]["schema"]
    assert hashes_only["properties"]["md5"]["pattern"] == "^[0-9a-fA-F]{32}$"
    schemas = spec["components"]["schemas"]
    assert schemas["LookupIn"]["properties"]["pdq"]["items"]["pattern"] == "^[0-9a-fA-F]{64}$"
    assert schemas["EntryModel"]["properties"]["signal_type"]["enum"] == ["md5", "sha1", "sha256", "pdq"]


def test_entry_ids_beyond_64_bits_are_refused_plainly(env: dict[str, object]) -> None:
    """Found by schemathesis: SQLite could not bind the integer, and the answer was a 500."""
    c: TestClient = env["client"]  # type: ignore[assignment]
    w = auth(env, "banks:write")
    c.post("/v1/banks", json={"name": "ids"}, headers=w)
    r = c.post("/v1/banks/ids/entries/remove", json={"ids": [2**64, 1]}, headers=w)
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["errors"][0]["field"] == "body.ids.0"
    assert c.post("/v1/banks/ids/entries/remove", json={"ids": [0]}, headers=w).status_code == 422
    assert c.post("/v1/banks/ids/entries/remove", json={"ids": [2**63 - 1]}, headers=w).json() == {
        "removed": 0
    }


def test_text_holding_a_nul_character_is_refused_plainly(env: dict[str, object]) -> None:
    """Found by schemathesis: PostgreSQL stores no U+0000 in text or JSON, and a bank description, an
    entry's labels or an item's context holding one was a 500 there. Refused on both databases alike,
    naming the field, and nothing is stored."""
    c: TestClient = env["client"]  # type: ignore[assignment]
    w, it = auth(env, "banks:write"), auth(env, "items:write")
    r = c.post("/v1/banks", json={"name": "nul", "description": "a\u0000b"}, headers=w)
    assert r.status_code == 400 and "NUL" in r.json()["detail"]
    assert c.post("/v1/banks", json={"name": "nul"}, headers=w).status_code == 201
    for labels in ({"note": "a\u0000"}, {"extra": {"k\u0000": "v"}}, {"extra": {"k": ["\u0000"]}}):
        entry = {"signal_type": "md5", "value": "0" * 32, **labels}
        r = c.post("/v1/banks/nul/entries", json={"entries": [entry]}, headers=w)
        assert r.status_code == 422 and "NUL" in r.json()["errors"][0]["message"], labels
    assert c.get("/v1/banks", headers=w).json()[0]["entry_count"] == 0
    for field in ("external_id", "uploader_id", "url", "caption", "prompt"):
        r = c.post("/v1/items", json={"md5": "0" * 32, field: "a\u0000b"}, headers=it)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == f"body.{field}", field
        r = c.post("/v1/items", files={"file": ("x.jpg", b"\xff\xd8\xff", "image/jpeg")},
                   data={field: "a\x00b"}, headers=it)  # fmt: skip
        assert r.status_code == 422, field


def test_a_key_name_longer_than_its_column_is_refused_plainly(db_url: str) -> None:
    from vigie.errors import VigieError
    from vigie.service.keys import MAX_NAME
    from vigie.store.models import ApiKey

    assert ApiKey.__table__.c.name.type.length == MAX_NAME  # type: ignore[attr-defined]
    keys = KeyStore(open_db(db_url))
    with pytest.raises(VigieError, match="at most 128 characters"):
        keys.create(["lookup"], "n" * 129)  # was a DataError from PostgreSQL, a traceback in the CLI
    assert keys.create(["lookup"], "n" * 128)[0].name == "n" * 128


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


def _bank_with_photo(env: dict[str, object], photo: Path) -> None:
    c: TestClient = env["client"]  # type: ignore[assignment]
    from vigie.media import Item
    from vigie.settings import MediaLimits
    from vigie.signals import hash_item

    sig = hash_item(Item(photo.name, photo.read_bytes()), MediaLimits())
    w = auth(env, "banks:write")
    c.post("/v1/banks", json={"name": "known"}, headers=w)
    entries = [{"signal_type": st, "value": getattr(sig, st), "category": "proxy"} for st in ("md5", "pdq")]
    assert c.post("/v1/banks/known/entries", json={"entries": entries}, headers=w).status_code == 201


def test_items_upload_and_hash_only_get_decisions(env: dict[str, object], photos: list[Path]) -> None:
    import hashlib
    import io

    from PIL import Image

    c: TestClient = env["client"]  # type: ignore[assignment]
    _bank_with_photo(env, photos[0])
    it = auth(env, "items:write")
    # the same bytes: exact match → block; a re-encoded copy: near match → review; another photo → allow
    r = c.post(
        "/v1/items",
        files={"file": ("a.jpg", photos[0].read_bytes(), "image/jpeg")},
        data={"external_id": "up-1", "uploader_id": "u-9"},
        headers=it,
    )
    assert r.status_code == 201, r.text
    d = r.json()["decision"]
    assert d["action"] == "block" and "known-material" in d["labels"] and d["reasons"][0]["evidence"]
    buf = io.BytesIO()
    Image.open(photos[0]).convert("RGB").resize((800, 500)).save(buf, "JPEG", quality=70)
    near = c.post("/v1/items", files={"file": ("b.jpg", buf.getvalue(), "image/jpeg")}, headers=it).json()
    assert near["decision"]["action"] == "review" and near["decision"]["labels"] == ["known-material-near"]
    other = c.post("/v1/items", files={"file": ("c.jpg", photos[9].read_bytes(), "image/jpeg")}, headers=it)
    assert other.json()["decision"]["action"] == "allow"
    # privacy mode: hashes only
    md5 = hashlib.md5(photos[0].read_bytes()).hexdigest()
    h = c.post("/v1/items", json={"md5": md5, "external_id": "up-2"}, headers=it).json()
    assert h["decision"]["action"] == "block"
    stored = c.get(f"/v1/items/{h['item_id']}", headers=it).json()
    assert stored["context"] == {"external_id": "up-2"} and stored["matches"][0]["signal"] == "md5"
    assert c.get(f"/v1/items/{r.json()['item_id']}", headers=it).json()["context"]["uploader_id"] == "u-9"


def test_item_with_generator_metadata_goes_to_review(env: dict[str, object]) -> None:
    import io

    from PIL import Image, PngImagePlugin

    c: TestClient = env["client"]  # type: ignore[assignment]
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a lighthouse\nSteps: 20, Sampler: Euler a, Seed: 1, Size: 512x512")
    buf = io.BytesIO()
    Image.new("RGB", (96, 64), (20, 80, 140)).save(buf, "PNG", pnginfo=info)
    r = c.post(
        "/v1/items", files={"file": ("g.png", buf.getvalue(), "image/png")}, headers=auth(env, "items:write")
    )
    d = r.json()["decision"]
    # a one-colour picture: PDQ cannot match it perceptually, and the answer says so beside the evidence
    assert d["action"] == "review" and d["labels"] == ["ai-generated", "pdq-low-quality"]
    assert d["reasons"][0]["evidence"][0]["generator"] == "Automatic1111"


def test_items_bad_input(env: dict[str, object]) -> None:
    c: TestClient = env["client"]  # type: ignore[assignment]
    it = auth(env, "items:write")
    assert c.post("/v1/items", json={"md5": "xyz"}, headers=it).status_code == 422
    assert c.post("/v1/items", json={}, headers=it).status_code == 422
    r = c.post("/v1/items", json={"md5": "0" * 32, "colour": "red"}, headers=it)
    assert r.status_code == 422 and r.json()["errors"] == [
        {"field": "body.colour", "message": "Extra inputs are not permitted"}
    ]  # field by field, like every other body the service refuses
    assert (
        c.post("/v1/items", content=b"hello", headers={**it, "content-type": "text/plain"}).status_code == 415
    )
    assert (
        c.post("/v1/items", data={"external_id": "x"}, files={"other": ("x", b"1")}, headers=it).status_code
        == 422
    )
    mp = {**it, "content-type": "multipart/form-data; boundary=b0"}
    cut = c.post(
        "/v1/items",
        content=b'--b0\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\nab',
        headers=mp,
    )
    assert cut.status_code == 400 and cut.headers["content-type"] == "application/problem+json"
    assert (
        c.post(
            "/v1/items", content=b"--b0\r\n", headers={**mp, "content-type": "multipart/form-data"}
        ).status_code
        == 400
    )
    broken = c.post(
        "/v1/items", files={"file": ("t.jpg", b"\xff\xd8\xff\xe0broken", "image/jpeg")}, headers=it
    )
    assert broken.status_code == 201 and broken.json()["decision"]["action"] == "review"
    assert (
        c.get(f"/v1/items/{broken.json()['item_id']}", headers=it)
        .json()["signals"]["error"]
        .startswith("corrupt")
    )
    two = [("file", ("a.jpg", b"1", "image/jpeg")), ("file", ("b.jpg", b"2", "image/jpeg"))]
    r = c.post("/v1/items", files=two, headers=it)
    assert r.status_code == 400 and "given twice" in r.json()["detail"]
    # an upload's form parts are the JSON item's context fields, with the same limits (a 600-character
    # external id was a 500 on PostgreSQL, whose column holds 512) and no unknown part dropped silently
    jpg = {"file": ("a.jpg", b"\xff\xd8\xff\xe0", "image/jpeg")}
    for data, field in (
        ({"external_id": "x" * 600}, "body.external_id"),
        ({"captoin": "hi"}, "body.captoin"),
    ):
        r = c.post("/v1/items", data=data, files=jpg, headers=it)
        assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == [field], r.text
    r = c.post("/v1/items", files={**jpg, "other": ("b.jpg", b"2", "image/jpeg")}, headers=it)
    assert r.status_code == 422 and "one file part" in r.json()["detail"]
    spec = c.get("/openapi.json").json()["paths"]["/v1/items"]["post"]
    bodies = spec["requestBody"]["content"]
    assert bodies["multipart/form-data"]["schema"]["required"] == ["file"]
    assert {"pdq", "md5", "caption"} <= set(bodies["application/json"]["schema"]["properties"])
    assert spec["responses"]["201"]["content"]["application/json"]["schema"]["$ref"].endswith("/ItemOut")
    assert c.get("/v1/items/nope", headers=it).status_code == 404
    assert c.post("/v1/items", json={"md5": "0" * 32}, headers=auth(env, "lookup")).status_code == 403


def test_what_the_checks_could_not_cover_is_said_in_the_answer(env: dict[str, object]) -> None:
    """An upload that does not decode, or is too flat for PDQ, must not read like a checked, clean item."""
    import io

    from PIL import Image

    c: TestClient = env["client"]  # type: ignore[assignment]
    it = auth(env, "items:write")
    photo = io.BytesIO()
    Image.open(PHOTOS / "dune.jpg").convert("RGB").resize((640, 426)).save(photo, "JPEG", quality=90)
    whole = photo.getvalue()
    flat = io.BytesIO()
    Image.new("RGB", (640, 480), (10, 200, 30)).save(flat, "JPEG")

    def decide(data: bytes) -> dict[str, Any]:
        r = c.post("/v1/items", files={"file": ("x.jpg", data, "image/jpeg")}, headers=it)
        assert r.status_code == 201
        return r.json()["decision"]  # type: ignore[no-any-return]

    clean = decide(whole)
    assert clean["action"] == "allow" and clean["labels"] == [] and clean["reasons"] == []
    for data, reason in ((whole[: len(whole) // 2], "truncated"), (b"%PDF-1.4 not media", "unsupported")):
        d = decide(data)
        assert d["action"] == "review" and d["labels"] == ["not-analysed"], d
        (why,) = d["reasons"]
        assert why["rule"] == "media-not-analysed"
        assert (
            why["evidence"][0]["analyzer"] == "media" and why["evidence"][0]["evidence"]["reason"] == reason
        )
        assert why["evidence"][0]["confidence"] == 1.0 and "byte-exact" in why["evidence"][0]["summary"]
    low = decide(flat.getvalue())
    assert low["action"] == "allow" and low["labels"] == ["pdq-low-quality"]
    assert low["reasons"][0]["evidence"][0]["evidence"] == {"pdq_quality": 0, "min_quality": 50}
    # privacy mode: a platform that sends a low-quality PDQ hears the same
    r = c.post("/v1/items", json={"pdq": "0" * 64, "pdq_quality": 12}, headers=it)
    assert r.json()["decision"]["labels"] == ["pdq-low-quality"]
    r = c.post("/v1/items", json={"pdq": rhex(64, random.Random(1)), "pdq_quality": 90}, headers=it)
    assert r.json()["decision"]["labels"] == []


def test_a_database_that_does_not_answer_is_a_503_to_retry(
    env: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A platform's client must tell "retry shortly" from "this item failed": a lost database (or an exhausted
    pool, or SQLite busy) is a 503 problem with Retry-After, and anything unforeseen a 500 problem, never
    Starlette's plain-text page."""
    import sqlalchemy.exc

    from vigie.service.items import Items

    c: TestClient = env["client"]  # type: ignore[assignment]
    it = auth(env, "items:write")

    def down(*_: object) -> None:
        raise sqlalchemy.exc.OperationalError("INSERT ...", {}, ConnectionRefusedError("connection refused"))

    monkeypatch.setattr(Items, "submit_hashes", down)
    r = c.post("/v1/items", json={"md5": "0" * 32}, headers=it)
    assert r.status_code == 503 and r.headers["retry-after"] == "2"
    assert r.headers["content-type"] == "application/problem+json" and "retry" in r.json()["detail"]

    def bug(*_: object) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(Items, "submit_hashes", bug)
    r = TestClient(c.app, raise_server_exceptions=False).post("/v1/items", json={"md5": "0" * 32}, headers=it)
    assert r.status_code == 500 and r.headers["content-type"] == "application/problem+json"
    assert "secret" not in r.text


def test_shadow_policy_records_but_allows(
    env: dict[str, object], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hashlib

    policy = tmp_path / "shadow.yaml"
    policy.write_text(
        "version: 1\nmode: shadow\nrules:\n  - {name: any-match, when: {match: {}}, action: block}\n"
    )
    monkeypatch.setenv("VIGIE_POLICY", str(policy))
    c = TestClient(create_app(env["settings"]))  # type: ignore[arg-type]
    w = auth(env, "banks:write")
    md5 = hashlib.md5(b"benign stand-in").hexdigest()
    c.post("/v1/banks", json={"name": "s"}, headers=w)
    c.post("/v1/banks/s/entries", json={"entries": [{"signal_type": "md5", "value": md5}]}, headers=w)
    d = c.post("/v1/items", json={"md5": md5}, headers=auth(env, "items:write")).json()["decision"]
    assert d["action"] == "allow" and d["shadow"] is True and d["shadow_action"] == "block"


def test_idempotency_key_replays_instead_of_duplicating(env: dict[str, object]) -> None:
    c: TestClient = env["client"]  # type: ignore[assignment]
    it = {**auth(env, "items:write"), "Idempotency-Key": "upload-123"}
    body = {"md5": "0" * 32, "external_id": "e-1"}
    first = c.post("/v1/items", json=body, headers=it)
    again = c.post("/v1/items", json=body, headers=it)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    other = c.post("/v1/items", json={**body, "external_id": "e-2"}, headers=it)
    assert other.status_code == 409 and other.headers["content-type"] == "application/problem+json"
    # keys belong to the API key that used them; without the header every post is a new item
    fresh = c.post("/v1/items", json=body, headers={**auth(env, "admin"), "Idempotency-Key": "upload-123"})
    assert fresh.json()["item_id"] != first.json()["item_id"]
    assert (
        c.post("/v1/items", json=body, headers=auth(env, "items:write")).json()["item_id"]
        != first.json()["item_id"]
    )


def test_idempotency_key_on_bank_writes(env: dict[str, object]) -> None:
    """Bank writes replay too: a retried entry upload never adds the entries twice."""
    c: TestClient = env["client"]  # type: ignore[assignment]
    bw = {**auth(env, "banks:write"), "Idempotency-Key": "create-1"}
    first = c.post("/v1/banks", json={"name": "idem"}, headers=bw)
    again = c.post("/v1/banks", json={"name": "idem"}, headers=bw)
    assert first.status_code == again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    entries = {"entries": [{"signal_type": "md5", "value": f"{i:032x}"} for i in range(3)]}
    h = {**auth(env, "banks:write"), "Idempotency-Key": "add-1"}
    assert c.post("/v1/banks/idem/entries", json=entries, headers=h).status_code == 201
    assert c.post("/v1/banks/idem/entries", json=entries, headers=h).headers["idempotent-replayed"] == "true"
    [bank] = [b for b in c.get("/v1/banks", headers=auth(env, "banks:write")).json() if b["name"] == "idem"]
    assert bank["entry_count"] == 3
    clash = c.post("/v1/banks/idem/entries", json={"entries": entries["entries"][:1]}, headers=h)
    assert clash.status_code == 409 and clash.headers["content-type"] == "application/problem+json"
    no_key = c.post("/v1/banks", json={"name": "idem"}, headers=auth(env, "banks:write"))
    assert no_key.status_code == 409  # without the header a duplicate is simply refused


def test_a_bank_write_reserves_its_idempotency_key_before_it_runs(
    env: dict[str, object], db_url: str
) -> None:
    """A twin sent while the first still runs is told so (409, Retry-After), never run a second time; a
    reservation whose process died is taken over after STALE_S; an error answer frees the key for a retry."""
    from datetime import timedelta

    import sqlalchemy as sa

    from vigie.service import idempotency
    from vigie.store import IdempotentResponse
    from vigie.store.models import utcnow

    c: TestClient = env["client"]  # type: ignore[assignment]
    bw = auth(env, "banks:write")
    key_id = next(k.id for k in KeyStore(open_db(db_url)).list() if "banks:write" in k.scopes)
    entries = {"entries": [{"signal_type": "md5", "value": f"{i:032x}"} for i in range(3)]}
    assert c.post("/v1/banks", json={"name": "res"}, headers=bw).status_code == 201
    body = json.dumps(entries).encode()
    req_hash = idempotency.request_hash("POST", "/v1/banks/res/entries", body)
    db = open_db(db_url)
    # the first request is still running (its reservation is fresh): the twin is not run
    assert idempotency.reserve(db, key_id, "busy-1", req_hash) is None
    twin = c.post(
        "/v1/banks/res/entries",
        content=body,
        headers={**bw, "Idempotency-Key": "busy-1", "content-type": "application/json"},
    )
    assert twin.status_code == 409 and twin.headers["retry-after"] == "1" and "still running" in twin.text
    # a reservation left by a process that died: taken over once stale, and run exactly once
    with db.engine.begin() as conn:
        conn.execute(
            sa.update(IdempotentResponse)
            .where(IdempotentResponse.idem_key == "busy-1")
            .values(created_at=utcnow() - timedelta(seconds=idempotency.STALE_S + 5))
        )
    hdr = {**bw, "Idempotency-Key": "busy-1", "content-type": "application/json"}
    assert c.post("/v1/banks/res/entries", content=body, headers=hdr).status_code == 201
    again = c.post("/v1/banks/res/entries", content=body, headers=hdr)
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    [bank] = [b for b in c.get("/v1/banks", headers=bw).json() if b["name"] == "res"]
    assert bank["entry_count"] == 3
    # an error answer is not remembered: the same key may carry the corrected request
    bad = {"entries": [{"signal_type": "md5", "value": "xyz"}]}
    fix = {**bw, "Idempotency-Key": "fix-1"}
    assert c.post("/v1/banks/res/entries", json=bad, headers=fix).status_code == 422
    good = {"entries": [{"signal_type": "md5", "value": "f" * 32}]}
    assert c.post("/v1/banks/res/entries", json=good, headers=fix).status_code == 201


def test_text_endpoint_and_item_captions(env: dict[str, object]) -> None:
    """POST /v1/text scores a text (scope lookup); a caption sent with an item lands in its decision."""
    c: TestClient = env["client"]  # type: ignore[assignment]
    body = {"text": "collégienne nue", "kind": "tags"}
    assert c.post("/v1/text", json=body, headers=auth(env, "items:write")).status_code == 403
    r = c.post("/v1/text", json=body, headers=auth(env, "lookup"))
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["label"], out["action"], out["lang"]) == ("sexual_minors", "block", "fr")
    assert out["producer"].startswith("vigie.textrisk") and out["reasons"]
    neg = c.post(
        "/v1/text",
        json={"text": "nude, explicit", "negative": "adult, mature body"},
        headers=auth(env, "lookup"),
    )
    assert neg.json()["action"] == "block"
    fine = c.post(
        "/v1/text", json={"text": "kids at the beach", "kind": "caption"}, headers=auth(env, "lookup")
    )
    assert fine.json()["action"] == "allow" and fine.json()["label"] == "minor_nonsexual"
    bad = c.post("/v1/text", json={"text": "x", "kind": "tweet"}, headers=auth(env, "lookup"))
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
    it = auth(env, "items:write")
    item = c.post("/v1/items", json={"md5": "0" * 32, "caption": "nude 12yo"}, headers=it).json()
    d = item["decision"]
    assert d["action"] == "review" and "text-risk-minors" in d["labels"]
    assert d["reasons"][0]["evidence"][0]["kind"] == "text_risk"
    calm = c.post("/v1/items", json={"md5": "0" * 32, "caption": "our kids at the zoo"}, headers=it).json()
    assert calm["decision"]["action"] == "allow"


def test_item_ids_are_time_ordered_uuids() -> None:
    first = new_item_id()
    time.sleep(0.002)
    ids = [new_item_id() for _ in range(1000)]
    assert all(uuid.UUID(i).version == 7 for i in ids) and len(set(ids)) == 1000
    assert all(first < i for i in ids)  # later milliseconds sort after, as strings too


def test_serve_refuses_a_bad_setting_in_one_line_before_starting_workers(tmp_path: Path) -> None:
    """With --workers 2 a bad setting was a traceback in each worker, and uvicorn restarted them forever."""
    import os
    import subprocess
    import sys

    from servers import free_port

    for bad in ({"VIGIE_MEDIA_THREADS": "0"}, {"VIGIE_POLICY": str(tmp_path / "missing.yaml")}):
        env = {**os.environ, "VIGIE_HOME": str(tmp_path), **bad}
        env.pop("VIGIE_DATABASE_URL", None)
        r = subprocess.run(
            [sys.executable, "-m", "vigie", "serve", "--workers", "2", "--port", str(free_port())],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        out = r.stdout + r.stderr
        assert r.returncode == 2 and "Traceback" not in out and "error:" in out, out[-2000:]


def test_videos_uploaded_or_sent_as_frames_match_known_videos(
    env: dict[str, object], photos: list[Path]
) -> None:
    """A known video (benign slideshow) in a bank; a re-encoded clip of it goes to review whether the
    platform uploads it or sends only its frames' hashes (privacy mode), and unrelated footage does not."""
    from slideshow import encode, slideshow_frames
    from vigie.banks import BankStore
    from vigie.banks.ingest import entries_for_items
    from vigie.media import Item
    from vigie.settings import MediaLimits
    from vigie.signals.vpdq import hash_video

    c: TestClient = env["client"]  # type: ignore[assignment]
    settings: Settings = env["settings"]  # type: ignore[assignment]
    store = BankStore(open_db(settings.database_url))
    store.create_bank("videos")
    known = list(slideshow_frames(photos[:6], 4.0, 5, (320, 180)))
    item = Item("known.mp4", encode(known, 5, (320, 180)), "video/mp4")
    got = entries_for_items([item], store.get_bank("videos"), MediaLimits(), {"category": "proxy"})
    store.add_entries("videos", [e for e in got if not isinstance(e, str)])
    it = auth(env, "items:write")
    clip = encode(known[20:100], 5, (320, 180), bitrate=200_000)  # 16 s of it, re-encoded
    for _ in range(40):  # the bank was written behind the service's back: wait for its refresh
        r = c.post("/v1/items", files={"file": ("clip.mp4", clip, "video/mp4")}, headers=it)
        if r.json()["decision"]["action"] != "allow":
            break
        time.sleep(0.1)
    d = r.json()["decision"]
    assert d["action"] == "review" and d["labels"] == ["known-material-near"], d
    [m] = d["reasons"][0]["evidence"]
    assert m["signal"] == "vpdq" and m["labels"]["video_match"]["rule"] == "clip_of_known_video"

    frames = [f.to_json() for f in hash_video(clip, MediaLimits())]
    h = c.post("/v1/items", json={"vpdq": frames, "external_id": "v-2"}, headers=it).json()
    assert h["decision"]["action"] == "review" and h["decision"]["labels"] == ["known-material-near"]
    stored = c.get(f"/v1/items/{h['item_id']}", headers=it).json()
    assert stored["signals"]["vpdq_frames"] == len(frames) and stored["matches"][0]["signal"] == "vpdq"
    other = encode(list(slideshow_frames(photos[12:16], 4.0, 5, (320, 180))), 5, (320, 180))
    frames = [f.to_json() for f in hash_video(other, MediaLimits())]
    assert c.post("/v1/items", json={"vpdq": frames}, headers=it).json()["decision"]["action"] == "allow"
    # a mirrored re-post hashed by the platform: its frames alone miss, with their variants they match
    mirrored = encode([f[:, ::-1] for f in known[20:100]], 5, (320, 180), bitrate=200_000)
    plain = [f.to_json() for f in hash_video(mirrored, MediaLimits())]
    assert c.post("/v1/items", json={"vpdq": plain}, headers=it).json()["decision"]["action"] == "allow"
    full = [f.to_json(variants=True) for f in hash_video(mirrored, MediaLimits(), variants=True)]
    assert all(len(f) == 4 and "mirror_lr" in f[3] for f in full if f[2] >= 50)
    h = c.post("/v1/items", json={"vpdq": full}, headers=it).json()
    assert h["decision"]["action"] == "review", h
    [m] = h["decision"]["reasons"][0]["evidence"]
    assert m["labels"]["video_match"]["frame_variants"].get("mirror_lr", 0) > 0, m
    for bad in ([[-1, "0" * 64, 90]], [[1, "zz" * 32, 90]], [[1, "0" * 64, 101]], [[1, "0" * 64]], ["x"],
                [[1, "0" * 64, 90, {"mirror_lr": "zz" * 32}]], [[1, "0" * 64, 90, ["0" * 64]]]):  # fmt: skip
        r = c.post("/v1/items", json={"vpdq": bad}, headers=it)
        assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json", bad


def test_hash_only_items_name_the_derived_entry_they_met(env: dict[str, object], photos: list[Path]) -> None:
    """A platform that hashes a cropped copy itself gets the same evidence as an upload of it: the match
    names the bank entry's crop it met (``transform``), recorded with the item."""
    import io

    from PIL import Image

    from vigie.banks import BankStore
    from vigie.banks.ingest import DERIVED, entries_for_items
    from vigie.media import Item
    from vigie.settings import MediaLimits
    from vigie.signals import hash_item

    c: TestClient = env["client"]  # type: ignore[assignment]
    settings: Settings = env["settings"]  # type: ignore[assignment]
    store = BankStore(open_db(settings.database_url))
    store.create_bank("media")
    im = Image.open(photos[3]).convert("RGB")
    im.thumbnail((1000, 1000))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=92)
    got = entries_for_items([Item("k.jpg", buf.getvalue())], store.get_bank("media"), MediaLimits(), {})
    store.add_entries("media", [e for e in got if not isinstance(e, str)])
    w, h = im.size
    buf = io.BytesIO()
    im.crop((w // 10, h // 10, w - w // 10, h - h // 10)).save(buf, "JPEG", quality=85)
    sig = hash_item(Item("c.jpg", buf.getvalue()), MediaLimits())
    it = auth(env, "items:write")
    body = {"pdq": sig.pdq, "pdq_quality": sig.pdq_quality}
    for _ in range(40):  # the bank was written behind the service's back: wait for its refresh
        r = c.post("/v1/items", json=body, headers=it).json()
        if r["decision"]["action"] != "allow":
            break
        time.sleep(0.1)
    [m] = r["decision"]["reasons"][0]["evidence"]
    assert m["signal"] == "pdq" and m["transform"] in DERIVED, m
    stored = c.get(f"/v1/items/{r['item_id']}", headers=it).json()
    assert stored["matches"][0]["transform"] == m["transform"]
    up = c.post("/v1/items", files={"file": ("c.jpg", buf.getvalue(), "image/jpeg")}, headers=it).json()
    assert up["decision"]["reasons"][0]["evidence"][0]["transform"].endswith(m["transform"])


def test_hash_only_items_with_variants_match_as_uploads_do(
    env: dict[str, object], photos: list[Path]
) -> None:
    """A platform that hashes a padded or mirrored copy itself, and sends what ``vigie hash --json
    --variants`` prints, gets the match an upload of it gets, naming the variant; its PDQ alone does not
    match. Malformed variants are refused whole (422), and a low-quality image's variants match nothing."""
    import io

    from PIL import Image, ImageOps

    from vigie.media import Item
    from vigie.settings import MediaLimits
    from vigie.signals import hash_item

    def jpeg(im: Image.Image) -> bytes:
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=90)
        return buf.getvalue()

    c: TestClient = env["client"]  # type: ignore[assignment]
    admin, it = auth(env, "banks:write"), auth(env, "items:write")
    known = Image.open(photos[4]).convert("RGB")
    known.thumbnail((900, 900))
    sig = hash_item(Item("k.jpg", jpeg(known)), MediaLimits())
    assert c.post("/v1/banks", json={"name": "hashes"}, headers=admin).status_code == 201
    r = c.post(
        "/v1/banks/hashes/entries",
        json={"entries": [{"signal_type": "pdq", "value": sig.pdq}]},
        headers=admin,
    )
    assert r.status_code in (200, 201), r.text
    copies = {
        "trim": ImageOps.expand(known, border=(known.width // 4, known.height // 4), fill=(20, 30, 120)),
        "mirror_lr": ImageOps.mirror(known),
    }
    for transform, im in copies.items():
        q = hash_item(Item("q.jpg", jpeg(im)), MediaLimits(), dihedral=True).to_json(variants=True)
        plain = {"pdq": q["pdq"], "pdq_quality": q["pdq_quality"]}
        assert c.post("/v1/items", json=plain, headers=it).json()["decision"]["action"] == "allow"
        r = c.post("/v1/items", json={**plain, "pdq_variants": q["pdq_variants"]}, headers=it).json()
        [m] = r["decision"]["reasons"][0]["evidence"]
        assert m["signal"] == "pdq" and m["transform"] == transform, m
        stored = c.get(f"/v1/items/{r['item_id']}", headers=it).json()
        assert stored["signals"]["pdq_variants"] == len(q["pdq_variants"])
        assert stored["matches"][0]["transform"] == transform
        up = c.post("/v1/items", files={"file": ("q.jpg", jpeg(im), "image/jpeg")}, headers=it).json()
        assert [e["transform"] for e in up["decision"]["reasons"][0]["evidence"]] == [transform]
        low = {**plain, "pdq_quality": 20, "pdq_variants": q["pdq_variants"]}  # too flat to match by PDQ
        assert c.post("/v1/items", json=low, headers=it).json()["decision"]["action"] != "block"
        assert c.get(f"/v1/items/{c.post('/v1/items', json=low, headers=it).json()['item_id']}",
                     headers=it).json()["matches"] == []  # fmt: skip
    good = {"pdq": sig.pdq, "pdq_variants": {"trim": sig.pdq}}
    assert c.post("/v1/items", json=good, headers=it).status_code == 201
    for bad in (
        {"pdq_variants": {"trim": sig.pdq}},  # variants of no image
        {"pdq": sig.pdq, "pdq_variants": {"trim": "zz" * 32}},
        {"pdq": sig.pdq, "pdq_variants": {"Trim!": sig.pdq}},
        {"pdq": sig.pdq, "pdq_variants": {"verified": sig.pdq}},  # only keypoint evidence says that
        {"pdq": sig.pdq, "pdq_variants": {f"v{k}": sig.pdq for k in range(MAX_PDQ_VARIANTS + 1)}},
        {"pdq": sig.pdq, "pdq_variants": [sig.pdq]},
    ):
        r = c.post("/v1/items", json=bad, headers=it)
        assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json", bad
