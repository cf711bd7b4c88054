"""kill -9 of the server under load: every item it acknowledged is stored, with its webhook event."""

from __future__ import annotations

import hashlib
import os
import signal
import threading
from pathlib import Path

import httpx
import sqlalchemy as sa

from servers import home_env, start_server
from vigie.service.keys import KeyStore
from vigie.store import ItemRecord, OutboxEvent, open_db


def test_server_killed_under_load_loses_no_accepted_item(db_url: str, tmp_path: Path) -> None:
    key = KeyStore(open_db(db_url)).create(["items:write"])[1]
    env = {**home_env(tmp_path, db_url), "VIGIE_WEBHOOK_URL": "http://127.0.0.1:9/unused"}
    server, base = start_server(env)
    acked: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(n: int) -> None:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=10) as c:
            i = 0
            while not stop.is_set():
                md5 = hashlib.md5(f"{n}-{i}".encode()).hexdigest()
                i += 1
                try:
                    r = c.post("/v1/items", json={"md5": md5, "external_id": f"{n}-{i}"})
                except httpx.HTTPError:
                    return  # the server died mid-request: unacknowledged, may or may not exist
                if r.status_code == 201:
                    with lock:
                        acked.append(r.json()["item_id"])

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    while len(acked) < 40:
        threading.Event().wait(0.02)
    os.killpg(server.pid, signal.SIGKILL)
    server.wait(timeout=10)
    stop.set()
    for t in threads:
        t.join(timeout=20)
    server, base = start_server(env)  # restart on the same database
    try:
        with open_db(db_url).session() as s:
            stored = set(s.scalars(sa.select(ItemRecord.id)))
            events = {e.payload["item_id"] for e in s.scalars(sa.select(OutboxEvent))}
        assert set(acked) <= stored, f"{len(set(acked) - stored)} acknowledged items lost"
        assert set(acked) <= events, "an acknowledged item lost its webhook event"
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}) as c:
            assert c.get(f"/v1/items/{acked[0]}").status_code == 200
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)


def test_concurrent_retries_with_one_idempotency_key_make_one_item(db_url: str, tmp_path: Path) -> None:
    """A client that times out and retries while its first request still runs sends twins. Each twin was
    checked against stored answers before the first had stored one, so on SQLite 16 twins made 3 items;
    the key is now recorded in the item's own transaction, and every twin gets the one answer."""
    key = KeyStore(open_db(db_url)).create(["items:write"])[1]
    env = {**home_env(tmp_path, db_url), "VIGIE_WEBHOOK_URL": "http://127.0.0.1:9/unused"}
    server, base = start_server(env, args=("--workers", "2"))
    answers: list[tuple[int, str, bool]] = []
    lock = threading.Lock()
    go = threading.Barrier(16)

    def twin() -> None:
        hdr = {"Authorization": f"Bearer {key}", "Idempotency-Key": "upload-7"}
        with httpx.Client(base_url=base, headers=hdr, timeout=30) as c:
            go.wait()
            r = c.post("/v1/items", json={"md5": "0" * 32, "external_id": "twin"})
            with lock:
                answers.append((r.status_code, r.json()["item_id"], "idempotent-replayed" in r.headers))

    try:
        threads = [threading.Thread(target=twin) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    assert len(answers) == 16 and {(s, i) for s, i, _ in answers} == {(201, answers[0][1])}
    assert (
        sum(not replayed for *_, replayed in answers) == 1
    )  # one request did the work; the rest replayed it
    db = open_db(db_url)
    with db.engine.connect() as conn:
        items = conn.execute(sa.select(ItemRecord.id).where(ItemRecord.external_id == "twin")).scalars().all()
        events = conn.execute(sa.select(sa.func.count()).select_from(OutboxEvent)).scalar()
    assert items == [answers[0][1]] and events == 1
