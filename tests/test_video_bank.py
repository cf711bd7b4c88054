"""Video banks: whole videos, clips of known videos and known clips inside longer ones (benign slideshows)."""

from __future__ import annotations

from pathlib import Path

import pytest

from slideshow import encode, slideshow_frames
from vigie.banks import BankStore
from vigie.banks.ingest import entries_for_items
from vigie.banks.matcher import Matcher
from vigie.media import Item
from vigie.pipeline import PipelineContext, process_item
from vigie.settings import MediaLimits
from vigie.store import open_db

LIMITS = MediaLimits()
FPS, SIZE = 5, (320, 180)


def video(photos: list[Path], seconds_each: float = 4.0, size: tuple[int, int] = SIZE, seed: int = 0) -> list:
    return list(slideshow_frames(photos, seconds_each, FPS, size, seed))


def _bank(db_url: str, photos: list[Path], derived: bool = True) -> tuple[Matcher, list]:
    store = BankStore(open_db(db_url))
    store.create_bank("videos")
    known = video(photos[:8])  # 32 s
    item = Item("known.mp4", encode(known, FPS, SIZE), "video/mp4")
    bank = store.get_bank("videos")
    got = list(entries_for_items([item], bank, LIMITS, {"category": "stand-in"}, derived, name_by="name"))
    store.add_entries("videos", [e for e in got if not isinstance(e, str)])
    return Matcher.open(store.db), known


@pytest.fixture
def bank(db_url: str, photos: list[Path]) -> tuple[Matcher, list]:
    return _bank(db_url, photos)


def _video_matches(
    m: Matcher, frames: list, size: tuple[int, int] = SIZE, bitrate: int | None = None
) -> list:
    res = process_item(
        Item("q.mp4", encode(frames, FPS, size, bitrate), "video/mp4"), PipelineContext(matcher=m)
    )
    return [x for x in res.matches if x["signal"] == "vpdq"]


def test_whole_video_reencoded_matches(bank: tuple[Matcher, list], photos: list[Path]) -> None:
    m, known = bank
    import numpy as np
    from PIL import Image

    small = [np.asarray(Image.fromarray(f).resize((256, 144))) for f in known]
    [hit] = _video_matches(m, small, (256, 144), bitrate=150_000)
    ev = hit["labels"]["video_match"]
    assert hit["labels"]["external_id"] == "known.mp4"
    assert ev["rule"] in {"whole_video", "clip_of_known_video"}
    assert ev["query_share"] >= 0.8 and ev["target_share"] >= 0.6 and abs(ev["offset_s"]) <= 1, ev
    [same] = _video_matches(m, known)  # the same footage re-encoded at its own size
    assert same["labels"]["video_match"]["rule"] == "whole_video"


def test_clip_of_known_video_and_known_clip_inside_other_footage(
    bank: tuple[Matcher, list], photos: list[Path]
) -> None:
    m, known = bank
    clip = known[8 * FPS : 20 * FPS]  # 12 s from the middle
    [hit] = _video_matches(m, clip)
    ev = hit["labels"]["video_match"]
    assert ev["rule"] == "clip_of_known_video" and abs(ev["offset_s"] - 8) <= 2
    other = video(photos[10:16], seed=3)  # 24 s of unrelated footage around the known 32 s
    [hit] = _video_matches(m, other[: 12 * FPS] + known + other[12 * FPS :])
    assert hit["labels"]["video_match"]["rule"] in {"contains_known_video", "whole_video"}
    [part] = _video_matches(m, other[: 10 * FPS] + known[4 * FPS : 16 * FPS] + other[10 * FPS : 20 * FPS])
    # 12 s of it inside 20 s of other footage
    assert part["labels"]["video_match"]["rule"] == "shared_segment"
    assert _video_matches(m, other) == []


def test_flat_video_and_frame_of_known_video(bank: tuple[Matcher, list], photos: list[Path]) -> None:
    import io

    import numpy as np
    from PIL import Image

    m, known = bank
    flat = [np.full((SIZE[1], SIZE[0], 3), 90, dtype=np.uint8)] * (FPS * 6)
    assert _video_matches(m, flat) == []  # low-quality frames are never matched
    buf = io.BytesIO()
    Image.fromarray(known[10]).save(buf, "PNG")
    res = process_item(Item("still.png", buf.getvalue(), "image/png"), PipelineContext(matcher=m))
    assert res.matches and res.matches[0]["labels"]["of"] == "known.mp4"  # a still of a known video


