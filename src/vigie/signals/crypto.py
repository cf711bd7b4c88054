"""Cryptographic hashes of the bytes (md5, sha1, sha256): exact identity, as industry hash lists use."""

from __future__ import annotations

import hashlib


def crypto_hashes(data: bytes) -> dict[str, str]:
    """md5, sha1 and sha256 hex digests of ``data``."""
    return {
        "md5": hashlib.md5(data, usedforsecurity=False).hexdigest(),
        "sha1": hashlib.sha1(data, usedforsecurity=False).hexdigest(),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
