"""The upload route's multipart splitter: the same parts as Starlette's streaming parser, the same limits."""

from __future__ import annotations

import random

import anyio
import httpx
import pytest
from starlette.datastructures import Headers, UploadFile
from starlette.formparsers import MultiPartParser

from vigie.service.forms import MAX_FIELD_BYTES, MAX_PARTS, FormError, parse_form


def _encode(data: dict[str, str], files: dict[str, tuple[str, bytes, str]]) -> tuple[bytes, str]:
    req = httpx.Request("POST", "http://x/", data=data, files=files)
    return req.read(), req.headers["content-type"]


def _starlette(body: bytes, ctype: str) -> tuple[dict[str, str], dict[str, tuple[str, str, bytes]]]:
    async def run() -> tuple[dict[str, str], dict[str, tuple[str, str, bytes]]]:
        async def stream():  # type: ignore[no-untyped-def]
            for i in range(0, len(body), 7000):
                yield body[i : i + 7000]
            yield b""

        form = await MultiPartParser(Headers({"content-type": ctype}), stream()).parse()
        fields, files = {}, {}
        for k, v in form.multi_items():
            if isinstance(v, UploadFile):
                files[k] = (v.filename or "", v.content_type or "", await v.read())
                await v.close()
            else:
                fields[k] = v
        return fields, files

    return anyio.run(run)


def _ours(body: bytes, ctype: str) -> tuple[dict[str, str], dict[str, tuple[str, str, bytes]]]:
    form = parse_form(body, ctype)
    return form.fields, {k: (f.filename, f.content_type, f.data) for k, f in form.files.items()}


def test_same_parts_as_starlette() -> None:
    rng = random.Random(0)
    cases = [
        ({}, {"file": ("a.jpg", b"\xff\xd8" + rng.randbytes(300_000), "image/jpeg")}),
        (
            {"external_id": "e-1", "caption": "les élèves — 😀", "url": "https://x/y?a=1&b=2"},
            {"file": ('we"ird; name.png', b"", "image/png")},
        ),
        ({"file": "not a file"}, {"other": ("x", b"1", "a/b")}),
        (
            {"a": "\r\n--boundary-like\r\n"},
            {"f1": ("x", b"--\r\n\r\n--", "text/plain"), "f2": ("", b"1", "x/y")},
        ),
    ]
    for data, files in cases:
        body, ctype = _encode(data, files)
        assert _ours(body, ctype) == _starlette(body, ctype)


def test_handwritten_bodies() -> None:
    ctype = 'multipart/form-data; boundary="b0"'
    body = (
        b"preamble\r\n--b0  \r\nContent-Disposition: form-data; name=caption\r\n\r\nhi\r\n"
        b'--b0\r\ncontent-disposition: form-data; name="file"; filename="p.jpg"\r\n'
        b"Content-Type: image/jpeg\r\n\r\n\x00\x01\r\n--b0--\r\nepilogue"
    )
    assert _ours(body, ctype) == ({"caption": "hi"}, {"file": ("p.jpg", "image/jpeg", b"\x00\x01")})
    # a repeated name is refused: Starlette's form keeps the last part, which would check one of two files
    # and answer as if both had been
    body = b"--b0\r\nContent-Disposition: form-data; name=x\r\n\r\n1\r\n--b0\r\n"
    body += b"Content-Disposition: form-data; name=x\r\n\r\n2\r\n--b0--\r\n"
    with pytest.raises(FormError, match="given twice"):
        _ours(body, ctype)


@pytest.mark.parametrize(
    ("body", "ctype"),
    [
        (b"--b0\r\nContent-Disposition: form-data; name=x\r\n\r\n1\r\n--b0--", "multipart/form-data"),
        (b"no boundary anywhere", "multipart/form-data; boundary=b0"),
        (
            b"--b0\r\nContent-Disposition: form-data; name=x\r\n\r\nunterminated",
            "multipart/form-data; boundary=b0",
        ),
        (b"--b0\r\nContent-Type: text/plain\r\n\r\n1\r\n--b0--", "multipart/form-data; boundary=b0"),
        (b"--b0\r\n\r\n1\r\n--b0--", "multipart/form-data; boundary=b0"),
        (b"--b0\r\nno colon here\r\n\r\n1\r\n--b0--", "multipart/form-data; boundary=b0"),
        (
            b"--b0junk\r\nContent-Disposition: form-data; name=x\r\n\r\n1\r\n--b0--",
            "multipart/form-data; boundary=b0",
        ),
    ],
)
def test_malformed_bodies(body: bytes, ctype: str) -> None:
    with pytest.raises(FormError):
        parse_form(body, ctype)


def test_limits() -> None:
    one = {"f": ("a", b"1", "image/jpeg")}  # a file part, so that httpx sends multipart
    body, ctype = _encode({"caption": "x" * (MAX_FIELD_BYTES + 1)}, one)
    with pytest.raises(FormError, match="exceeds"):
        parse_form(body, ctype)
    body, ctype = _encode({}, {"file": ("a", b"x" * (MAX_FIELD_BYTES + 1), "image/jpeg")})
    assert len(parse_form(body, ctype).files["file"].data) == MAX_FIELD_BYTES + 1  # files are not capped here
    body, ctype = _encode({f"f{i}": "1" for i in range(MAX_PARTS)}, one)
    with pytest.raises(FormError, match="too many parts"):
        parse_form(body, ctype)