def _alter(frames: list, fn: object) -> list:
    import numpy as np
    from PIL import Image

    return [np.asarray(fn(Image.fromarray(f))) for f in frames]  # type: ignore[operator]


def _in_portrait_frame(blurred: bool) -> object:
    from PIL import Image, ImageFilter

    def one(im: Image.Image) -> Image.Image:
        w = im.height * 9 // 16 // 2 * 2
        h = im.height
        pic = im.resize((w, w * im.height // im.width))
        bg = (
            im.resize((h * im.width // im.height, h)).crop((0, 0, w, h))
            if blurred
            else Image.new("RGB", (w, h))
        )
        if blurred:
            bg = bg.filter(ImageFilter.GaussianBlur(8))
        bg.paste(pic, (0, (h - pic.height) // 2))
        return bg

    return one


def test_mirrored_and_reframed_copies_match_and_say_how(bank: tuple[Matcher, list]) -> None:
    """Re-posts mirror footage or set it in a portrait frame, on black bars or on a blurred copy of itself,
    or both: a mirrored clip in a portrait frame meets the known frames through the mirror of its picture."""
    import numpy as np

    m, known = bank
    clip = known[4 * FPS : 20 * FPS]
    mirrored = [np.ascontiguousarray(f[:, ::-1]) for f in clip]
    [hit] = _video_matches(m, mirrored)
    assert hit["labels"]["video_match"]["frame_variants"].keys() == {"mirror_lr"}
    for source, blurred, variant in (
        (clip, False, "trim"),
        (clip, True, "centre_16x9"),
        (mirrored, False, "trim_mirror"),
        (mirrored, True, "centre_16x9_mirror"),
    ):
        framed = _alter(source, _in_portrait_frame(blurred))
        [hit] = _video_matches(m, framed, (framed[0].shape[1], framed[0].shape[0]))
        ev = hit["labels"]["video_match"]
        assert hit["labels"]["external_id"] == "known.mp4" and abs(ev["offset_s"] - 4) <= 2, ev
        assert variant in ev["frame_variants"], ev


def test_frames_near_but_past_the_threshold_count_only_in_time_order(db_url: str, photos: list[Path]) -> None:
    """A caption band moves every frame's PDQ past the bank threshold; in time order the frames still
    line up with the known video, shuffled they must not add up to a match. (A bank of plain frames: the
    views a bank keeps by default find some of these frames within the threshold.)"""
    from PIL import Image, ImageDraw

    m, known = _bank(db_url, photos, derived=False)

    def caption(im: Image.Image) -> Image.Image:
        out = im.copy()
        ImageDraw.Draw(out).rectangle((0, 0, im.width, im.height // 5), fill="white")
        ImageDraw.Draw(out).text((8, 8), "weekend mood", fill="black")
        return out

    clip = _alter(known[4 * FPS : 24 * FPS], caption)
    [hit] = _video_matches(m, clip)
    ev = hit["labels"]["video_match"]
    assert ev["near_frames"] > 0 and ev["rule"] == "clip_of_known_video" and abs(ev["offset_s"] - 4) <= 2, ev
    import random

    seconds = [clip[i : i + FPS] for i in range(0, len(clip), FPS)]
    random.Random(1).shuffle(seconds)
    assert _video_matches(m, [f for sec in seconds for f in sec]) == []


def test_query_frames_carry_variants_the_bank_never_stores(bank: tuple[Matcher, list]) -> None:
    from vigie.signals.vpdq import hash_video

    _, known = bank
    data = encode(known[: 6 * FPS], FPS, SIZE)
    plain, query = hash_video(data, LIMITS), hash_video(data, LIMITS, variants=True)
    assert [f.to_json() for f in plain] == [f.to_json() for f in query]  # the stable vpdq contract
    assert all(f.variants is None for f in plain)
    assert {"mirror_lr", "rot180", "centre_9x16"} <= set(query[0].variants or {})


def test_zoomed_and_filled_copies_match_the_views_a_bank_keeps(bank: tuple[Matcher, list]) -> None:
    """A zoom that crops 10% a side, or a landscape video cropped to fill a portrait screen, cannot be
    undone on the query; the bank keeps those parts of each known frame as entries of the same frame."""
    from PIL import Image

    m, known = bank
    clip = known[4 * FPS : 20 * FPS]

    def zoom(im: Image.Image) -> Image.Image:
        dx, dy = im.width // 10, im.height // 10
        return im.crop((dx, dy, im.width - dx, im.height - dy)).resize(im.size)

    def fill(im: Image.Image) -> Image.Image:
        band = round(im.height * 9 / 16)
        left = (im.width - band) // 2
        return im.crop((left, 0, left + band, im.height)).resize((180, 320))

    for alter, view, size in ((zoom, "crop_10", SIZE), (fill, "fill_9x16", (180, 320))):
        [hit] = _video_matches(m, _alter(clip, alter), size)
        ev = hit["labels"]["video_match"]
        assert view in ev["frame_variants"] and abs(ev["offset_s"] - 4) <= 2, ev
        assert "view" not in hit["labels"]


def test_a_bank_keeps_views_beside_each_frame_unless_told_not_to(photos: list[Path]) -> None:
    from vigie.banks.model import BankInfo

    item = Item("known.mp4", encode(video(photos[:2]), FPS, SIZE), "video/mp4")
    bank = BankInfo(1, "videos", "match", 31, 50)
    with_views = [e for e in entries_for_items([item], bank, LIMITS, {}) if not isinstance(e, str)]
    plain = [e for e in entries_for_items([item], bank, LIMITS, {}, derived=False) if not isinstance(e, str)]
    frames = [e for e in plain if e.signal_type == "pdq"]
    views = [e for e in with_views if e.signal_type == "pdq" and (e.extra or {}).get("view")]
    assert frames and all((e.extra or {}).get("derived") == "frame" for e in frames)
    assert {(e.extra or {})["view"] for e in views} == {"crop_10", "fill_9x16"}  # a landscape video
    assert len(with_views) - len(views) == len(plain)  # the frames themselves are the same either way
    assert {e.extra["t"] for e in views if e.extra} <= {e.extra["t"] for e in frames if e.extra}


def test_frame_hashes_taken_from_luma_are_the_hashes_of_the_rgb(photos: list[Path]) -> None:
    """Each sampled frame's hashes come from its luma, converted once; they are the bits hashing the RGB
    gives: the frame, its trims and middle band (a portrait frame over black bars), its bank views."""
    import numpy as np
    from PIL import Image

    from vigie.media.video import sample_frames
    from vigie.signals.borders import trimmed_hashes
    from vigie.signals.pdq import hash_array
    from vigie.signals.vpdq import hash_video

    portrait = []
    for f in video(photos[:2], 2.0):
        canvas = Image.new("RGB", (180, 320))
        canvas.paste(Image.fromarray(f), (0, 70))
        portrait.append(np.asarray(canvas))
    data = encode(portrait, FPS, (180, 320))
    rgbs = [rgb for _, rgb in sample_frames(data, LIMITS, 1.0)]
    queries, banked = hash_video(data, LIMITS, variants=True), hash_video(data, LIMITS, views=True)
    assert len(queries) == len(banked) == len(rgbs) and any("trim" in (q.variants or {}) for q in queries)
    for rgb, q, b in zip(rgbs, queries, banked, strict=True):
        assert q.pdq == b.pdq == hash_array(rgb).hex
        trims = trimmed_hashes(rgb, (rgb.shape[1], rgb.shape[0]))
        assert all((q.variants or {})[k] == v for k, v in trims.items() if v != q.pdq)
        band = round(180 * 9 / 16)
        middle = rgb[(320 - band) // 2 : (320 + band) // 2]
        assert (q.variants or {})["centre_16x9"] == hash_array(middle).hex
        assert (b.views or {})["fill_16x9"] == hash_array(middle)
        crop = np.ascontiguousarray(rgb[32:288, 18:162])
        assert (b.views or {})["crop_10"] == hash_array(crop)
