"""Mirrored copies altered again: a mirror, then a caption, a page layout or a tilt. PDQ's dihedral
variants find a plain mirror; these need the mirror of the picture found inside, or the mirror's keypoints."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageOps

from test_bands import _png
from test_borders import _media_bank, jpeg, load, meme, screenshot
from vigie.banks.matcher import Matcher
from vigie.media import Item
from vigie.pipeline import PipelineContext, process_item, verified_match_dicts
from vigie.scan.report import transform_words
from vigie.settings import MediaLimits
from vigie.signals import hash_item
from vigie.signals.item import sent_signals
from vigie.signals.pdq import MIRROR, distance
from vigie.signals.views import PixelViews, SentViews

LIMITS = MediaLimits()


def test_the_mirror_of_a_framed_or_captioned_picture_is_hashed(photos: list[Path]) -> None:
    """A query's trims and band cuts come with their left–right mirrors, from the same DCT: each lies
    within a few bits of the hash of the mirrored pixels, as PDQ's own dihedral variants do (its box
    filter is not exactly symmetric), where the unmirrored one is far."""
    for p in photos[:3]:
        framed = ImageOps.expand(load(p), border=60, fill=(0, 0, 0))
        sig = hash_item(Item("f.png", _png(framed)), LIMITS, dihedral=True)
        flipped = hash_item(Item("m.png", _png(ImageOps.mirror(framed))), LIMITS, dihedral=True)
        extra, other = sig.pdq_extra or {}, flipped.pdq_extra or {}
        for name in ("trim", "cut_top", "cut_bottom"):
            assert distance(extra[name + MIRROR], other[name]) <= 16 < 60 < distance(extra[name], other[name])
        assert sent_signals(sig.pdq, sig.pdq_quality, sig.variants()).pdq_dihedral == sig.pdq_dihedral


def test_mirrored_screenshots_and_memes_match_through_the_mirror_of_their_picture(
    db_url: str, photos: list[Path], tmp_path: Path
) -> None:
    """A known photo mirrored, then shown in an app's page or under a meme's caption, matches its entry
    through the mirror of the picture inside; a reviewer reads that it was mirrored."""
    store, entries = _media_bank(db_url, photos[:4], tmp_path)
    store.add_entries("known", entries)
    ctx = PipelineContext(limits=LIMITS, matcher=Matcher.open(store.db))
    for k in (0, 2):
        flipped = ImageOps.mirror(load(photos[k]))
        for copy in (screenshot(flipped), meme(flipped)):
            [m] = process_item(Item("s.jpg", jpeg(copy), "image/jpeg"), ctx).matches
            assert m["labels"]["external_id"] == photos[k].name
            assert m["transform"].split("+")[0].endswith(MIRROR), m
            assert "mirrored left–right" in transform_words(m["transform"])


def test_a_mirrored_tilted_copy_is_verified_on_its_mirror(
    db_url: str, photos: list[Path], tmp_path: Path
) -> None:
    """A known photo mirrored and turned 6° is verified on its mirror's keypoints (the evidence says so),
    as an upload and as a hash-only item that sent its mirrored views; without them it matches nothing."""
    store, entries = _media_bank(db_url, photos[:4], tmp_path)
    store.add_entries("known", entries)
    matcher = Matcher.open(store.db)
    ctx = PipelineContext(limits=LIMITS, matcher=matcher)
    for k in (1, 3):
        data = jpeg(ImageOps.mirror(load(photos[k])).rotate(6, resample=Image.Resampling.BILINEAR))
        [m] = process_item(Item("t.jpg", data, "image/jpeg"), ctx).matches
        ev = m["verification"]
        assert (m["labels"]["external_id"], m["transform"]) == (photos[k].name, "verified")
        assert ev.get("mirrored") is True, ev
        assert abs(abs(ev["rotation_deg"]) - 6) <= 1.5 and ev["inliers"] >= 25, ev
        sig = hash_item(Item("t.jpg", data), LIMITS, dihedral=True)
        sent = sent_signals(sig.pdq, sig.pdq_quality, sig.variants(), sig.pdq_hints)
        packed = PixelViews(data, LIMITS).pack()
        [h] = verified_match_dicts(matcher, sent, SentViews.parse(packed), [])
        assert (h["entry_id"], h["verification"]["mirrored"]) == (m["entry_id"], True)
        packed.pop("mirrored")
        assert verified_match_dicts(matcher, sent, SentViews.parse(packed), []) == []
    # the same tilt unmirrored is verified on the picture's own keypoints
    data = jpeg(load(photos[1]).rotate(6, resample=Image.Resampling.BILINEAR))
    [m] = process_item(Item("u.jpg", data, "image/jpeg"), ctx).matches
    assert "mirrored" not in m["verification"]
