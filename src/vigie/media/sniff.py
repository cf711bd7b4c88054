"""Tell what content is from its first bytes; a file name or extension is never trusted."""

from __future__ import annotations

ARCHIVE_TYPES = frozenset({"application/zip", "application/x-tar", "application/gzip"})
_FTYP_IMAGE = {b"heic": "image/heic", b"heix": "image/heic", b"hevc": "image/heic", b"heim": "image/heic",
               b"heis": "image/heic", b"mif1": "image/heif", b"msf1": "image/heif", b"avif": "image/avif",
               b"avis": "image/avif"}  # fmt: skip
_DIB_SIZES = frozenset({12, 16, 40, 52, 56, 64, 108, 124})  # BITMAPINFOHEADER and its versions


def sniff(data: bytes) -> str | None:
    """The media type of ``data`` (e.g. ``image/jpeg``, ``video/mp4``, ``application/zip``) or None."""
    head = data[:64]
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head.startswith(b"BM") and len(data) > 26 and int.from_bytes(head[14:18], "little") in _DIB_SIZES:
        return "image/bmp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "image/tiff"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "video/x-msvideo"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _FTYP_IMAGE:
            return _FTYP_IMAGE[brand]
        return "video/quicktime" if brand == b"qt  " else "video/mp4"
    if head[4:8] in (b"moov", b"mdat", b"wide", b"free", b"pnot") and int.from_bytes(head[:4], "big") >= 8:
        return "video/quicktime"  # QuickTime files from before the ftyp box
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm" if b"webm" in data[:4096] else "video/x-matroska"
    if head[:3] == b"FLV":
        return "video/x-flv"
    if head[:4] == b"\x00\x00\x01\xba" or (len(data) > 188 and data[0] == 0x47 and data[188] == 0x47):
        return "video/mp2t" if data[0] == 0x47 else "video/mpeg"
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "application/zip"
    if head[:2] == b"\x1f\x8b":
        return "application/gzip"
    if len(data) > 262 and data[257:262] == b"ustar":
        return "application/x-tar"
    return None


def is_image(media_type: str | None) -> bool:
    return bool(media_type and media_type.startswith("image/"))


def is_video(media_type: str | None) -> bool:
    return bool(media_type and media_type.startswith("video/"))
