"""Cryptographic hashes of the bytes (md5, sha1, sha256): exact identity, as industry hash lists use."""

from __future__ import annotations

import hashlib

_CHUNK = 256 * 1024  # small enough to stay in cache between the three updates


def crypto_hashes(data: bytes) -> tuple[str, str, str]:
    """(md5, sha1, sha256) hex digests of ``data`` in one pass over memory, chunk by chunk."""
    md5 = hashlib.md5(usedforsecurity=False)
    sha1 = hashlib.sha1(usedforsecurity=False)
    sha256 = hashlib.sha256()
    view = memoryview(data)
    for i in range(0, len(view), _CHUNK):
        chunk = view[i : i + _CHUNK]
        md5.update(chunk)
        sha1.update(chunk)
        sha256.update(chunk)
    return md5.hexdigest(), sha1.hexdigest(), sha256.hexdigest()
