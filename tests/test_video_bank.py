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


@pytest.fixture
def bank(db_url: str, photos: list[Path]) -> tuple[Matcher, list]:
    store = BankStore(open_db(db_url))
    store.create_bank("videos")
    known = video(photos[:8])  # 32 s
    item = Item("known.mp4", encode(known, FPS, SIZE), "video/mp4")
    got = list(
        entries_for_items([item], store.get_bank("videos"), LIMITS, {"category": "stand-in"}, name_by="name")
    )
    store.add_entries("videos", [e for e in got if not isinstance(e, str)])
    return Matcher.open(store.db), known


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
