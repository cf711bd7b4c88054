"""API keys: random secrets shown once, stored as SHA-256, each with explicit scopes (least privilege)."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from vigie.errors import NotFoundError, VigieError
from vigie.store import ApiKey, Database
from vigie.store.models import utcnow

SCOPES = ("items:write", "lookup", "banks:write", "admin", "metrics")
"""``metrics``: read /metrics only, for a Prometheus scraper that should hold no other right."""
PREFIX = "vg_"


@dataclass(frozen=True)
class KeyInfo:
    id: int
    name: str
    prefix: str
    scopes: tuple[str, ...]
    created_at: datetime
    revoked: bool

    def allows(self, scope: str) -> bool:
        return not self.revoked and (scope in self.scopes or "admin" in self.scopes)


def _digest(secret: str) -> str:
    # the secret has 256 bits of entropy: a fast hash suffices, a slow KDF would only slow every request
    return hashlib.sha256(secret.encode()).hexdigest()


def _info(k: ApiKey) -> KeyInfo:
    return KeyInfo(k.id, k.name, k.prefix, tuple(k.scopes), k.created_at, k.revoked_at is not None)


MAX_NAME = 128
"""Longest key name: the size of its column, which PostgreSQL enforces."""


class KeyStore:
    """Keys in the database; ``verify`` answers from a short cache so lookups do not query per request.

    A revocation therefore takes effect within ``cache_s`` seconds in every replica.
    """

    def __init__(self, db: Database, cache_s: float = 0.0) -> None:
        self.db = db
        self.cache_s = cache_s
        self._cache: dict[str, tuple[float, KeyInfo | None]] = {}

    def create(self, scopes: list[str], name: str = "") -> tuple[KeyInfo, str]:
        """A new key and its secret (the only time the secret exists outside the caller)."""
        bad = [s for s in scopes if s not in SCOPES]
        if bad or not scopes:
            raise VigieError(f"scopes must be some of {', '.join(SCOPES)}; got {', '.join(scopes) or 'none'}")
        if len(name) > MAX_NAME:
            raise VigieError(f"a key's name is at most {MAX_NAME} characters; got {len(name)}")
        secret = PREFIX + secrets.token_urlsafe(32)
        with self.db.session() as s:
            key = ApiKey(name=name, prefix=secret[:10], key_hash=_digest(secret), scopes=sorted(set(scopes)))
            s.add(key)
            s.flush()
            return _info(key), secret

    def list(self) -> list[KeyInfo]:
        with self.db.session() as s:
            return [_info(k) for k in s.scalars(sa.select(ApiKey).order_by(ApiKey.id))]

    def revoke(self, key_id: int) -> None:
        with self.db.session() as s:
            key = s.get(ApiKey, key_id)
            if key is None:
                raise NotFoundError(f"no API key with id {key_id}")
            key.revoked_at = key.revoked_at or utcnow()

    def verify(self, secret: str) -> KeyInfo | None:
        """The key behind ``secret`` if it exists and is not revoked."""
        if not secret.startswith(PREFIX):
            return None
        digest = _digest(secret)
        now = time.monotonic()
        hit = self._cache.get(digest)
        if hit is not None and now - hit[0] < self.cache_s:
            return hit[1]
        with self.db.session() as s:
            key = s.scalar(sa.select(ApiKey).where(ApiKey.key_hash == digest))
            info = _info(key) if key is not None and key.revoked_at is None else None
        if self.cache_s > 0:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (now, info)
        return info
