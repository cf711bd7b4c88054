"""Encryption at rest for media that must be kept a while (queued analysis): AES-256-GCM, key outside the DB.

The key comes from ``VIGIE_SECRET_KEY`` (base64 of 32 bytes) or, on a single machine, from
``<VIGIE_HOME>/secret.key``, created on first use with mode 0600. A database dump alone never reveals media.
"""

from __future__ import annotations

import base64
import os
import time
from pathlib import Path

from vigie.errors import ConfigError

_NONCE = 12


class Vault:
    """Seals and opens bytes; the item id is bound in as associated data, so blobs cannot be swapped."""

    def __init__(self, key: bytes) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        if len(key) != 32:
            raise ConfigError("the vault key must be 32 bytes (VIGIE_SECRET_KEY: base64 of 32 random bytes)")
        self._aead = AESGCM(key)

    def seal(self, data: bytes, context: str) -> bytes:
        nonce = os.urandom(_NONCE)
        return nonce + self._aead.encrypt(nonce, data, context.encode())

    def open(self, blob: bytes, context: str) -> bytes:
        return self._aead.decrypt(blob[:_NONCE], blob[_NONCE:], context.encode())

    @classmethod
    def from_settings(cls, home: Path, env: dict[str, str] | None = None) -> Vault:
        env = dict(os.environ if env is None else env)
        if env.get("VIGIE_SECRET_KEY"):
            try:
                return cls(base64.b64decode(env["VIGIE_SECRET_KEY"], validate=True))
            except ValueError as exc:
                raise ConfigError(f"VIGIE_SECRET_KEY is not base64: {exc}") from None
        path = home / "secret.key"
        home.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # made before, or by another process (a second server worker) just now
            pass
        else:
            with os.fdopen(fd, "wb") as fh:
                fh.write(base64.b64encode(os.urandom(32)))
        for _ in range(50):  # that other process may still be writing its 44 bytes
            text = path.read_bytes().strip()
            if text:
                break
            time.sleep(0.01)
        return cls(base64.b64decode(text))
