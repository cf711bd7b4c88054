"""A weak PDQ's stable bits: re-encoded and resized copies of a striped image, whose hash moves by tens of
bits, are verified on the 64 bits its coefficients hold firmly, and nothing else is."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from test_borders import _media_bank, jpeg, load
from test_service import auth, env  # noqa: F401  (the fixture, on both databases)
from vigie.banks.matcher import Matcher
from vigie.banks.store import BankStore
from vigie.media import Item
from vigie.pipeline import PipelineContext, process_item, verified_match_dicts
from vigie.settings import MediaLimits, Settings
from vigie.signals import hash_item, stable
from vigie.signals.item import sent_signals
from vigie.signals.pdq import distance

LIMITS = MediaLimits()
WEAK = "wood-l.jpg"  # periodic stripes under a vignette: full PDQ quality, nearly flat low frequencies


def test_the_mask_keeps_the_coefficients_farthest_from_their_median() -> None:
    """64 positions, in the hash's bit order, and only they count."""
    coef = np.linspace(-1, 1, 256, dtype=np.float32).reshape(16, 16)
    coef[3, 4], coef[0, 0] = 50.0, -40.0  # far above and far below
    mask = stable.stable_mask(coef)
    bits = np.unpackbits(np.frombuffer(bytes.fromhex(mask), np.uint8))[::-1].reshape(16, 16)
    assert bits.sum() == stable.STABLE_BITS and bits[3, 4] and bits[0, 0]
    assert not bits[7, 8]  # a coefficient at the median
    zero = "0" * 64
    assert stable.differing(zero, mask, mask) == stable.STABLE_BITS
    everything_else = f"{(int(mask, 16) ^ (2**256 - 1)):064x}"
    assert stable.differing(zero, everything_else, mask) == 0
    assert distance(zero, everything_else) == 256 - stable.STABLE_BITS


