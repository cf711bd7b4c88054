"""Read every PNG text chunk (tEXt, zTXt, iTXt) from the bytes, before or after the pixels, without decoding.

Decompression is bounded per chunk and in total, so a hostile file cannot inflate without limit.
"""

from __future__ import annotations

import struct
import zlib

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MAX_CHUNK_TEXT = 16 * 1024 * 1024
MAX_TOTAL_TEXT = 64 * 1024 * 1024


def _inflate(data: bytes, limit: int) -> bytes:
    d = zlib.decompressobj()
    out = d.decompress(data, limit + 1)
    if len(out) > limit:
        raise ValueError("compressed text chunk inflates past the limit")
    return out


def png_text(data: bytes) -> dict[str, str]:
    """Keyword → text of a PNG's text chunks (later duplicates win); {} for non-PNG or damaged files."""
    if not data.startswith(PNG_MAGIC):
        return {}
    out: dict[str, str] = {}
    pos, total = 8, 0
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        ctype = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if len(body) < length or ctype == b"IEND":
            break
        try:
            if ctype == b"tEXt":
                key, _, text = body.partition(b"\x00")
                value = text.decode("latin-1")
            elif ctype == b"zTXt":
                key, _, rest = body.partition(b"\x00")
                value = _inflate(rest[1:], MAX_CHUNK_TEXT).decode("latin-1")
            elif ctype == b"iTXt":
                key, _, rest = body.partition(b"\x00")
                compressed, rest = rest[0], rest[2:]
                _lang, _, rest = rest.partition(b"\x00")
                _tkey, _, text = rest.partition(b"\x00")
                value = (_inflate(text, MAX_CHUNK_TEXT) if compressed else text).decode("utf-8", "replace")
            else:
                continue
        except (ValueError, zlib.error, IndexError):
            continue
        total += len(value)
        if total > MAX_TOTAL_TEXT:
            break
        out[key.decode("latin-1", "replace")] = value
    return out
