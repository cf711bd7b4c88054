"""The cells of a grid of pictures (a video's contact sheet, a collage), so each can be hashed alone.

A contact sheet is how a video is previewed where the video itself is not posted: its frames laid out in
rows and columns between plain gutters, often under a header of text (file name, duration) and with a
timestamp in each frame's corner. A collage lays several images out the same way. PDQ of the whole sheet
says nothing about any frame in it, so each cell is hashed as an extra query variant ``cell_<row>_<col>``
(1-based), which meets a known video's frames or a known image; a bank entry made from a sheet keeps its
cells too (``vigie.banks.ingest``).

Method: a gutter is a line of pixels in one colour (:data:`vigie.signals.borders.CLEAN`, within
:data:`TOL`), in the colour the grid's gutters and margin share; lines plain in another colour (a flat sky
across three frames) are picture. Runs of other lines are bands; the run of consecutive bands of one height
(a header's text lines are of another), apart by narrow gutters, that covers most lines gives the grid's
rows, and the same test on the columns of those rows gives its columns. A grid needs at least two cells,
a plain line in its colour crossing it both ways (gutters or margin), and cells that cover most of the image,
so an ordinary photo, a padded one, a screenshot or a meme gets none. Lines are tested on every few pixels
and a line is given up once it cannot be plain: a photo with no plain line costs ~10 µs, one with large flat
parts up to ~0.4 ms.

Without gutters (ffmpeg's ``tile`` filter lays frames edge to edge), a grid is equal tiles whose every
edge, along both axes, is a peak of the picture's mean change across lines: the line-to-line change
averaged along the edge stands :data:`TILE_PEAK` times above what the lines around it reach (their 90th
percentile, which counts a JPEG's block edges, plus :data:`TILE_FLOOR`). Averaged along the whole edge, a
faint step between two frames of one smooth scene still shows, where a textured picture's own strong
changes drown a point-by-point test. One straight edge across a photo is not a layout: on the 4,290
altered photos of the robustness benchmark, no layout of 2 to 8 tiles a side peaks above 1.3 at every
edge (a graphic drawn as tiles, a Truchet pattern, is a grid by construction). It costs ~60 µs on a
megapixel's luma, the columns first, since they are read in memory order. Tiles inside a plain margin or
under a header (ffmpeg's ``tile`` with a ``margin``, a thumbnailer's sheet without gaps) are tested on that
block too, its edges snapped onto the step from margin to picture; the layout of more tiles wins, since a
symmetric margin lets the whole image split in two at its middle tile edge.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from vigie.signals.bands import band_hashes
from vigie.signals.borders import CLEAN
from vigie.signals.pdq import MIN_QUALITY, box_size, hash_pixels

TOL = 6
"""Grey levels (per channel) a gutter line's pixels may stray from its colour: JPEG rings beside a cell."""
SAMPLES = 128
"""Pixels looked at along a line, evenly spaced: a stray bright pixel is then at most one or two of them."""
MAX_CELLS = 8
"""Most cells along a side: a sheet of 8×8 frames is already thumbnails under 1/8 of the side."""
SAME_SIZE = 0.04
"""Cells of one row or column of a grid differ in size by at most this share (and two pixels)."""
MIN_COVER = 0.4
"""The cells together cover at least this share of the image: a header or a frame may take the rest."""
MAX_GUTTER = 0.25
"""Widest gutter between two cells, as a share of a cell's side: a flat band across a photo is wider."""
TILE_PEAK = 1.6
"""How far above the lines around it a tile's edge must stand (see :func:`_edge_peak`), at every edge of
the layout, for pictures laid out without gutters to be a grid."""
TILE_FLOOR = 1.0
"""Grey levels added to the lines' own change, so a flat picture's faint noise is no peak."""
TILE_WINDOW = 40
"""Lines on either side of an edge that tell how much the picture itself changes there."""
PREFIX = "cell_"
"""Names a cell's query variants: ``cell_<row>_<col>``, and its cuts ``cell_<row>_<col>_cut_top``."""


def is_cell(name: str | None) -> bool:
    """Whether a query variant's name is that of a grid cell (a picture among others, not the whole)."""
    return name is not None and name.startswith(PREFIX)


@njit(cache=True, nogil=True)
def _misses(
    a: np.ndarray, i: int, ref: np.ndarray, step: int, tol: int, allowed: int
) -> int:  # pragma: no cover - compiled
    """Samples of line ``i`` (every ``step``-th pixel) off ``ref`` by more than ``tol`` on a channel, counted
    up to one past ``allowed``."""
    length, c = a.shape[1], a.shape[2]
    missed = 0
    for x in range(0, length, step):
        for ch in range(c):
            if abs(int(a[i, x, ch]) - ref[ch]) > tol:
                missed += 1
                break
        if missed > allowed:
            break
    return missed