def _copies(p: Path) -> dict[str, bytes]:
    im = load(p)
    noisy = np.asarray(im).astype(np.int16) + np.random.default_rng(0).normal(0, 12, (im.height, im.width, 3))
    return {
        "jpeg_q30": jpeg(im, 30),
        "quarter": jpeg(im.resize((im.width // 4, im.height // 4), Image.Resampling.BILINEAR)),
        "noise": jpeg(Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))),
    }


def _weak_bank(db_url: str, photos: list[Path], tmp_path: Path) -> tuple[Matcher, Path, list[Path]]:
    weak = next((p for p in photos if p.name == WEAK), None)
    if weak is None:
        pytest.skip("the striped wallpaper is not among the shared photos")
    ordinary = [p for p in photos if p.name != WEAK][:3]
    store, entries = _media_bank(db_url, [weak, *ordinary[:2]], tmp_path)
    store.add_entries("known", entries)
    return Matcher.open(store.db), weak, ordinary


def test_reencoded_copies_of_a_weak_entry_verify_on_its_stable_bits(
    db_url: str, photos: list[Path], tmp_path: Path
) -> None:
    """Only the weak entry keeps a mask. Its copies at JPEG quality 30, a quarter of the size or with noise
    lie past PDQ's threshold, yet match it as uploads and as hash-only items (no keypoints needed), with
    the evidence; an unrelated photo and its re-encoding match nothing."""
    matcher, weak, ordinary = _weak_bank(db_url, photos, tmp_path)
    masks = {
        e.external_id: (e.extra or {}).get("pdq_stable")
        for e in matcher.entries(set(range(1, 200))).values()
        if e.signal_type == "pdq" and not (e.extra or {}).get("derived")
    }
    assert {k for k, v in masks.items() if v} == {WEAK}, masks
    own = hash_item(Item("k.jpg", jpeg(load(weak))), LIMITS).pdq
    ctx = PipelineContext(limits=LIMITS, matcher=matcher)
    for name, data in _copies(weak).items():
        [m] = process_item(Item(f"{name}.jpg", data, "image/jpeg"), ctx).matches
        ev = m["verification"]
        assert (m["labels"]["external_id"], m["transform"], ev["method"]) == (
            WEAK,
            "verified",
            "PDQ stable bits",
        )
        assert ev["differing"] <= stable.MAX_DIFFERING and ev["stable_bits"] == stable.STABLE_BITS, ev
        sig = hash_item(Item(f"{name}.jpg", data), LIMITS, dihedral=True)
        assert sig.pdq is not None and own is not None and distance(sig.pdq, own) > 31, name  # PDQ alone: no
        # privacy mode: the platform's hashes alone verify the same way
        [h] = verified_match_dicts(matcher, sent_signals(sig.pdq, sig.pdq_quality, sig.variants()), None, [])
        assert (h["entry_id"], h["verification"]["method"]) == (m["entry_id"], "PDQ stable bits")
    stranger = ordinary[2]
    for data in (jpeg(load(stranger)), *_copies(stranger).values()):
        assert process_item(Item("u.jpg", data, "image/jpeg"), ctx).matches == []
    # a disabled entry stops verifying as soon as the matcher has seen the change
    store = BankStore(matcher.db)
    ids = [e.id for e in store.iter_entries("known") if e.external_id == WEAK]
    store.set_enabled("known", ids, False)
    matcher.refresh()
    assert not matcher.verifiable.any_weak()
    assert process_item(Item("q.jpg", _copies(weak)["jpeg_q30"], "image/jpeg"), ctx).matches == []


def test_a_weak_entry_keeps_its_mask_to_itself(db_url: str, photos: list[Path], tmp_path: Path) -> None:
    """The mask is search data: never a label, never in an export."""
    matcher, _, _ = _weak_bank(db_url, photos, tmp_path)
    store = BankStore(matcher.db)
    weak = [e for e in store.iter_entries("known") if (e.extra or {}).get("pdq_stable")]
    assert len(weak) == 1 and "pdq_stable" not in weak[0].labels()
    for fmt in ("csv", "vics", "te"):
        out = io.StringIO()
        store.export("known", fmt, out)
        assert "pdq_stable" not in out.getvalue() and weak[0].extra["pdq_stable"] not in out.getvalue()


def test_a_hash_only_item_matches_a_weak_entry_through_the_service(
    env: dict[str, object],  # noqa: F811
    photos: list[Path],
    tmp_path: Path,
) -> None:
    """A platform that hashes a re-encoded copy itself and sends only its PDQ, as an item or a lookup, is
    told of the match and of what produced it."""
    c: TestClient = env["client"]  # type: ignore[assignment]
    settings: Settings = env["settings"]  # type: ignore[assignment]
    weak = next((p for p in photos if p.name == WEAK), None)
    if weak is None:
        pytest.skip("the striped wallpaper is not among the shared photos")
    store, entries = _media_bank(settings.database_url, [weak], tmp_path)
    store.add_entries("known", entries)
    sig = hash_item(Item("q.jpg", _copies(weak)["jpeg_q30"]), LIMITS)
    body: dict[str, Any] = {"pdq": sig.pdq, "pdq_quality": sig.pdq_quality}
    it = auth(env, "items:write")
    for _ in range(40):  # the bank was written behind the service's back: until its refresh saw it
        r = c.post("/v1/items", json=body, headers=it)
        assert r.status_code == 201, r.text
        if r.json()["decision"]["action"] != "allow":
            break
        time.sleep(0.1)
    [m] = r.json()["decision"]["reasons"][0]["evidence"]
    assert (m["labels"]["external_id"], m["transform"]) == (WEAK, "verified"), m
    assert m["verification"]["method"] == "PDQ stable bits" and m["distance"] > 31, m
    # and a lookup, the signals-in, matches-out call, says the same; under the bank's quality floor, nothing
    look = auth(env, "lookup")
    got = c.post("/v1/lookup", json={"pdq": [sig.pdq], "pdq_quality": sig.pdq_quality}, headers=look).json()
    [hit] = got["results"][0]["matches"]
    assert (hit["entry_id"], hit["verification"]["method"]) == (m["entry_id"], "PDQ stable bits")
    low = c.post("/v1/lookup", json={"pdq": [sig.pdq], "pdq_quality": 30}, headers=look).json()
    assert low["results"][0]["matches"] == []
