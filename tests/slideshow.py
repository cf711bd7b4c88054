"""Benign test media: slideshows of the shared photos with a slow pan and zoom, encoded with PyAV, and the
contact sheets a video is previewed with."""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont


def slideshow_frames(
    photos: Sequence[Path], seconds_each: float, fps: int, size: tuple[int, int], seed: int = 0
) -> Iterable[np.ndarray]:
    """RGB frames: each photo shown ``seconds_each`` s, panning and zooming slowly (Ken Burns)."""
    w, h = size
    rng = np.random.default_rng(seed)
    for p in photos:
        with Image.open(p) as im:
            src = im.convert("RGB")
        src.thumbnail((w * 3, h * 3))
        n = max(1, round(seconds_each * fps))
        z0, z1 = rng.uniform(0.75, 0.95, 2)
        x0, y0 = rng.uniform(0, 1, 2)
        for k in range(n):
            a = k / max(n - 1, 1)
            z = z0 + (z1 - z0) * a
            cw, ch = src.width * z, src.width * z * h / w
            ch = min(ch, src.height)
            cw = ch * w / h
            x = (src.width - cw) * (x0 * (1 - a) + (1 - x0) * a)
            y = (src.height - ch) * y0
            yield np.asarray(src.resize(size, Image.Resampling.BILINEAR, box=(x, y, x + cw, y + ch)))


def encode(
    frames: Iterable[np.ndarray], fps: int, size: tuple[int, int], bitrate: int | None = None
) -> bytes:
    """An MP4 (H.264 when available) of the frames."""
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream("libx264" if "libx264" in av.codecs_available else "mpeg4", rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        if bitrate:
            stream.bit_rate = bitrate
        stream.time_base = Fraction(1, fps)
        for i, img in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buf.getvalue()


def sheet(
    pictures: list[Image.Image],
    cols: int,
    cell: tuple[int, int] = (320, 200),
    gutter: int = 8,
    margin: int = 12,
    header: int = 56,
    bg: tuple[int, int, int] = (24, 24, 24),
    stamps: bool = True,
) -> tuple[Image.Image, list[tuple[int, int, int, int]]]:
    """A contact sheet as thumbnail tools lay one out (a header of file details, pictures between
    gutters, a timestamp in each one's corner), and each picture's box in it."""
    rows = -(-len(pictures) // cols)
    cw, ch = cell
    size = (
        2 * margin + cols * cw + (cols - 1) * gutter,
        2 * margin + header + rows * ch + (rows - 1) * gutter,
    )
    out = Image.new("RGB", size, bg)
    d = ImageDraw.Draw(out)
    font = ImageFont.load_default(size=14)
    if header:
        d.text(
            (margin, 10),
            "File: clip.mp4   Size: 12.3 MB   Duration: 00:03:12",
            fill=(230, 230, 230),
            font=font,
        )
        d.text((margin, 30), "Video: h264 1280x720 30 fps", fill=(230, 230, 230), font=font)
    boxes = []
    for k, pic in enumerate(pictures):
        r, c = divmod(k, cols)
        x, y = margin + c * (cw + gutter), margin + header + r * (ch + gutter)
        out.paste(pic.resize(cell, Image.Resampling.BILINEAR), (x, y))
        if stamps:
            d.text((x + cw - 64, y + ch - 18), f"00:0{k}:12", fill=(255, 255, 255), font=font,
                   stroke_width=1, stroke_fill=(0, 0, 0))  # fmt: skip
        boxes.append((x, y, x + cw, y + ch))
    return out, boxes