@njit(cache=True, nogil=True)
def _clean_lines(
    a: np.ndarray, step: int, tol: int, colour: int
) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    """For each line of (n, length, c) pixels (uint8 or float32): whether it is one colour (every
    ``step``-th pixel within ``tol`` of the colour in its middle, all but :data:`CLEAN`), and that colour's
    first channel. 32 spread samples come first, one of them allowed to miss, so a photo's line is given up
    after a few; with ``colour`` >= 0, only lines in that colour (first channel) are looked at further."""
    n, length, c = a.shape
    clean = np.zeros(n, dtype=np.bool_)
    level = np.zeros(n, dtype=np.int16)
    allowed = int((length + step - 1) // step * (1.0 - CLEAN))
    coarse = max(step, length // 32)
    ref = np.empty(c, dtype=np.int16)
    for i in range(n):
        # the colour: the median of three samples, so one stray pixel in the middle cannot set it
        for ch in range(c):
            p, q, r = int(a[i, length // 4, ch]), int(a[i, length // 2, ch]), int(a[i, 3 * length // 4, ch])
            ref[ch] = max(min(p, q), min(max(p, q), r))
        level[i] = ref[0]
        if colour >= 0 and abs(ref[0] - colour) > tol:
            continue
        if _misses(a, i, ref, coarse, tol, 1) <= 1:
            clean[i] = _misses(a, i, ref, step, tol, allowed) <= allowed
    return clean, level


def _lines(a: np.ndarray, colour: int = -1) -> tuple[np.ndarray, np.ndarray]:
    return _clean_lines(a, max(1, a.shape[1] // SAMPLES), TOL, colour)


@njit(cache=True, nogil=True)
def _change(a: np.ndarray, axis: int, samples: int) -> np.ndarray:  # pragma: no cover - compiled
    """Mean absolute change from each row (``axis`` 0) or column (1) of (h, w) pixels to the next, over
    about ``samples`` points spread along it, visited in memory order."""
    h, w = a.shape
    if axis == 0:
        out = np.zeros(h - 1, dtype=np.float64)
        stride = max(1, w // samples)
        for y in range(h - 1):
            for x in range(0, w, stride):
                out[y] += abs(float(a[y + 1, x]) - float(a[y, x]))
        return out / len(range(0, w, stride))
    out = np.zeros(w - 1, dtype=np.float64)
    stride = max(1, h // samples)
    for y in range(0, h, stride):
        for x in range(w - 1):
            out[x] += abs(float(a[y, x + 1]) - float(a[y, x]))
    return out / len(range(0, h, stride))


@njit(cache=True, nogil=True)
def _edge_peak(change: np.ndarray, edge: int) -> float:  # pragma: no cover - compiled
    """How far the change across the edge before line ``edge`` (within a line) stands above the 90th
    percentile of the changes :data:`TILE_WINDOW` lines around it, plus :data:`TILE_FLOOR`."""
    n = change.shape[0]
    peak = 0.0
    for i in range(max(0, edge - 2), min(n, edge + 1)):
        peak = max(peak, change[i])
    lo, hi = max(0, edge - TILE_WINDOW), min(n, edge + TILE_WINDOW)
    around = np.concatenate((change[lo : max(lo, edge - 3)], change[min(hi, edge + 2) : hi]))
    base = np.percentile(around, 90.0) if around.size else 0.0
    return peak / (base + TILE_FLOOR)


@njit(cache=True, nogil=True)
def _tiles(a: np.ndarray, axis: int) -> int:  # pragma: no cover - compiled
    """How many equal tiles the (h, w) pixels split into along ``axis``, edge to edge with no gutter (the
    most, 2 to :data:`MAX_CELLS`, whose every edge peaks), or 1."""
    n = a.shape[axis]
    change = _change(a, axis, SAMPLES)
    for k in range(MAX_CELLS, 1, -1):
        if n // k < 12:
            continue
        ok = True
        for i in range(1, k):
            if _edge_peak(change, (i * n + k // 2) // k) < TILE_PEAK:
                ok = False
                break
        if ok:
            return k
    return 1


def _tiled_cells(luma: np.ndarray) -> list[list[tuple[int, int, int, int]]]:
    """The cells of pictures laid edge to edge in equal tiles, at least 2×2 (one straight edge across a
    photo is not a layout), or ``[]``."""
    h, w = luma.shape
    cols = int(_tiles(luma, 1))  # first: the columns' changes are read in memory order, twice as fast
    if cols < 2:
        return []
    rows = int(_tiles(luma, 0))
    if rows < 2:
        return []
    ys = [(i * h + rows // 2) // rows for i in range(rows + 1)]
    xs = [(i * w + cols // 2) // cols for i in range(cols + 1)]
    return [[(xs[c], ys[r], xs[c + 1], ys[r + 1]) for c in range(cols)] for r in range(rows)]


def _bands(clean: np.ndarray) -> list[tuple[int, int]]:
    """Runs [start, end) of lines that are not one colour."""
    edges = np.flatnonzero(np.diff(np.concatenate(([True], clean, [True])).astype(np.int8)))
    return [(int(s), int(e)) for s, e in zip(edges[::2], edges[1::2], strict=True)]


def _same_size_run(bands: list[tuple[int, int]], n: int) -> list[tuple[int, int]]:
    """The consecutive bands of one size (:data:`SAME_SIZE`), apart by at most :data:`MAX_GUTTER` of it,
    that cover the most lines, each a cell's side (at least 1/(2·MAX_CELLS) of the ``n`` lines and 12)."""
    least = max(12, n // (2 * MAX_CELLS))
    best: list[tuple[int, int]] = []
    i = 0
    while i < len(bands):
        run = [bands[i]]
        size = bands[i][1] - bands[i][0]
        j = i + 1
        while (
            j < len(bands)
            and abs((bands[j][1] - bands[j][0]) - size) <= max(2, SAME_SIZE * size)
            and bands[j][0] - bands[j - 1][1] <= size * MAX_GUTTER
        ):
            run.append(bands[j])
            j += 1
        if size >= least and sum(e - s for s, e in run) > sum(e - s for s, e in best):
            best = run
        i = j
    return best[:MAX_CELLS]


def _gutter_colours(clean: np.ndarray, level: np.ndarray) -> list[int]:
    """Colours (first channel) the grid's gutters may be drawn in: those of the clean lines, most lines
    first; a picture's own plain lines (a flat sky across three frames) are in other colours."""
    levels = level[clean]
    if not levels.size:
        return []
    counts = np.bincount(levels.astype(np.int64) // (2 * TOL + 1))
    return [int(levels[levels // (2 * TOL + 1) == b].mean()) for b in np.argsort(-counts)[:3] if counts[b]]


def _gutter_lines(clean: np.ndarray, level: np.ndarray, colour: int) -> np.ndarray:
    return clean & (np.abs(level - colour) <= TOL)


def grid_cells(px: np.ndarray) -> list[list[tuple[int, int, int, int]]]:
    """The cells (left, top, right, bottom) of a grid of pictures in ``px``, row by row, or ``[]`` when the
    image is not one (see the module's docstring).

    ``px`` is luma (uint8, or float32 as PDQ hashing computes it), or RGB for very large images: luma is
    what to pass, since JPEG's half-resolution colour bleeds across a narrow gutter."""
    a = px if px.ndim == 3 else px[:, :, None]
    h, w = a.shape[:2]
    if h < 24 or w < 24:
        return []
    row_clean, row_level = _lines(a)
    # a grid's gutters or margin cross it both ways: no clean row, no grid (a row of pictures side by side
    # has its margin above and below)
    for colour in _gutter_colours(row_clean, row_level):
        rows = _same_size_run(_bands(_gutter_lines(row_clean, row_level, colour)), h)
        if not rows:
            continue
        col_clean, col_level = _lines(a[rows[0][0] : rows[-1][1]].transpose(1, 0, 2), colour)
        cols = _same_size_run(_bands(_gutter_lines(col_clean, col_level, colour)), w)
        if len(rows) * len(cols) < 2:
            continue
        cover = sum(e - s for s, e in rows) * sum(e - s for s, e in cols)
        if cover >= MIN_COVER * h * w:
            return [[(x0, y0, x1, y1) for x0, x1 in cols] for y0, y1 in rows]
    # tiles edge to edge, over the whole image or inside a plain margin: the layout of more tiles, since a
    # symmetric margin lets the whole image split in two at the middle tile edge
    return max([_tiled_cells(a[:, :, 0]), *_tiled_blocks(a, row_clean, row_level)], key=_count)


def _snap(change: np.ndarray, lo: int, hi: int, reach: int = 8) -> tuple[int, int]:
    """Lines [lo, hi) of a block moved onto the picture's own edges, the strongest change between lines
    within ``reach`` of each end: JPEG's 8×8 blocks ring a few lines into a plain margin, which the plain-line
    test counts as picture, and tiles split from too wide a block miss their edges."""
    top, bottom = lo, hi
    if lo > 0:  # a margin before: the step from it to the picture
        top = lo + int(np.argmax(change[lo - 1 : max(lo, min(lo + reach, hi - 1))]))
    if hi <= len(change):  # and after
        start = max(top, hi - reach - 1)
        bottom = start + 1 + int(np.argmax(change[start:hi]))
    return (top, bottom) if bottom - top >= (hi - lo) // 2 else (lo, hi)


def _count(cells: list[list[tuple[int, int, int, int]]]) -> int:
    return sum(len(row) for row in cells)


def _tiled_blocks(
    a: np.ndarray, row_clean: np.ndarray, row_level: np.ndarray
) -> list[list[list[tuple[int, int, int, int]]]]:
    """Tiles edge to edge inside a plain margin, or under a header set apart by one (ffmpeg's ``tile``
    with a ``margin``, a thumbnailer's sheet without gaps): the tile test on the block inside the plain
    lines at the image's edges (the margin, in the colour of the first or last row), and on the largest
    block between plain lines in that colour, where that block is most of the image but not all of it."""
    h, w = a.shape[:2]
    margin = next((int(row_level[i]) for i in (0, h - 1) if row_clean[i]), None)
    if margin is None:
        return []
    rows = _bands(_gutter_lines(row_clean, row_level, margin))
    if not rows:  # every row plain: no picture at all
        return []
    luma = a[:, :, 0]
    cols_of: dict[tuple[int, int], list[tuple[int, int]]] = {}  # both picks often take the same rows
    out, tried = [], set()
    for pick in (_inside, _largest):
        y0, y1 = pick(rows)
        if (y0, y1) not in cols_of:
            col_clean, col_level = _lines(a[y0:y1].transpose(1, 0, 2), margin)
            cols_of[y0, y1] = _bands(_gutter_lines(col_clean, col_level, margin))
        x0, x1 = pick(cols_of[y0, y1])
        area = (x1 - x0) * (y1 - y0)
        if area == h * w or area < MIN_COVER * h * w or (x0, y0, x1, y1) in tried:
            continue
        tried.add((x0, y0, x1, y1))
        y0, y1 = _snap(_change(np.ascontiguousarray(luma[:, x0:x1]), 0, SAMPLES), y0, y1)
        x0, x1 = _snap(_change(np.ascontiguousarray(luma[y0:y1]), 1, SAMPLES), x0, x1)
        cells = _tiled_cells(np.ascontiguousarray(luma[y0:y1, x0:x1]))
        out.append([[(c0 + x0, r0 + y0, c1 + x0, r1 + y0) for c0, r0, c1, r1 in row] for row in cells])
    return out


def _inside(bands: list[tuple[int, int]]) -> tuple[int, int]:
    """From the first band's start to the last one's end: what the plain lines at the edges leave."""
    return (bands[0][0], bands[-1][1]) if bands else (0, 0)


def _largest(bands: list[tuple[int, int]]) -> tuple[int, int]:
    return max(bands, key=lambda band: band[1] - band[0]) if bands else (0, 0)


def cell_hashes(px: np.ndarray, full_size: tuple[int, int]) -> dict[str, str]:
    """PDQs of the cells of a grid of pictures, by name ``cell_<row>_<col>`` (1-based), and of each cell
    without its top or bottom quarter (``cell_<row>_<col>_cut_top``, ``…_cut_bottom``: a sheet stamps a
    timestamp in a frame's corner, which moves a smooth frame's PDQ 50-90 bits), those of quality 50 or
    more; empty for an image that is not a grid.

    ``px`` is the luma PDQ hashing already computed (a reduced decode for large JPEGs) of an image of
    ``full_size``: gutters are found and cells hashed on it, nothing decoded twice."""
    cells = grid_cells(px)
    if not cells:
        return {}
    out: dict[str, str] = {}
    for r, row in enumerate(cells, 1):
        for c, (x0, y0, x1, y1) in enumerate(row, 1):
            cell, size = px[y0:y1, x0:x1], box_size(px, (x0, y0, x1, y1), full_size)
            hsh = hash_pixels(cell, size)
            if hsh.quality >= MIN_QUALITY:
                out[f"{PREFIX}{r}_{c}"] = hsh.hex
            for cut, value in band_hashes(cell, size)[0].items():
                out[f"{PREFIX}{r}_{c}_{cut}"] = value
    return out
