"""Where the picture is inside a frame, letterbox bars, a meme's caption band or a screenshot, so its
content can be hashed alone.

Re-uploads often wrap an image: padding in any colour, letterbox bars, a caption band with text above or
below, an app's bars and side panels. PDQ of the wrapped image is far from the original's (a 20% pad leaves
~1% recall at 99.99% precision), so the content rectangle is found and hashed as extra query variants:
uniform bars are peeled line by line (``trim``, ``trim_strict``), a caption band is walked to the edge where
the picture starts (``trim_caption``), and a picture among page elements is searched on a thumbnail
(``trim_inner``).

Method: the colours of the outermost band of pixels (quantised) are the background candidates; a picture
is a dense block of non-background pixels: rows where most pixels are not background, then, within those
rows, columns where most are not. Text in a side panel is sparse and falls out. A box is accepted only
when the background really surrounds it (most pixels outside the box are background) and it is neither a
sliver nor almost the whole image, so an unframed photo normally gets no variant.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from vigie.signals.pdq import MIRROR, box_size, hash_pixels, hash_pixels_mirrored

THUMB = 192
_Q = 16  # quantisation step per channel for background colours
_TOL = 18  # a pixel within this (max channel difference) of a background colour is background
STRICT_TOL = 1
"""Tolerance of a second search for the picture inside peeled bars (0 grey levels in luma, 1 per RGB channel):
an app's page is flat to the pixel, so a pale picture on a pale page, which the usual tolerance takes for
page, still stands out. Looser (1–2 grey levels) loses the pale parts of such a picture to the page."""
STRICT_PEEL_TOL = 3
"""Tolerance of a second peel where bars were peeled: a pad is flat to a grey level or two, and a pale
picture's flat background (a light-grey graphic on white) differs by more, which the usual tolerance of 12
takes for more pad, peeling off half the picture."""
STRICT_EDGE_TOL = 3
"""Tolerance at which that picture's edges are then placed exactly (1 grey level in luma): JPEG ringing
beside an edge would otherwise push each edge a few pixels out into the page."""
CLEAN = 0.98
"""Share of a line's pixels in one colour for the line to count as that colour (a bar's line, a caption
band's clean line): JPEG noise and a stray pixel or two leave the rest."""
CAPTION_STOP = 0.75
"""A caption band (a bar with lines of text across it, as meme and repost apps add above or below the
picture) ends where a line clean of text is followed by one with less than this share in the bar's colour,
and no clean line follows within a line of text's height (a text line's top is the same edge, with clean
lines under it): the picture begins there at once, where a plain part of a graphic fades out over a few
lines and is not taken for a band."""
CAPTION_FLOOR = 0.25
"""A line with less than this share in the bar's colour, reached without such an edge, is picture: no band."""
CAPTION_TEXT = 0.12
"""Tallest run of text lines (no clean line between them) inside a caption band, as a share of the side."""
CAPTION_MAX = 0.4
"""Deepest caption band looked for, as a share of the side."""
CAPTION_TOL = 6
"""Tolerance of the caption band's colour: a band is drawn flat, and the usual 12 grey levels take a pale
picture's top (a light sky under a white band) for more band, where its edge then never comes at once."""


def _runs(mask: np.ndarray, gap: int) -> tuple[int, int] | None:
    """The longest run of True in a 1-D mask, bridging gaps of up to ``gap`` False values (the first of
    equally long ones)."""
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return None
    cut = np.flatnonzero(np.diff(idx) > gap + 1)  # a run ends at idx[cut] and the next starts after it
    starts = idx[np.concatenate(([0], cut + 1))]
    ends = idx[np.concatenate((cut, [idx.size - 1]))]
    k = int(np.argmax(ends - starts))
    return int(starts[k]), int(ends[k]) + 1


