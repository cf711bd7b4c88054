"""Provenance analyzers that read what the file says about itself: generator metadata, IPTC/XMP and EXIF.

These are claims, not proof: metadata is trivially stripped or forged, so confidence stays below 1 and every
finding carries ``evidence["claim"]`` saying where the claim came from.
"""

from __future__ import annotations

import gzip
import io
import json
import re
from typing import Any

import numpy as np
from PIL import Image

from vigie.analyzers.base import Finding
from vigie.analyzers.genmeta import GenerationInfo, parse_novelai, parse_text_fields
from vigie.analyzers.pngtext import png_text
from vigie.analyzers.prompt_risk import prompt_risk_findings
from vigie.media.image import image_header, open_checked
from vigie.media.item import Item

CLAIM = "file metadata written by software; it can be forged or stripped"
IPTC_DST = "http://cv.iptc.org/newscodes/digitalsourcetype/"
#: digitalSourceType code → (ai_generated, confidence)
DIGITAL_SOURCE_TYPES: dict[str, tuple[bool | None, float]] = {
    "trainedAlgorithmicMedia": (True, 0.9),
    "compositeWithTrainedAlgorithmicMedia": (True, 0.8),
    "algorithmicallyEnhanced": (None, 0.5),
    "algorithmicMedia": (True, 0.6),
    "compositeSynthetic": (True, 0.6),
    "digitalCapture": (False, 0.5),
    "negativeFilm": (False, 0.5),
    "positiveFilm": (False, 0.5),
    "print": (False, 0.4),
    "minorHumanEdits": (False, 0.4),
    "compositeCapture": (False, 0.4),
}
GENERATOR_SOFTWARE = re.compile(
    r"(stable ?diffusion|automatic1111|comfyui|invokeai|novelai|midjourney|dall[·-]?e|firefly|imagen|"
    r"bing image creator|leonardo\.ai|nightcafe|fooocus|swarmui|flux|ideogram|runway|sdxl)",
    re.I,
)
_XMP_START, _XMP_END = b"<x:xmpmeta", b"</x:xmpmeta>"
_XMP_FIELD = re.compile(
    r"(Iptc4xmpExt:(?:DigitalSourceType|AISystemUsed|AISystemVersionUsed|AIPromptInformation|AIPromptWriterName))"
    r"""(?:\s*=\s*["']([^"']*)["']|>\s*(?:<rdf:Alt>\s*<rdf:li[^>]*>)?([^<]*)<)""",
)
_STEALTH_MAGICS = {"stealth_pnginfo": False, "stealth_pngcomp": True}
_MAX_STEALTH_BITS = 64 * 1024 * 1024 * 8


def decode_user_comment(raw: Any) -> str | None:
    """EXIF UserComment: 8-byte charset prefix (UNICODE = UTF-16, ASCII) then the text."""
    if isinstance(raw, str):
        return raw or None
    if not isinstance(raw, bytes | bytearray) or len(raw) < 8:
        return None
    prefix, body = bytes(raw[:8]), bytes(raw[8:])
    if prefix.startswith(b"UNICODE"):
        candidates = [body.decode("utf-16-be", "replace"), body.decode("utf-16-le", "replace")]
        return (
            max(candidates, key=lambda t: sum(c.isascii() and c.isprintable() for c in t)).strip("\x00")
            or None
        )
    return body.decode("utf-8", "replace").strip("\x00 ") or None


def read_stealth(im: Image.Image) -> str | None:
    """Text hidden in the alpha channel's least significant bits (NovelAI / A1111 stealth pnginfo)."""
    if "A" not in im.getbands():
        return None
    alpha = np.asarray(im.getchannel("A"))
    bits = (alpha.T & 1).reshape(-1)  # column by column, as the writers do
    if bits.size < 152:
        return None
    magic = np.packbits(bits[:120]).tobytes().decode("latin-1")
    if magic not in _STEALTH_MAGICS:
        return None
    length = int("".join(map(str, bits[120:152])), 2)
    if length <= 0 or length > min(_MAX_STEALTH_BITS, bits.size - 152):
        return None
    payload = np.packbits(bits[152 : 152 + length]).tobytes()
    if _STEALTH_MAGICS[magic]:
        with gzip.GzipFile(fileobj=io.BytesIO(payload)) as fh:
            payload = fh.read(16 * 1024 * 1024)
    return payload.decode("utf-8", "replace")


def _finding(info: GenerationInfo, where: str, confidence: float = 0.9) -> Finding:
    return Finding(
        analyzer="generator_metadata",
        kind="generator_metadata",
        confidence=confidence,
        ai_generated=True,
        generator=info.generator,
        summary=f"{where} carries {info.generator} generation parameters",
        evidence={"claim": CLAIM, "found_in": where, **info.to_dict()},
    )


