"""Benign transforms for the robustness benchmark: how re-uploaded copies differ from the original.

Each transform is a named, deterministic function ``PIL RGB image -> PIL RGB image``. Nothing here draws
people: overlays are text, shapes and flat UI bars on top of the benign shared photos.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont, ImageOps

Transform = Callable[[Image.Image], Image.Image]


def jpeg(q: int) -> Transform:
    def f(im: Image.Image) -> Image.Image:
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=q)
        return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")

    return f


def resize(k: float) -> Transform:
    return lambda im: im.resize(
        (max(8, round(im.width * k)), max(8, round(im.height * k))), Image.Resampling.BILINEAR
    )


def crop_sides(frac: float) -> Transform:
    """``frac`` of the width and height removed from every side."""
    return lambda im: im.crop(
        (
            round(im.width * frac),
            round(im.height * frac),
            round(im.width * (1 - frac)),
            round(im.height * (1 - frac)),
        )
    )


def crop_corner(frac: float) -> Transform:
    """Off-centre: ``frac`` of the width and height removed from the left and top only."""
    return lambda im: im.crop((round(im.width * frac), round(im.height * frac), im.width, im.height))


def pad(frac: float, colour: tuple[int, int, int]) -> Transform:
    """A solid frame of ``frac`` × the size on every side."""

    def f(im: Image.Image) -> Image.Image:
        dx, dy = round(im.width * frac), round(im.height * frac)
        return ImageOps.expand(im, border=(dx, dy, dx, dy), fill=colour)

    return f


def letterbox(aspect: float = 16 / 9) -> Transform:
    """Black bars to fit a wider (or taller) canvas, as a video player or a phone screenshot shows it."""

    def f(im: Image.Image) -> Image.Image:
        w, h = im.size
        if w / h < aspect:
            canvas = Image.new("RGB", (round(h * aspect), h))
            canvas.paste(im, ((canvas.width - w) // 2, 0))
        else:
            canvas = Image.new("RGB", (w, round(w / aspect * 1.6)))
            canvas.paste(im, (0, (canvas.height - h) // 2))
        return canvas

    return f


def rotate(deg: float, crop: bool = False) -> Transform:
    def f(im: Image.Image) -> Image.Image:
        out = im.rotate(deg, resample=Image.Resampling.BILINEAR, expand=False)
        if crop:  # the largest centred rectangle without black corners (for small angles)
            t = abs(np.tan(np.radians(deg)))
            dx, dy = round(im.height * t / 2 + 2), round(im.width * t / 2 + 2)
            out = out.crop((dx, dy, im.width - dx, im.height - dy))
        return out

    return f


def noise(sigma: float) -> Transform:
    def f(im: Image.Image) -> Image.Image:
        rng = np.random.default_rng(7)
        a = np.asarray(im, dtype=np.float32) + rng.normal(0, sigma, (im.height, im.width, 3))
        return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))

    return f


def gamma(g: float) -> Transform:
    lut = [round(255 * (i / 255) ** g) for i in range(256)] * 3
    return lambda im: im.point(lut)


def text_overlay(im: Image.Image) -> Image.Image:
    out = im.copy()
    d = ImageDraw.Draw(out)
    font = ImageFont.load_default(size=max(12, im.height // 14))
    d.text((im.width * 0.05, im.height * 0.75), "repost @ example 2026", fill=(255, 255, 255), font=font,
           stroke_width=2, stroke_fill=(0, 0, 0))  # fmt: skip
    return out


def caption_band(im: Image.Image) -> Image.Image:
    """A white band above the picture with a line of black text, as meme and repost apps add."""
    band = im.height // 6
    out = Image.new("RGB", (im.width, im.height + band), (255, 255, 255))
    out.paste(im, (0, band))
    font = ImageFont.load_default(size=max(12, band // 4))
    ImageDraw.Draw(out).text(
        (im.width * 0.05, band * 0.35), "when the weekend finally starts", fill=(0, 0, 0), font=font
    )
    return out


def logo_overlay(im: Image.Image) -> Image.Image:
    out = im.copy()
    d = ImageDraw.Draw(out)
    s = min(im.size) // 6
    x, y = im.width - s - s // 4, s // 4
    d.ellipse((x, y, x + s, y + s), fill=(230, 40, 40), outline=(255, 255, 255), width=max(2, s // 12))
    d.rectangle((x + s // 3, y + s // 3, x + 2 * s // 3, y + 2 * s // 3), fill=(255, 255, 255))
    return out


def screenshot(im: Image.Image) -> Image.Image:
    """The photo shown inside an app: status and navigation bars, a side panel with text, a margin."""
    w = round(im.width * 0.7)
    h = round(im.height * w / im.width)
    photo = im.resize((w, h), Image.Resampling.BILINEAR)
    cw, ch = round(w / 0.62), h + round(h * 0.36)
    canvas = Image.new("RGB", (cw, ch), (245, 245, 247))
    d = ImageDraw.Draw(canvas)
    d.rectangle((0, 0, cw, round(h * 0.12)), fill=(40, 40, 48))
    d.rectangle((0, ch - round(h * 0.12), cw, ch), fill=(40, 40, 48))
    font = ImageFont.load_default(size=max(10, h // 24))
    for i in range(6):
        d.text(
            (w + round(cw * 0.05), round(h * 0.2) + i * h // 9),
            f"comment {i + 1}: nice shot",
            fill=(60, 60, 60),
            font=font,
        )
    canvas.paste(photo, (round(cw * 0.02), round(h * 0.18)))
    return canvas


def contact_sheet(im: Image.Image) -> Image.Image:
    """A video's contact sheet, as thumbnail tools lay one out: a header of file details, then 3×3 frames
    between dark gutters, each with its timestamp. The video is a slideshow over the photo (the video
    benchmark's kind): one frame shows it whole (a different cell for different photos), the others pan
    and zoom into it."""
    cw = 384
    ch = round(im.height * cw / im.width)
    zooms = [(1.25, 0.2, 0.3), (1.4, 0.8, 0.2), (1.6, 0.5, 0.5), (1.3, 0.1, 0.9), (1.5, 0.9, 0.7),
             (1.8, 0.3, 0.6), (1.2, 0.6, 0.1), (1.7, 0.7, 0.9)]  # fmt: skip
    frames = []
    for z, fx, fy in zooms:
        w, h = im.width / z, im.height / z
        x, y = (im.width - w) * fx, (im.height - h) * fy
        frames.append(im.crop((round(x), round(y), round(x + w), round(y + h))))
    whole = (im.width + im.height) % 9
    frames.insert(whole, im)
    gutter, margin, header = 6, 12, 64
    sheet = Image.new("RGB", (2 * margin + 3 * cw + 2 * gutter, margin + header + 3 * ch + 2 * gutter + margin),
                      (24, 24, 24))  # fmt: skip
    d = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=16)
    d.text(
        (margin, 12),
        "File: holiday_clip.mp4    Size: 48.2 MB    Duration: 00:04:30",
        fill=(235, 235, 235),
        font=font,
    )
    d.text((margin, 36), "Video: h264 1280x720 30 fps    Audio: aac 44.1 kHz", fill=(235, 235, 235), font=font)  # fmt: skip
    small = ImageFont.load_default(size=14)
    for k, frame in enumerate(frames):
        r, c = divmod(k, 3)
        x, y = margin + c * (cw + gutter), margin + header + r * (ch + gutter)
        sheet.paste(frame.resize((cw, ch), Image.Resampling.BILINEAR), (x, y))
        d.text((x + cw - 70, y + ch - 20), f"00:0{k // 2}:{k * 27 % 60:02d}", fill=(255, 255, 255), font=small,
               stroke_width=1, stroke_fill=(0, 0, 0))  # fmt: skip
    return sheet


def contact_sheet_tiled(im: Image.Image) -> Image.Image:
    """The same kind of sheet as ffmpeg's ``tile`` filter makes it by default: 4×4 frames edge to edge, no
    gutter, header or timestamp; one frame shows the photo whole, the others pan and zoom into it."""
    cw = 256
    ch = round(im.height * cw / im.width)
    frames = []
    for k in range(15):
        z = 1.15 + 0.05 * (k % 8)
        fx, fy = (k * 0.37) % 1.0, (k * 0.61) % 1.0
        w, h = im.width / z, im.height / z
        x, y = (im.width - w) * fx, (im.height - h) * fy
        frames.append(im.crop((round(x), round(y), round(x + w), round(y + h))))
    frames.insert((im.width + 3 * im.height) % 16, im)
    sheet = Image.new("RGB", (4 * cw, 4 * ch))
    for k, frame in enumerate(frames):
        sheet.paste(frame.resize((cw, ch), Image.Resampling.BILINEAR), ((k % 4) * cw, (k // 4) * ch))
    return sheet


def contact_sheet_tiled_framed(im: Image.Image) -> Image.Image:
    """The tiled sheet inside a plain margin, under a header of file details: a thumbnailer's sheet without
    gaps between frames (ffmpeg's ``tile`` with a ``margin``, a title drawn above)."""
    tiles = contact_sheet_tiled(im)
    margin, header = 8, 48
    out = Image.new("RGB", (tiles.width + 2 * margin, tiles.height + header + 2 * margin), (16, 16, 16))
    ImageDraw.Draw(out).text(
        (margin, 14),
        "File: holiday_clip.mp4    Duration: 00:04:30    1280x720",
        fill=(235, 235, 235),
        font=ImageFont.load_default(size=16),
    )
    out.paste(tiles, (margin, margin + header))
    return out


def mirrored(then: Transform) -> Transform:
    """A copy mirrored left–right to evade matching, then altered again: plain PDQ's 8 dihedral variants
    find a mirror alone, but not a mirror that was also captioned, tilted, cropped or screenshotted."""
    return lambda im: then(im.transpose(Image.Transpose.FLIP_LEFT_RIGHT))


def stretch(kx: float) -> Transform:
    return lambda im: im.resize((round(im.width * kx), im.height), Image.Resampling.BILINEAR)


TRANSFORMS: dict[str, Transform] = {
    "jpeg_q30": jpeg(30),
    "jpeg_q50": jpeg(50),
    "jpeg_q75": jpeg(75),
    "resize_0.25": resize(0.25),
    "resize_0.5": resize(0.5),
    "resize_2": resize(2.0),
    "blur": lambda im: im.filter(ImageFilter.GaussianBlur(2)),
    "brightness_1.3": lambda im: ImageEnhance.Brightness(im).enhance(1.3),
    "contrast_0.7": lambda im: ImageEnhance.Contrast(im).enhance(0.7),
    "gamma_0.6": gamma(0.6),
    "grayscale": lambda im: ImageOps.grayscale(im).convert("RGB"),
    "noise": noise(12),
    "text_overlay": text_overlay,
    "logo_overlay": logo_overlay,
    "caption_band": caption_band,
    "crop_5": crop_sides(0.05),
    "crop_10": crop_sides(0.10),
    "crop_20": crop_sides(0.20),
    "crop_corner_10": crop_corner(0.10),
    "pad_black_10": pad(0.10, (0, 0, 0)),
    "pad_white_20": pad(0.20, (255, 255, 255)),
    "pad_blue_50": pad(0.50, (30, 60, 150)),
    "letterbox": letterbox(),
    "rotate_2": rotate(2),
    "rotate_4": rotate(4),
    "rotate_10": rotate(10),
    "rotate_4_cropped": rotate(4, crop=True),
    "rot90": lambda im: im.transpose(Image.Transpose.ROTATE_90),
    "rot180": lambda im: im.transpose(Image.Transpose.ROTATE_180),
    "rot270": lambda im: im.transpose(Image.Transpose.ROTATE_270),
    "flip_h": lambda im: im.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
    "flip_v": lambda im: im.transpose(Image.Transpose.FLIP_TOP_BOTTOM),
    "stretch_1.3": stretch(1.3),
    "screenshot": screenshot,
    "contact_sheet": contact_sheet,
    "contact_sheet_tiled": contact_sheet_tiled,
    "contact_sheet_tiled_framed": contact_sheet_tiled_framed,
    "mirror_text": mirrored(text_overlay),
    "mirror_logo": mirrored(logo_overlay),
    "mirror_crop_10": mirrored(crop_sides(0.10)),
    "mirror_rotate_4": mirrored(rotate(4)),
    "mirror_screenshot": mirrored(screenshot),
}

#: Families the issue sets goals for: at 99.99% precision, recall >= 0.95 on the hard ones, >= 0.99 on the rest.
HARD = {"crop_5", "crop_10", "crop_corner_10", "pad_black_10", "pad_white_20", "pad_blue_50", "letterbox",
        "caption_band", "rotate_2", "rotate_4", "rotate_4_cropped", "screenshot", "contact_sheet", "contact_sheet_tiled",
        "contact_sheet_tiled_framed",
        "mirror_crop_10", "mirror_rotate_4", "mirror_screenshot"}  # fmt: skip
OUT_OF_SCOPE = {"crop_20", "rotate_10"}  # measured, no goal
#: Not on the issue's list: a mirror and a second change, held to the goal of the second.
COMBINED = {"mirror_text", "mirror_logo", "mirror_crop_10", "mirror_rotate_4", "mirror_screenshot"}