def background_bounds(rgb: np.ndarray, tol: int = _TOL) -> list[tuple[np.ndarray, np.ndarray]]:
    """For each frequent colour of the outer band of ``rgb`` (uint8, RGB or luma), the per-channel uint8
    bounds within which a pixel counts as that colour.

    The band is ``min(h, w) // 40`` lines deep on each side (corners counted twice); colours are
    quantised by ``_Q`` per channel, luma by half that (finer, or photos look like frames), and a colour
    is frequent at 8% of the band."""
    h, w = rgb.shape[:2]
    b = max(2, min(h, w) // 40)
    if rgb.ndim == 3 and rgb.shape[2] == 3:
        counts, sums = _band_colours(rgb, b)
    else:  # luma: a histogram of the 256 grey levels, summed per level of quantisation
        hist = _band_levels(rgb if rgb.ndim == 2 else rgb[:, :, 0], b)
        starts = np.arange(0, 256, _Q // 2)
        counts = np.add.reduceat(hist, starts)
        sums = np.add.reduceat(hist * np.arange(256), starts)[:, None]
        tol //= 2
    n = int(counts.sum())
    frequent = np.flatnonzero(counts >= 0.08 * n)
    if n == 0 or not frequent.size:
        return []
    # each frequent colour's mean (integer sums: exactly what mean() over its pixels gives)
    lo, hi = _uint8_bounds(sums[frequent] / counts[frequent, None], tol)
    return list(zip(lo, hi, strict=True))


@njit(cache=True, nogil=True)
def _band_boxes(h: int, w: int, b: int) -> list[tuple[int, int, int, int]]:  # pragma: no cover - compiled
    """(y0, y1, x0, x1) of the top and bottom bands (whole rows), then the left and right ones (whole
    columns), ``b`` lines deep."""
    return [
        (0, min(b, h), 0, w),
        (max(0, h - b), h, 0, w),
        (0, h, 0, min(b, w)),
        (0, h, max(0, w - b), w),
    ]


@njit(cache=True, nogil=True)
def _band_levels(px: np.ndarray, b: int) -> np.ndarray:  # pragma: no cover - compiled
    """Histogram of the grey levels of the outer band of (h, w) uint8 luma."""
    h, w = px.shape
    hist = np.zeros(256, np.int64)
    for y0, y1, x0, x1 in _band_boxes(h, w, b):
        for y in range(y0, y1):
            for x in range(x0, x1):
                hist[px[y, x]] += 1
    return hist


@njit(cache=True, nogil=True)
def _band_colours(px: np.ndarray, b: int) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    """Pixel counts and per-channel sums of each quantised colour of the outer band of (h, w, 3) uint8
    RGB, keyed by red, blue and green levels: one pass where numpy copied the band and made a weighted
    histogram per channel."""
    h, w = px.shape[0], px.shape[1]
    counts = np.zeros(4096, np.int64)
    sr, sg, sb = np.zeros(4096, np.int64), np.zeros(4096, np.int64), np.zeros(4096, np.int64)
    for y0, y1, x0, x1 in _band_boxes(h, w, b):
        for y in range(y0, y1):
            for x in range(x0, x1):
                r, g, bl = np.int64(px[y, x, 0]), np.int64(px[y, x, 1]), np.int64(px[y, x, 2])
                key = (r // _Q) * 256 + (bl // _Q) * 16 + g // _Q
                counts[key] += 1
                sr[key] += r
                sg[key] += g
                sb[key] += bl
    return counts, np.stack((sr, sg, sb), axis=1)


def _uint8_bounds(colour: np.ndarray, tol: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel uint8 (low, high) such that low <= pixel <= high exactly when |pixel - colour| <= tol,
    for uint8 pixels and a colour within 0–255: the test without wide temporaries."""
    lo = np.maximum(np.ceil(colour - tol), 0).astype(np.uint8)  # colour <= 255: only the low side can
    hi = np.minimum(np.floor(colour + tol), 255).astype(np.uint8)  # leave 0–255 below, the high side above
    return lo, hi


def mask_within(rgb: np.ndarray, bounds: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Pixels of ``rgb`` (uint8 RGB or luma) inside any of the colour ``bounds``."""
    if not bounds:
        return np.zeros(rgb.shape[:2], dtype=bool)
    if rgb.ndim == 2 or rgb.shape[2] == 1:  # luma: one table lookup instead of a pass per colour
        table = np.zeros(256, dtype=bool)
        for lo8, hi8 in bounds:
            table[int(lo8[0]) : int(hi8[0]) + 1] = True
        return table[rgb if rgb.ndim == 2 else rgb[:, :, 0]]
    # RGB: one pass over the pixels for every colour (numpy made ~8 full-size temporaries per colour)
    return _mask_rgb(rgb, np.stack([b[0] for b in bounds]), np.stack([b[1] for b in bounds]))


@njit(cache=True, nogil=True)
def _mask_rgb(px: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    """:func:`mask_within` of (h, w, 3) uint8 pixels (any strides) for (k, 3) uint8 bounds."""
    h, w = px.shape[0], px.shape[1]
    out = np.zeros((h, w), np.bool_)
    for y in range(h):
        for x in range(w):
            r, g, b = px[y, x, 0], px[y, x, 1], px[y, x, 2]
            for j in range(lo.shape[0]):
                if lo[j, 0] <= r <= hi[j, 0] and lo[j, 1] <= g <= hi[j, 1] and lo[j, 2] <= b <= hi[j, 2]:
                    out[y, x] = True
                    break
    return out


def background_mask(rgb: np.ndarray, tol: int = _TOL) -> np.ndarray:
    """Pixels (uint8 RGB or luma) whose colour is one of the frequent colours of the image's outer band."""
    return mask_within(rgb, background_bounds(rgb, tol))


def content_box(rgb: np.ndarray, tol: int = _TOL) -> tuple[float, float, float, float] | None:
    """(left, top, right, bottom) of the framed picture as fractions of the size, or None if unframed."""
    h, w = rgb.shape[:2]
    if min(h, w) < 16:
        return None
    bg = background_mask(rgb, tol)
    if not bg.any():  # no frequent edge colour: nothing frames the picture
        return None
    rows = _runs((~bg).mean(axis=1) >= 0.3, gap=max(1, h // 50))
    if rows is None:
        return None
    cols = _runs((~bg[rows[0] : rows[1]]).mean(axis=0) >= 0.25, gap=max(1, w // 50))
    if cols is None:
        return None
    top, bottom = rows
    left, right = cols
    area = (bottom - top) * (right - left) / (h * w)
    if not 0.12 <= area <= 0.95:
        return None
    outside = np.ones((h, w), dtype=bool)
    outside[top:bottom, left:right] = False
    if bg[outside].mean() < 0.8:  # what surrounds the box is not a frame
        return None
    return left / w, top / h, right / w, bottom / h


def _line_median(line: np.ndarray) -> np.ndarray:
    """Per-channel median of a (length, c) line: ``np.median(line, axis=0)`` by one partition."""
    n = len(line)
    mid = n // 2
    if n % 2:
        return np.partition(line, mid, axis=0)[mid].astype(np.float64)
    part = np.partition(line, (mid - 1, mid), axis=0)
    return (part[mid - 1].astype(np.float64) + part[mid]) / 2


def _peel_side(a: np.ndarray, step: int, tol: int) -> int:
    """How many outer lines of ``a`` (outermost first) are one colour: every ``step``-th, then exactly."""
    lo, hi = _uint8_bounds(_line_median(a[0]).astype(np.int16), tol)
    return int(_peel_lines(a, step, lo, hi))


@njit(cache=True, nogil=True)
def _share(a: np.ndarray, i: int, lo: np.ndarray, hi: np.ndarray) -> float:  # pragma: no cover - compiled
    """Share of line ``i`` of (n, length, c) uint8 pixels within [lo, hi] on every channel."""
    length, c = a.shape[1], a.shape[2]
    inside = 0
    for x in range(length):
        ok = True
        for ch in range(c):
            if a[i, x, ch] < lo[ch] or a[i, x, ch] > hi[ch]:
                ok = False
                break
        inside += ok
    return inside / length


@njit(cache=True, nogil=True)
def _one_colour(a: np.ndarray, i: int, lo: np.ndarray, hi: np.ndarray) -> bool:  # pragma: no cover - compiled
    """Whether line ``i`` of (n, length, c) uint8 pixels is one colour (:data:`CLEAN`) within [lo, hi]."""
    return _share(a, i, lo, hi) >= CLEAN


@njit(cache=True, nogil=True)
def _peel_lines(
    a: np.ndarray, step: int, lo: np.ndarray, hi: np.ndarray
) -> int:  # pragma: no cover - compiled
    """The lines of (n, length, c) pixels, outermost first, within the colour bounds: every ``step``-th
    line up to the first that is not, then each line after the last one that was. Lines are tested one
    at a time and the walk stops at the first miss, where numpy tested every line of the side."""
    n = a.shape[0]
    k = 0  # coarse lines (0, step, 2 step, …) one colour before the first that is not
    while k * step < n and _one_colour(a, k * step, lo, hi):
        k += 1
    if k == 0:  # the usual case, an unframed edge: one line decides
        return 0
    start = (k - 1) * step
    end = min(n, start + step + 1)
    j = start
    while j < end and _one_colour(a, j, lo, hi):
        j += 1
    return j


@njit(cache=True, nogil=True)
def _caption_lines(
    a: np.ndarray, lo: np.ndarray, hi: np.ndarray, clean: int
) -> int:  # pragma: no cover - compiled
    """How many outer lines of (n, length, c) pixels, outermost first, are a caption band in the colour
    [lo, hi], or 0: the outermost line clean (:data:`CLEAN`), text on some lines clear of the edge (JPEG
    ringing beside a plain pad's edge is not text), and the band's edge as :data:`CAPTION_STOP` says,
    within :data:`CAPTION_MAX` of the side. The first ``clean`` lines are known to be clean (a peel took
    them off), and are not looked at again."""
    n = a.shape[0]
    most, text_max = int(n * CAPTION_MAX), max(2, int(n * CAPTION_TEXT))
    if n < 8 or clean >= most or (clean == 0 and _share(a, 0, lo, hi) < CLEAN):
        return 0
    limit = min(n, most + text_max + 1)
    s = np.ones(limit)
    m, unclean = 0, 0
    for j in range(max(0, clean - 1), limit):  # shares, until a run of unclean lines taller than text
        s[j] = _share(a, j, lo, hi)
        m = j + 1
        unclean = unclean + 1 if s[j] < CLEAN else 0
        if unclean > text_max:
            break
    gap = max(8, n // 60)  # JPEG rings up to a block or two beside an edge: that is not text
    text = -1  # the first line with text on it
    for r in range(1, min(m, most + 1)):
        if s[r] >= CAPTION_STOP:
            if s[r] < CLEAN and text < 0:
                text = r
            continue
        if s[max(0, r - 3) : r].max() < CLEAN:  # no clean line just before (JPEG rings at an edge)
            if s[r] < CAPTION_FLOOR:
                return 0
            text = r if text < 0 else text
            continue
        if (s[r + 1 : min(m, r + 1 + text_max)] >= CLEAN).any():  # clean lines after: a text line's top
            text = r if text < 0 else text
            continue
        return r if 0 <= text < r - gap else 0
    return 0


def caption_box(
    px: np.ndarray, base: tuple[int, int, int, int], peeled: tuple[int, int] = (0, 0), tol: int = CAPTION_TOL
) -> tuple[int, int, int, int] | None:
    """The picture under or over a caption band (a bar with lines of text across it, as meme and repost
    apps add at the top or bottom), or None. Its left and right are those of ``base`` (the box bars were
    peeled to, or the whole image); its top and bottom are the band's edge, or the image's where there is
    no band (a picture's own plain border must not be peeled there); ``peeled`` says how many lines a peel
    at ``tol`` or stricter took off the top and the bottom, which need no second look."""
    a = px if px.ndim == 3 else px[:, :, None]
    h = a.shape[0]
    found = []
    for lines, clean in ((a, peeled[0]), (a[::-1], peeled[1])):
        lo, hi = _uint8_bounds(_line_median(lines[0]).astype(np.int16), tol)
        found.append(int(_caption_lines(lines, lo, hi, clean)))
    top, bottom = found
    if not top and not bottom:
        return None
    return base[0], top, base[2], h - bottom


def peel(
    px: np.ndarray, step: int = 1, tol: int = 12, within: tuple[int, int, int, int] | None = None
) -> tuple[int, int, int, int] | None:
    """Exact box inside uniform bars or a frame: rows and columns peeled while they are one colour.

    Works at full resolution and does not care what colours the picture holds (a dark photo between black
    bars is still found), but needs each bar to be a single colour; ``content_box`` handles the rest.
    ``within``, the box a looser peel found, bounds a stricter one, which can only peel less: only the lines
    that one peeled are looked at again.
    """
    a = px if px.ndim == 3 else px[:, :, None]
    h, w = a.shape[:2]
    t = a.transpose(1, 0, 2)
    x0, y0, x1, y1 = within or (w, h, 0, 0)  # how far each side may go

    def side(lines: np.ndarray, most: int) -> int:
        return _peel_side(lines[: most + 1], step, tol) if most > 0 else 0

    top, bottom = side(a, y0), h - side(a[::-1], h - y1)
    left, right = side(t, x0), w - side(t[::-1], w - x1)
    if bottom - top < h * 0.1 or right - left < w * 0.1:
        return None
    if max(top, h - bottom) < h * 0.02 and max(left, w - right) < w * 0.02:
        return None
    return left, top, right, bottom


def picture_boxes(px: np.ndarray) -> dict[str, tuple[int, int, int, int]]:
    """Pixel boxes (left, top, right, bottom) of the picture inside bars or a frame (``trim``, and
    ``trim_strict`` where bars peeled to the grey level give another box), under or over a caption band
    (``trim_caption``) and inside a screenshot-like layout (``trim_inner``); empty for an unframed image.

    Bars are peeled at the resolution of ``px`` and a picture is searched on a strided view, so an unframed
    image costs well under a millisecond. Both boxes are kept when they differ: a photo whose own edge is
    plain can fool the second search, never the first. Where bars were peeled and the usual search sees only
    page, it looks again for a page flat to the pixel (``STRICT_TOL``).
    """
    h, w = px.shape[:2]
    step = max(1, max(h, w) // THUMB)
    boxes: dict[str, tuple[int, int, int, int]] = {}
    x0, y0, x1, y1 = peel(px, step) or (0, 0, w, h)
    strict = None
    if (x0, y0, x1, y1) != (0, 0, w, h):
        boxes["trim"] = (x0, y0, x1, y1)
        strict = peel(px, step, STRICT_PEEL_TOL, within=boxes["trim"])  # only where bars were found
        if strict is not None and _moved(strict, boxes["trim"], w, h):
            boxes["trim_strict"] = strict
    base = boxes.get("trim_strict") or boxes.get("trim") or (0, 0, w, h)
    caption = caption_box(px, base, (strict[1], h - strict[3]) if strict else (0, 0))
    if caption is not None and all(_moved(caption, b, w, h) for b in boxes.values()):
        boxes["trim_caption"] = caption
    inner = px[y0:y1, x0:x1]
    edge_tol = _TOL
    frac = content_box(inner[::step, ::step])
    if frac is None and boxes:  # bars were peeled: a composed image, whose page may be flat to the pixel
        frac, edge_tol = content_box(inner[::step, ::step], STRICT_TOL), STRICT_EDGE_TOL
    if frac is not None:
        ih, iw = inner.shape[:2]
        coarse = (round(frac[0] * iw), round(frac[1] * ih), round(frac[2] * iw), round(frac[3] * ih))
        bx = _refine(inner, coarse, step, edge_tol)
        boxes["trim_inner"] = (x0 + bx[0], y0 + bx[1], x0 + bx[2], y0 + bx[3])
    return boxes


def _moved(a: tuple[int, int, int, int], b: tuple[int, int, int, int], w: int, h: int) -> bool:
    """Whether two boxes differ by 2% of a side somewhere: less changes a PDQ by a few bits at most."""
    return (
        max(abs(a[0] - b[0]), abs(a[2] - b[2])) > 0.02 * w
        or max(abs(a[1] - b[1]), abs(a[3] - b[3])) > 0.02 * h
    )


def trimmed_hashes(
    px: np.ndarray, full_size: tuple[int, int], luma: np.ndarray | None = None, mirrored: bool = False
) -> dict[str, str]:
    """PDQ hashes of each :func:`picture_boxes` box, by name; empty for an unframed image. With
    ``mirrored``, each box's left–right mirror too (``trim_mirror``, …), for a query.

    ``px`` are the pixels PDQ hashing already decoded (reduced luma for large JPEGs, or RGB) of an image
    of ``full_size``, so nothing is decoded twice; ``luma``, when given, is their luma, hashed instead
    (the same bits, without converting colour again).
    """
    src = px if luma is None else luma
    out: dict[str, str] = {}
    for name, (x0, y0, x1, y1) in picture_boxes(px).items():
        box, size = src[y0:y1, x0:x1], box_size(px, (x0, y0, x1, y1), full_size)
        hsh, mirror = hash_pixels_mirrored(box, size) if mirrored else (hash_pixels(box, size), None)
        if hsh.quality > 0 and hsh.hex not in out.values():
            out[name] = hsh.hex
            if mirror is not None:
                out[name + MIRROR] = mirror
    return out


def _refine(
    px: np.ndarray, box: tuple[int, int, int, int], step: int, tol: int = _TOL
) -> tuple[int, int, int, int]:
    """Each edge of a box found on a strided view, moved to the exact line where the picture starts.

    The background colours come from the box grown by two strides; pixels are tested only in the strips
    where each edge can move, at full resolution.
    """
    if step == 1:
        return box
    x0, y0, x1, y1 = box
    h, w = px.shape[:2]
    oy, ox = max(0, y0 - 2 * step), max(0, x0 - 2 * step)
    region = px[oy : min(h, y1 + 2 * step), ox : min(w, x1 + 2 * step)]
    bounds = background_bounds(region, tol)

    def picture_rows(lo: int, hi: int) -> tuple[np.ndarray, int]:
        lo = max(0, lo)
        strip = region[lo : max(lo, hi), x0 - ox : x1 - ox]
        return (~mask_within(strip, bounds)).mean(axis=1) >= 0.5, lo

    def picture_cols(lo: int, hi: int) -> tuple[np.ndarray, int]:
        lo = max(0, lo)
        strip = region[y0 - oy : y1 - oy, lo : max(lo, hi)]
        return (~mask_within(strip, bounds)).mean(axis=0) >= 0.5, lo

    def first(found: tuple[np.ndarray, int]) -> int | None:
        idx = np.flatnonzero(found[0])
        return int(idx[0]) + found[1] if idx.size else None

    def last(found: tuple[np.ndarray, int]) -> int | None:
        idx = np.flatnonzero(found[0])
        return int(idx[-1]) + found[1] + 1 if idx.size else None

    ny0 = first(picture_rows(y0 - oy - step, y0 - oy + step))
    ny1 = last(picture_rows(y1 - oy - step, y1 - oy + step))
    nx0 = first(picture_cols(x0 - ox - step, x0 - ox + step))
    nx1 = last(picture_cols(x1 - ox - step, x1 - ox + step))
    return (
        x0 if nx0 is None else nx0 + ox,
        y0 if ny0 is None else ny0 + oy,
        x1 if nx1 is None else nx1 + ox,
        y1 if ny1 is None else ny1 + oy,
    )