class GeneratorMetadataAnalyzer:
    """Prompts, models, LoRAs and seeds that front-ends write into PNG chunks, EXIF or alpha bits."""

    name = "generator_metadata"

    def analyze(self, item: Item) -> list[Finding]:
        out: list[Finding] = []
        chunks = png_text(item.data)
        if chunks:
            out += [_finding(i, "PNG text chunks") for i in parse_text_fields(chunks)]
        header = image_header(item)
        if header is None:
            return out + prompt_risk_findings(out)
        comment = None
        if header.exif is not None:
            try:
                comment = decode_user_comment(header.exif.get_ifd(0x8769).get(0x9286))
            except Exception:
                comment = None
        if comment:
            out += [_finding(i, "EXIF UserComment") for i in parse_text_fields({"parameters": comment})]
        if header.format in ("PNG", "WEBP") and not out:
            hidden = _stealth(item)
            if hidden:
                out += [_finding(i, "alpha-channel stealth metadata", 0.95) for i in _parse_hidden(hidden)]
        return out + prompt_risk_findings(out)


def _stealth(item: Item) -> str | None:
    """:func:`read_stealth` of the item, decoded only where its header passed vigie's limits."""
    im = open_checked(item)
    if im is None:
        return None
    try:
        with im:
            return read_stealth(im)
    except Exception:
        return None


def _parse_hidden(text: str) -> list[GenerationInfo]:
    doc: Any = None
    if text.lstrip().startswith("{"):
        try:
            doc = json.loads(text)
        except ValueError:
            doc = None
    if isinstance(doc, dict):
        fields = {k: v if isinstance(v, str) else json.dumps(v) for k, v in doc.items()}
        info = parse_novelai(fields)
        return [info] if info else parse_text_fields(fields)
    return parse_text_fields({"parameters": text})


def xmp_packet(data: bytes, limit: int = 4 * 1024 * 1024) -> str | None:
    start = data.find(_XMP_START, 0, limit)
    if start < 0:
        return None
    end = data.find(_XMP_END, start, start + limit)
    return data[start : end + len(_XMP_END)].decode("utf-8", "replace") if end > 0 else None


class ProvenanceTagsAnalyzer:
    """IPTC digitalSourceType and AI fields (XMP), EXIF Software and camera tags."""

    name = "iptc_exif"

    def analyze(self, item: Item) -> list[Finding]:
        out: list[Finding] = []
        xmp = xmp_packet(item.data) or png_text(item.data).get("XML:com.adobe.xmp")
        fields: dict[str, str] = {}
        if xmp:
            for m in _XMP_FIELD.finditer(xmp):
                fields[m.group(1).split(":", 1)[1]] = (m.group(2) or m.group(3) or "").strip()
        dst = fields.pop("DigitalSourceType", "")
        if dst:
            code = dst.rsplit("/", 1)[-1]
            ai, conf = DIGITAL_SOURCE_TYPES.get(code, (None, 0.3))
            out.append(
                Finding(
                    analyzer=self.name,
                    kind="digital_source_type",
                    confidence=conf,
                    ai_generated=ai,
                    generator=fields.get("AISystemUsed") or None,
                    summary=f"IPTC digitalSourceType {code}",
                    evidence={"claim": CLAIM, "digital_source_type": dst, **fields},
                )
            )
        elif fields:
            out.append(
                Finding(
                    analyzer=self.name,
                    kind="iptc_ai_fields",
                    confidence=0.8,
                    ai_generated=True,
                    generator=fields.get("AISystemUsed") or None,
                    summary="IPTC AI system fields",
                    evidence={"claim": CLAIM, **fields},
                )
            )
        header = image_header(item)
        exif = header.exif if header is not None else None
        if exif is None:
            return out
        software = str(exif.get(0x0131) or "").strip()
        make, model = str(exif.get(0x010F) or "").strip(), str(exif.get(0x0110) or "").strip()
        if software and GENERATOR_SOFTWARE.search(software):
            out.append(
                Finding(
                    analyzer=self.name,
                    kind="generator_software_tag",
                    confidence=0.7,
                    ai_generated=True,
                    generator=software[:100],
                    summary=f"EXIF Software names a generator: {software[:60]}",
                    evidence={"claim": CLAIM, "software": software[:500]},
                )
            )
        if make or model:
            out.append(
                Finding(
                    analyzer=self.name,
                    kind="camera_tags",
                    confidence=0.2,
                    ai_generated=False,
                    summary=f"EXIF names a camera: {make} {model}".strip(),
                    evidence={
                        "claim": CLAIM + "; camera tags are easily copied",
                        "make": make,
                        "model": model,
                    },
                )
            )
        return out
