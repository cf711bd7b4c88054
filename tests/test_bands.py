"""Captioned and logo-stamped copies match through the band cuts both sides hash (``signals/bands.py``)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from test_borders import _media_bank, jpeg, load
from vigie.banks.ingest import DERIVED
from vigie.banks.matcher import Matcher
from vigie.media import Item
from vigie.pipeline import PipelineContext, process_item
from vigie.settings import MediaLimits
from vigie.signals import hash_item
from vigie.signals.bands import band_hashes, band_rows
from vigie.signals.pdq import distance, hash_array

LIMITS = MediaLimits()


def captioned(im: Image.Image) -> Image.Image:
    """A repost handle in outlined text across the bottom band."""
    out = im.copy()
    font = ImageFont.load_default(size=max(12, im.height // 12))
    d = ImageDraw.Draw(out)
    d.text((im.width * 0.05, im.height * 0.82), "repost @ example 2026", fill=(255, 255, 255), font=font,
           stroke_width=2, stroke_fill=(0, 0, 0))  # fmt: skip
    return out


def stamped(im: Image.Image) -> Image.Image:
    """A round logo in the top right corner."""
    out = im.copy()
    s = min(im.size) // 6
    x, y = im.width - s - s // 4, s // 4
    d = ImageDraw.Draw(out)
    d.ellipse((x, y, x + s, y + s), fill=(230, 40, 40), outline=(255, 255, 255), width=max(2, s // 12))
    return out


def test_band_rows_leave_out_a_quarter_of_the_height() -> None:
    assert band_rows(400) == {"cut_top": (100, 400), "cut_bottom": (0, 300)}
    assert set(band_rows(400)) <= set(DERIVED)  # the query's names are the bank's: a hit names its cut


def test_a_query_hashes_its_bands_as_the_bank_hashes_its_own(photos: list[Path]) -> None:
    """The same cut of the same picture: exact pixels and a reduced JPEG decode both land within a few
    bits of what `vigie bank add` stores for that cut, and flat bands are left out."""
    for p in photos[:6]:
        im = load(p)
        bank = {k: hash_array(np.asarray(DERIVED[k](im))).hex for k in band_rows(1)}
        exact, _ = band_hashes(np.asarray(im), im.size)
        big = im.resize((im.width * 3, im.height * 3))  # large enough for the reduced decode
        sig = hash_item(Item("q.jpg", jpeg(big, 95), "image/jpeg"), LIMITS, dihedral=True)
        for k, v in bank.items():
            assert exact[k] == v
            assert distance((sig.pdq_extra or {})[k], v) <= 16, (p.name, k)
    flat = np.zeros((300, 400, 3), np.uint8)
    assert band_hashes(flat, (400, 300)) == ({}, [])


def test_a_flat_cut_only_picks_entries_for_the_verifier() -> None:
    """A plain ramp but for its bottom quarter: the cut without that quarter is too flat to match by, so
    it is kept as a hint for the keypoint verifier, never as a hash matched by distance."""
    rng = np.random.default_rng(3)
    px = np.repeat(np.linspace(0, 255, 600).astype(np.uint8)[None, :, None], 400, 0).repeat(3, 2)  # a ramp
    px[300:] = rng.integers(0, 256, (100, 600, 3), dtype=np.uint8)
    cuts, flat = band_hashes(px, (600, 400))
    assert "cut_top" in cuts and "cut_bottom" not in cuts and len(flat) == 1
    im = Image.fromarray(px)
    sig = hash_item(Item("f.png", _png(im)), LIMITS, dihedral=True)
    assert sig.pdq_hints == flat and "cut_bottom" not in (sig.pdq_extra or {})


def _png(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def test_captioned_and_stamped_copies_match_once_through_a_band(
    db_url: str, photos: list[Path], tmp_path: Path
) -> None:
    """A bank made by `vigie bank add`; copies under a caption or a logo match their own item once, at the
    production threshold, naming the cut; other photos under the same caption and logo match nothing."""
    store, entries = _media_bank(db_url, photos[:8], tmp_path)
    store.add_entries("known", entries)
    ctx = PipelineContext(limits=LIMITS, matcher=Matcher.open(store.db))
    by_band = 0
    for p in photos[:8]:
        for alter in (captioned, stamped):
            res = process_item(Item("c.jpg", jpeg(alter(load(p)), 80), "image/jpeg"), ctx)
            pdq = [m for m in res.matches if m["signal"] == "pdq"]
            assert len(pdq) == 1 and pdq[0]["labels"]["external_id"] == p.name, (p.name, alter, res.matches)
            by_band += "cut_" in pdq[0].get("transform", "")
    assert by_band >= 14, by_band  # (all 16 here; a few might also land on the plain PDQ)
    for p in photos[10:18]:  # other photos under the same caption and logo: nothing
        for alter in (captioned, stamped):
            assert process_item(Item("u.jpg", jpeg(alter(load(p)), 80), "image/jpeg"), ctx).matches == []


def test_band_cuts_pick_entries_to_verify_only_when_near(
    db_url: str, photos: list[Path], tmp_path: Path
) -> None:
    """Unrelated pictures' cuts lie nearer each other than whole pictures do: a query's cut makes an entry a
    candidate for the verifier within CUT_RADIUS of it, its whole PDQ within VERIFY_RADIUS."""
    from vigie.banks.verify import CUT_RADIUS, VERIFY_RADIUS, candidates
    from vigie.signals.item import ItemSignals

    store, entries = _media_bank(db_url, photos[:3], tmp_path)
    store.add_entries("known", entries)
    matcher = Matcher.open(store.db)
    cut = next(e.value for e in entries if (e.extra or {}).get("derived") == "cut_top")
    rng = np.random.default_rng(5)

    def away(value: str, bits: int) -> str:
        n = int(value, 16)
        for b in rng.choice(256, bits, replace=False):
            n ^= 1 << int(b)
        return f"{n:064x}"

    far = next(h for h in (f"{int(rng.integers(0, 2**62)):016x}" * 4 for _ in range(50))
               if not matcher.verify_candidates([h], VERIFY_RADIUS, 8))  # fmt: skip
    for bits, expected in ((CUT_RADIUS - 6, True), (CUT_RADIUS + 8, False)):
        sig = ItemSignals("q", pdq=far, pdq_quality=90, pdq_extra={"cut_top": away(cut, bits)})
        assert bool(candidates(matcher, sig)) is expected, bits
        sig = ItemSignals("q", pdq=far, pdq_quality=90, pdq_hints=[away(cut, bits)])  # a flat cut, the same
        assert bool(candidates(matcher, sig)) is expected, bits
    sig = ItemSignals("q", pdq=away(cut, CUT_RADIUS + 8), pdq_quality=90)  # as a whole PDQ: the wide band
    assert candidates(matcher, sig)
