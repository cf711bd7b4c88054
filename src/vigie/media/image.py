"""Open images safely: byte and pixel limits from the header before decoding, bombs and truncation refused."""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from PIL import Image, ImageFile, UnidentifiedImageError

from vigie.errors import MediaError
from vigie.media.item import Item
from vigie.settings import MediaLimits

try:  # HEIC/AVIF through libheif; optional at run time, declared in the package dependencies
    import pillow_heif

    pillow_heif.register_heif_opener()
except ImportError:  # pragma: no cover
    pillow_heif = None  # type: ignore[assignment]

ImageFile.LOAD_TRUNCATED_IMAGES = False  # a truncated file is an error, never silently grey pixels
Image.MAX_IMAGE_PIXELS = None  # we enforce our own, configurable limit below, before decoding

#: Pillow plugins vigie lets parse untrusted bytes. Pillow knows ~40 formats, some of which hand the file
#: to external programs (EPS runs Ghostscript) or are rarely fuzzed; content outside this list is
#: "unsupported". MPO (camera JPEGs with a second picture) comes in through the JPEG plugin.
IMAGE_FORMATS = ("JPEG", "PNG", "GIF", "BMP", "TIFF", "WEBP", "HEIF", "AVIF")
Image.init()
_OPENABLE = tuple(f for f in IMAGE_FORMATS if f in Image.OPEN)  # AVIF needs Pillow ≥ 11.3 or pillow-heif


def open_image(data: bytes, limits: MediaLimits) -> Image.Image:
    """An opened (header read, pixels not yet decoded) image, or :class:`MediaError` with a reason.

    The caller decodes (``draft``/``load``/``convert``) inside :func:`decode_errors` so truncation and
    corruption found while decoding get the same clear reasons.
    """
    if not data:
        raise MediaError("empty", "the file is empty (0 bytes)")
    if len(data) > limits.max_bytes:
        raise MediaError("too_large", f"{len(data)} bytes is over the limit of {limits.max_bytes}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data), formats=_OPENABLE)
    except UnidentifiedImageError:
        raise MediaError("unsupported", "not an image format vigie can read") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise MediaError("bomb", f"decompression bomb: {exc}") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise MediaError("corrupt", f"cannot read image header: {exc}") from None
    w, h = im.size
    if w <= 0 or h <= 0:
        raise MediaError("corrupt", f"invalid image size {w}×{h}")
    if w * h > limits.max_pixels:
        raise MediaError(
            "bomb", f"{w}×{h} = {w * h} pixels is over the limit of {limits.max_pixels} (decompression bomb?)"
        )
    return im


@contextmanager
def decode_errors() -> Iterator[None]:
    """Turn decoder exceptions into MediaError with a stable reason (truncated, corrupt)."""
    try:
        yield
    except MediaError:
        raise
    except (OSError, ValueError, SyntaxError, EOFError, IndexError, MemoryError) as exc:
        text = str(exc)
        reason = "truncated" if "truncated" in text or isinstance(exc, EOFError) else "corrupt"
        raise MediaError(reason, f"cannot decode image: {text or type(exc).__name__}") from None


def load_rgb(data: bytes, limits: MediaLimits) -> Image.Image:
    """Fully decoded RGB image (first frame), for analyzers and thumbnails."""
    im = open_image(data, limits)
    with decode_errors():
        im.load()
        return im.convert("RGB")


REFUSED = "refused"
"""Key of :attr:`Item.decoded` under which hashing leaves the reason it refused to open the item (a bomb,
too large, not a format vigie reads), so no analyzer opens it either."""
LIMITS = "limits"
"""Key under which hashing leaves the :class:`MediaLimits` it opened the item with: the analyzers open it
under the same (an operator's own limits, not the defaults)."""
HEADER = "header"
"""Key under which :func:`image_header` keeps the item's header."""


@dataclass(frozen=True)
class ImageHeader:
    """What an image's header says, read once per item for every analyzer that asks: no pixels decoded."""

    format: str | None
    size: tuple[int, int]
    exif: Image.Exif | None


def image_header(item: Item) -> ImageHeader | None:
    """The item's image header, read through :func:`open_image` (its format allowlist, and the byte and
    pixel limits hashing used) and kept in ``item.decoded``; None for what hashing refused, what is not an
    image vigie reads, or what is over the limits. Analyzers ask here instead of opening the bytes
    themselves, so none of them decodes a decompression bomb that hashing refused, or hands a format vigie
    does not read (EPS runs Ghostscript) to its Pillow plugin."""
    if HEADER not in item.decoded:
        header = None
        if REFUSED not in item.decoded:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    with open_image(item.data, item.decoded.get(LIMITS) or MediaLimits()) as im:
                        header = ImageHeader(im.format, im.size, _exif(im, item.data))
            except MediaError:
                pass
        item.decoded[HEADER] = header
    result: ImageHeader | None = item.decoded[HEADER]
    return result


def open_checked(item: Item) -> Image.Image | None:
    """A freshly opened image (pixels not yet decoded) for an analyzer that decodes them, or None where
    :func:`image_header` has none: only the formats and sizes vigie's own hashing accepts get decoded."""
    if image_header(item) is None:
        return None
    return Image.open(io.BytesIO(item.data), formats=_OPENABLE)


def _exif(im: Image.Image, data: bytes) -> Image.Exif | None:
    """EXIF without decoding pixels: Pillow loads a whole PNG to look for eXIf, so ask only if it is there."""
    if im.format == "PNG" and b"eXIf" not in data:
        return None
    try:
        return im.getexif()
    except Exception:
        return None
