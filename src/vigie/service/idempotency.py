"""Idempotency-Key: a retried write returns the first answer instead of being applied twice.

Keys are scoped to the API key that sent them; the same Idempotency-Key with a different request is a
conflict (409), never a silent replay of an answer to another question.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError

from vigie.errors import ConflictError, VigieError
from vigie.store import Database, IdempotentResponse
from vigie.store.models import utcnow

MAX_KEY_LENGTH = 255
PENDING = 0
"""``status`` of a reserved key whose request is still running (set by :func:`reserve`)."""
STALE_S = 120
"""A reservation older than this belongs to a request that died with its process: it may be taken over."""


def request_hash(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + body).hexdigest()


def _check(idem_key: str) -> None:
    if not idem_key or len(idem_key) > MAX_KEY_LENGTH:
        raise VigieError(f"Idempotency-Key must be 1–{MAX_KEY_LENGTH} characters")


def lookup(db: Database, key_id: int, idem_key: str, req_hash: str) -> tuple[int, Any] | None:
    """The stored (status, body) for this key, None if new; ConflictError if reused for another request."""
    _check(idem_key)
    with db.session() as s:
        row = s.get(IdempotentResponse, (key_id, idem_key))
        if row is None:
            return None
        if row.request_hash != req_hash:
            raise ConflictError("this Idempotency-Key was already used for a different request")
        return row.status, row.response


def reserve(db: Database, key_id: int, idem_key: str, req_hash: str) -> tuple[int, Any] | None:
    """Take the key for a request about to run (None), before it runs, so that a twin sent meanwhile cannot
    run too; or the answer it already has, (PENDING, None) while its first request still runs."""
    _check(idem_key)
    now = utcnow()
    row = {"key_id": key_id, "idem_key": idem_key, "request_hash": req_hash, "status": PENDING}
    try:
        with db.engine.begin() as conn:
            conn.execute(_INSERT, {**row, "response": None, "created_at": now})
        return None
    except IntegrityError:
        pass
    hit = lookup(db, key_id, idem_key, req_hash)
    if hit is None or hit[0] != PENDING:
        return hit if hit is not None else reserve(db, key_id, idem_key, req_hash)
    with db.engine.begin() as conn:  # a reservation its request's process never came back to: take it over
        taken = conn.execute(
            sa.update(IdempotentResponse)
            .where(_row(key_id, idem_key), IdempotentResponse.status == PENDING)
            .where(IdempotentResponse.created_at < now - timedelta(seconds=STALE_S))
            .values(created_at=now)
        ).rowcount
    return None if taken else hit


def settle(db: Database, key_id: int, idem_key: str, status: int, body: Any) -> None:
    """Store a reserved request's answer; an error answer frees the key instead, so a retry runs again."""
    with db.engine.begin() as conn:
        where = _row(key_id, idem_key)
        if 200 <= status < 300:
            conn.execute(sa.update(IdempotentResponse).where(where).values(status=status, response=body))
        else:
            conn.execute(sa.delete(IdempotentResponse).where(where, IdempotentResponse.status == PENDING))


def replayed(hit: tuple[int, Any]) -> JSONResponse:
    """The first answer to a key's request, sent again, marked as such."""
    return JSONResponse(hit[1], status_code=hit[0], headers={"Idempotent-Replayed": "true"})


def _row(key_id: int, idem_key: str) -> sa.ColumnElement[bool]:
    return sa.and_(IdempotentResponse.key_id == key_id, IdempotentResponse.idem_key == idem_key)


@dataclass(frozen=True)
class Claim:
    """An Idempotency-Key to record in the same transaction as the write it answers: either both land or
    neither does, and of concurrent duplicates only one can commit (the key is the table's primary key)."""

    key_id: int
    idem_key: str
    request_hash: str

    def record(self, conn: sa.Connection, status: int, body: Any) -> None:
        """Insert the answer inside ``conn``'s transaction; a duplicate raises :class:`Duplicate`."""
        row = {"key_id": self.key_id, "idem_key": self.idem_key, "request_hash": self.request_hash}
        try:
            conn.execute(_INSERT, {**row, "status": status, "response": body})
        except IntegrityError:  # the caller's transaction is rolled back whole: no item, no event
            raise Duplicate(self) from None


class Duplicate(Exception):
    """Another request with this Idempotency-Key committed first: replay its answer instead."""

    def __init__(self, claim: Claim) -> None:
        super().__init__(claim.idem_key)
        self.claim = claim


_INSERT = sa.insert(IdempotentResponse)


WRITE_METHODS = frozenset({b"POST", b"PUT", b"PATCH", b"DELETE", "POST", "PUT", "PATCH", "DELETE"})


class IdempotencyMiddleware:
    """``Idempotency-Key`` for every write endpoint that does not handle it itself (bank writes, admin).

    A retried request with the same key and the same bytes gets the first 2xx answer replayed (header
    ``Idempotent-Replayed: true``) instead of running twice; the same key with other bytes is a 409.
    Answers are stored per API key, so one platform's keys never collide with another's.
    """

    def __init__(
        self, app: Any, db: Database, verify_key: Any, skip: tuple[str, ...] = ("/v1/items",)
    ) -> None:
        self.app, self.db, self.verify_key, self.skip = app, db, verify_key, skip

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] not in WRITE_METHODS or scope["path"] in self.skip:
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v for k, v in scope.get("headers") or []}
        idem = headers.get(b"idempotency-key")
        auth = headers.get(b"authorization", b"").decode("latin-1")
        key = (
            self.verify_key(auth.partition(" ")[2].strip())
            if idem and auth.lower().startswith("bearer ")
            else None
        )
        if idem is None or key is None:  # no key, or auth will fail anyway: nothing to remember
            await self.app(scope, receive, send)
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        from vigie.service import problems

        req_hash = request_hash(scope["method"], scope["path"], body)
        idem_key = idem.decode("latin-1")
        try:
            hit = reserve(self.db, key.id, idem_key, req_hash)
        except VigieError as exc:
            status = 409 if isinstance(exc, ConflictError) else 400
            await problems.problem(status, "Conflict" if status == 409 else "Bad Request", str(exc))(
                scope, receive, send
            )
            return
        if hit is not None and hit[0] == PENDING:
            busy = problems.problem(409, "Conflict", "a request with this Idempotency-Key is still running")
            busy.headers["Retry-After"] = "1"
            await busy(scope, receive, send)
            return
        if hit is not None:
            await replayed(hit)(scope, receive, send)
            return
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        status = 500
        chunks: list[bytes] = []

        async def capture(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, replay, capture)
        except BaseException:
            settle(self.db, key.id, idem_key, 500, None)  # nothing was answered: a retry runs again
            raise
        answer = None
        if 200 <= status < 300:
            import json

            try:
                answer = json.loads(b"".join(chunks) or b"null")
            except ValueError:
                status = 500  # not JSON, so not replayable: free the key
        settle(self.db, key.id, idem_key, status, answer)
