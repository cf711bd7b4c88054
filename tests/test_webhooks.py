"""Webhooks from the outbox to a real receiver on 127.0.0.1: signed, retried, dead-lettered, resumable."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from vigie.service.app import create_app
from vigie.service.keys import KeyStore
from vigie.service.webhooks import MAX_ATTEMPTS, Deliverer, verify
from vigie.settings import Settings
from vigie.store import OutboxEvent, open_db

SECRET = "test-secret-not-for-production"


class Receiver:
    """A platform's webhook endpoint: records what arrives, fails the first ``fail`` requests."""

    def __init__(self, fail: int = 0) -> None:
        self.fail = fail
        self.delay = 0.0
        self.got: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                body = self.rfile.read(length)
                if len(body) < length:  # the sender died mid-request: nothing was delivered
                    return
                time.sleep(outer.delay)
                if outer.fail > 0:
                    outer.fail -= 1
                    self.send_response(503)
                    self.end_headers()
                    return
                outer.got.append({"headers": dict(self.headers), "body": body})
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def event_ids(self) -> set[str]:
        return {json.loads(g["body"])["event_id"] for g in self.got}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()


@pytest.fixture
def app(db_url: str, tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("VIGIE_WEBHOOK_URL", receiver.url)
    settings = Settings(home=tmp_path, database_url=db_url)
    secret = KeyStore(open_db(db_url)).create(["items:write", "admin"])[1]
    return {
        "client": TestClient(create_app(settings)),
        "auth": {"Authorization": f"Bearer {secret}"},
        "db_url": db_url,
    }


def submit(app: dict[str, Any], n: int) -> list[str]:
    c: TestClient = app["client"]
    ids = []
    for i in range(n):
        md5 = hashlib.md5(f"benign-{i}".encode()).hexdigest()
        r = c.post("/v1/items", json={"md5": md5, "external_id": f"e{i}"}, headers=app["auth"])
        assert r.status_code == 201
        ids.append(r.json()["item_id"])
    return ids


def test_every_decision_is_delivered_signed(app: dict[str, Any], receiver: Receiver) -> None:
    items = submit(app, 3)
    stats = Deliverer(open_db(app["db_url"]), receiver.url, SECRET).run_once()
    assert stats.delivered == 3 and len(receiver.got) == 3
    for g in receiver.got:
        h = {k.lower(): v for k, v in g["headers"].items()}
        assert verify(SECRET, h["x-vigie-timestamp"], g["body"], h["x-vigie-signature"])
        assert not verify("another-secret", h["x-vigie-timestamp"], g["body"], h["x-vigie-signature"])
        doc = json.loads(g["body"])
        assert doc["event_id"] == h["x-vigie-event-id"] and doc["type"] == "item.decided"
    assert sorted(json.loads(g["body"])["data"]["item_id"] for g in receiver.got) == sorted(items)
    assert Deliverer(open_db(app["db_url"]), receiver.url, SECRET).run_once().delivered == 0  # nothing twice


def _make_due(db_url: str) -> None:
    with open_db(db_url).session() as s:
        s.execute(sa.update(OutboxEvent).values(next_attempt_at=OutboxEvent.created_at))


def test_retries_then_dead_letter_then_requeue(app: dict[str, Any], receiver: Receiver) -> None:
    submit(app, 1)
    receiver.fail = 10**6
    d = Deliverer(open_db(app["db_url"]), receiver.url, SECRET)
    for _ in range(MAX_ATTEMPTS):
        _make_due(app["db_url"])
        d.run_once()
    c: TestClient = app["client"]
    dead = c.get("/v1/admin/webhooks/dead", headers=app["auth"]).json()
    assert len(dead) == 1 and dead[0]["attempts"] == MAX_ATTEMPTS and dead[0]["last_error"] == "HTTP 503"
    receiver.fail = 0
    assert c.post(f"/v1/admin/webhooks/{dead[0]['event_id']}/requeue", headers=app["auth"]).json() == {
        "requeued": True
    }
    assert d.run_once().delivered == 1 and receiver.event_ids() == {dead[0]["event_id"]}
    assert c.get("/v1/admin/webhooks/dead", headers=app["auth"]).json() == []


def test_worker_killed_mid_delivery_loses_nothing(
    app: dict[str, Any], receiver: Receiver, tmp_path: Path
) -> None:
    submit(app, 40)
    receiver.delay = 0.05  # 40 deliveries take ~2 s, so the kill lands in the middle
    env = {
        **os.environ,
        "VIGIE_DATABASE_URL": app["db_url"],
        "VIGIE_HOME": str(tmp_path),
        "VIGIE_WEBHOOK_URL": receiver.url,
        "VIGIE_WEBHOOK_SECRET": SECRET,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "vigie", "worker", "--poll", "0.1"],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while len(receiver.got) < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    at_kill = len(receiver.got)
    assert 5 <= at_kill < 40, f"worker was not killed mid-way ({at_kill} delivered)"
    receiver.delay = 0.0
    _make_due(app["db_url"])  # stands in for the lease running out on what the dead worker had claimed
    out = subprocess.run(
        [sys.executable, "-m", "vigie", "worker", "--once"], env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    with open_db(app["db_url"]).session() as s:
        all_ids = set(s.scalars(sa.select(OutboxEvent.event_id)))
        pending = s.scalar(sa.select(sa.func.count()).where(OutboxEvent.delivered_at.is_(None)))
    assert len(all_ids) == 40 and receiver.event_ids() == all_ids and pending == 0


def test_the_worker_rides_out_a_database_that_does_not_answer(capsys: pytest.CaptureFixture[str]) -> None:
    """A restarted or failed-over database must not end `vigie worker`: it waits, doubling, and goes on."""
    import sqlalchemy.exc

    from vigie.service.commands import run_until

    calls: list[str] = []

    @dataclass
    class Outcome:
        done: int = 0
        retried: int = 0

    def analyse() -> Outcome:
        calls.append("analyse")
        if len(calls) <= 3:
            raise sqlalchemy.exc.OperationalError("SELECT ...", {}, ConnectionRefusedError("refused"))
        return Outcome(done=1)

    run_until(lambda: len(calls) >= 5, analyse, None, poll=0.01)
    assert calls == ["analyse"] * 5  # three refusals ridden out, then work again
    said = capsys.readouterr().err
    assert (
        said.count("the database does not answer (ConnectionRefusedError)") == 3 and "Traceback" not in said
    )
