"""Idempotency-Key: a retried write returns the first answer instead of being applied twice.

Keys are scoped to the API key that sent them; the same Idempotency-Key with a different request is a
conflict (409), never a silent replay of an answer to another question.
"""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy.exc import IntegrityError

from vigie.errors import ConflictError, VigieError
from vigie.store import Database, IdempotentResponse

MAX_KEY_LENGTH = 255


def request_hash(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + body).hexdigest()


def lookup(db: Database, key_id: int, idem_key: str, req_hash: str) -> tuple[int, Any] | None:
    """The stored (status, body) for this key, None if new; ConflictError if reused for another request."""
    if not idem_key or len(idem_key) > MAX_KEY_LENGTH:
        raise VigieError(f"Idempotency-Key must be 1–{MAX_KEY_LENGTH} characters")
    with db.session() as s:
        row = s.get(IdempotentResponse, (key_id, idem_key))
        if row is None:
            return None
        if row.request_hash != req_hash:
            raise ConflictError("this Idempotency-Key was already used for a different request")
        return row.status, row.response


def store(db: Database, key_id: int, idem_key: str, req_hash: str, status: int, body: Any) -> None:
    """Remember the answer; a concurrent duplicate that stored first wins (its answer is the one replayed)."""
    try:
        with db.session() as s:
            s.add(
                IdempotentResponse(
                    key_id=key_id, idem_key=idem_key, request_hash=req_hash, status=status, response=body
                )
            )
    except IntegrityError:
        pass
