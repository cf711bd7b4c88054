"""multipart/form-data (RFC 7578) split in one pass over a body already in memory.

Starlette's streaming parser calls back into Python per chunk and per header byte run, spools files past
1 MB to a temporary file and leaves it for the garbage collector (a ResourceWarning per upload); an upload
body here is at most the service's size limit and is held anyway (idempotency hashes it), so finding the
boundaries with ``bytes.find`` is a fraction of the cost. Same limits as Starlette's: at most 1,000 parts,
non-file parts at most 1 MB; a malformed body is a ``FormError`` (the API answers 400).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from python_multipart.multipart import parse_options_header

MAX_PARTS = 1000
MAX_FIELD_BYTES = 1024 * 1024
MAX_HEADER_BYTES = 16 * 1024


class FormError(ValueError):
    """The body is not well-formed multipart/form-data."""


@dataclass
class FilePart:
    filename: str
    content_type: str
    data: bytes


@dataclass
class Form:
    """Text fields and file parts by name; a name sent twice keeps its last part (as Starlette does)."""

    fields: dict[str, str] = field(default_factory=dict)
    files: dict[str, FilePart] = field(default_factory=dict)


def _text(value: bytes) -> str:
    return value.decode("utf-8", errors="replace")


def _headers(raw: bytes) -> dict[bytes, bytes]:
    out: dict[bytes, bytes] = {}
    for line in raw.split(b"\r\n"):
        name, sep, value = line.partition(b":")
        if not sep:
            raise FormError("malformed part header")
        out[name.strip().lower()] = value.strip()
    return out


def parse_form(body: bytes, content_type: str) -> Form:
    """The parts of ``body`` sent with ``content_type`` (``multipart/form-data; boundary=...``)."""
    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary or len(boundary) > 200:
        raise FormError("multipart body without a valid boundary")
    delim = b"--" + boundary
    if body.startswith(delim):
        pos = len(delim)
    else:  # a preamble, ignored
        at = body.find(b"\r\n" + delim)
        if at < 0:
            raise FormError("multipart body without its boundary")
        pos = at + 2 + len(delim)
    sep = b"\r\n" + delim
    form = Form()
    parts = 0
    while True:
        if body.startswith(b"--", pos):
            return form  # the close delimiter; an epilogue after it is ignored
        eol = body.find(b"\r\n", pos)
        if eol < 0 or body[pos:eol].strip(b" \t"):
            raise FormError("malformed multipart boundary line")
        head_end = body.find(b"\r\n\r\n", eol)
        if head_end == eol:  # no header lines at all: the blank line follows the boundary line
            raise FormError("multipart part without a Content-Disposition header")
        if head_end < 0 or head_end - eol > MAX_HEADER_BYTES:
            raise FormError("multipart part headers are missing or too long")
        headers = _headers(body[eol + 2 : head_end])
        end = body.find(sep, head_end + 4)
        if end < 0:
            raise FormError("multipart body ends inside a part")
        parts += 1
        if parts > MAX_PARTS:
            raise FormError(f"too many parts; at most {MAX_PARTS} are allowed")
        disposition = headers.get(b"content-disposition")
        if disposition is None:
            raise FormError("multipart part without a Content-Disposition header")
        _, opts = parse_options_header(disposition)
        name = _text(opts.get(b"name", b""))
        data = body[head_end + 4 : end]
        if name in form.files or name in form.fields:  # one item per request: never drop a part silently
            raise FormError(f"part '{name[:64]}' given twice; send one file (and one of each field) per item")
        if b"filename" in opts:
            ctype = _text(headers.get(b"content-type", b"application/octet-stream"))
            form.files[name] = FilePart(_text(opts[b"filename"]), ctype, data)
        else:
            if len(data) > MAX_FIELD_BYTES:
                raise FormError(f"part '{name[:64]}' exceeds {MAX_FIELD_BYTES // 1024} KB")
            form.fields[name] = _text(data)
        pos = end + len(sep)
