"""Framed, letterboxed and screenshotted copies match their original through the ``trim`` variants."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from PIL import Image, ImageDraw, ImageFont, ImageOps

from vigie.banks import BankStore, EntryIn
from vigie.banks.matcher import Matcher
from vigie.media import Item
from vigie.pipeline import PipelineContext, process_item
from vigie.settings import MediaLimits
from vigie.signals import hash_item
from vigie.signals.borders import THUMB, content_box, peel, picture_boxes
from vigie.signals.pdq import distance
from vigie.store import open_db

LIMITS = MediaLimits()


def jpeg(im: Image.Image, quality: int = 92) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def load(p: Path, side: int = 900) -> Image.Image:
    im = Image.open(p).convert("RGB")
    im.thumbnail((side, side))
    return im


def screenshot(im: Image.Image) -> Image.Image:
    """The photo inside an app layout: dark bars, a light margin and a side panel of text."""
    w, h = im.size
    canvas = Image.new("RGB", (int(w * 1.6), int(h * 1.4)), (245, 245, 247))
    d = ImageDraw.Draw(canvas)
    d.rectangle((0, 0, canvas.width, int(h * 0.1)), fill=(30, 30, 36))
    d.rectangle((0, canvas.height - int(h * 0.1), canvas.width, canvas.height), fill=(30, 30, 36))
    for i in range(5):
        d.text((w + 40, int(h * 0.25) + i * 40), f"comment {i}: lovely", fill=(70, 70, 70))
    canvas.paste(im, (20, int(h * 0.2)))
    return canvas


WRAPS = {
    "pad_black_20": lambda im: ImageOps.expand(im, border=(im.width // 5, im.height // 5), fill=(0, 0, 0)),
    "pad_white_30": lambda im: ImageOps.expand(
        im, border=(im.width * 3 // 10, im.height * 3 // 10), fill="white"
    ),
    "frame_blue_50": lambda im: ImageOps.expand(
        im, border=(im.width // 2, im.height // 2), fill=(30, 60, 150)
    ),
    "letterbox": lambda im: ImageOps.pad(im, (im.width, int(im.width * 1.2)), color=(0, 0, 0)),
    "screenshot": screenshot,
}


@pytest.mark.parametrize("wrap", sorted(WRAPS))
def test_wrapped_copy_yields_a_trim_hash_near_the_original(photos: list[Path], wrap: str) -> None:
    hits = 0
    for p in photos[:6]:
        im = load(p)
        orig = hash_item(Item("o.jpg", jpeg(im), "image/jpeg"), LIMITS)
        q = hash_item(Item("q.jpg", jpeg(WRAPS[wrap](im)), "image/jpeg"), LIMITS, dihedral=True)
        assert distance(q.pdq or "", orig.pdq or "") > 31  # plain PDQ misses it
        if any(distance(v, orig.pdq or "") <= 31 for v in (q.pdq_extra or {}).values()):
            hits += 1
    assert hits >= 5, f"{wrap}: {hits}/6"


def test_a_light_picture_on_a_light_page_is_found_by_the_strict_look(photos: list[Path]) -> None:
    """A pale graphic on a pale app page: at the usual tolerance the picture is all page; inside the peeled
    bars a second search for a page flat to the pixel finds it, and its hash is near the original's."""
    im = load(next(p for p in photos if p.name == "greentraditional.jpg"))
    page = screenshot(im)
    luma = np.asarray(page.convert("L"))
    step = max(1, max(luma.shape) // THUMB)  # the stride picture_boxes uses
    x0, y0, x1, y1 = peel(luma, step) or (0, 0, 0, 0)
    inner = luma[y0:y1, x0:x1]
    assert content_box(inner[::step, ::step]) is None  # the usual look sees page only
    box = picture_boxes(luma)["trim_inner"]
    want = (20, int(im.height * 0.2), 20 + im.width, int(im.height * 0.2) + im.height)
    assert all(abs(a - b) <= 3 for a, b in zip(box, want, strict=True)), (box, want)
    orig = hash_item(Item("o.jpg", jpeg(im), "image/jpeg"), LIMITS)
    q = hash_item(Item("q.jpg", jpeg(page), "image/jpeg"), LIMITS, dihedral=True)
    assert min(distance(v, orig.pdq or "") for v in (q.pdq_extra or {}).values()) <= 31


def test_unframed_photos_rarely_get_a_box_and_peel_finds_exact_bars(photos: list[Path]) -> None:
    boxes = sum(content_box(np.asarray(load(p, 192))) is not None for p in photos)
    # a photo with plain edges can look framed: that costs one extra hash, never a false match (tested below)
    assert boxes <= len(photos) // 3
    im = load(photos[0], 400)
    padded = np.asarray(ImageOps.expand(im, border=(37, 11, 37, 11), fill=(0, 0, 0)))
    assert peel(padded) == (37, 11, 37 + im.width, 11 + im.height)


def test_end_to_end_match_names_the_trim_and_unrelated_photos_stay_unmatched(
    db_url: str, photos: list[Path]
) -> None:
    store = BankStore(open_db(db_url))
    store.create_bank("known")
    known = photos[:8]
    entries = []
    for p in known:
        s = hash_item(Item(p.name, jpeg(load(p)), "image/jpeg"), LIMITS)
        entries.append(EntryIn("pdq", s.pdq or "", external_id=p.name))
    store.add_entries("known", entries)
    ctx = PipelineContext(limits=LIMITS, matcher=Matcher.open(store.db))
    res = process_item(Item("q.jpg", jpeg(WRAPS["pad_white_30"](load(known[2]))), "image/jpeg"), ctx)
    assert [m["labels"]["external_id"] for m in res.matches] == [known[2].name]
    assert res.matches[0]["transform"] in {"trim", "trim_inner"}
    res = process_item(Item("m.jpg", jpeg(meme(load(known[3]))), "image/jpeg"), ctx)
    assert [(m["labels"]["external_id"], m["transform"]) for m in res.matches] == [
        (known[3].name, "trim_caption")
    ]
    for p in photos[8:]:  # other photos, plain and wrapped: no false match
        for im in (load(p), WRAPS["screenshot"](load(p)), WRAPS["frame_blue_50"](load(p)), meme(load(p))):
            assert process_item(Item("x.jpg", jpeg(im), "image/jpeg"), ctx).matches == []


def test_flat_and_tiny_images_are_low_quality_and_never_crash() -> None:
    for im in (Image.new("RGB", (640, 480), (120, 30, 30)), Image.new("RGB", (12, 9), (5, 5, 5))):
        s = hash_item(Item("f.jpg", jpeg(im), "image/jpeg"), LIMITS, dihedral=True)
        assert s.error is None and (s.pdq_quality or 0) < 50 and not s.pdq_extra
    framed_flat = ImageOps.expand(Image.new("RGB", (300, 200), (200, 200, 200)), border=60, fill=(0, 0, 0))
    s = hash_item(Item("g.jpg", jpeg(framed_flat), "image/jpeg"), LIMITS, dihedral=True)
    assert s.error is None and s.pdq_extra  # the frame's edges are detail: its bands are hashed...
    # ...but the flat picture inside has nothing to hash
    assert not {"trim", "trim_strict", "trim_caption", "trim_inner"} & set(s.pdq_extra)


def _media_bank(db_url: str, known: list[Path], tmp_path: Path) -> tuple[BankStore, list[EntryIn]]:
    """A bank named "known" and the entries `vigie bank add` would make for these photos (not yet added)."""
    from vigie.banks.ingest import entries_for_paths

    store = BankStore(open_db(db_url))
    store.create_bank("known")
    folder = tmp_path / "known"
    folder.mkdir()
    for p in known:
        (folder / p.name).write_bytes(jpeg(load(p)))
    got = entries_for_paths(
        [folder], store.get_bank("known"), LIMITS, {"category": "stand-in"}, name_by="name"
    )
    return store, [e for e in got if isinstance(e, EntryIn)]


def test_bank_add_stores_derived_crops_and_tilts_that_match_once(
    db_url: str, photos: list[Path], tmp_path: Path
) -> None:
    """Entries made from media carry derived crop/tilt PDQs: a cropped or tilted copy matches its item
    once, naming the transform; exports keep only the hashes of the files themselves."""
    from vigie.banks.ingest import DERIVED, OWN_PICTURE

    store, entries = _media_bank(db_url, photos[:6], tmp_path)
    derived = [e for e in entries if (e.extra or {}).get("derived")]
    names = set(DERIVED) | set(OWN_PICTURE.values())  # a photo with a plain border: the picture inside
    assert {(e.extra or {})["derived"] for e in derived} <= names and len(derived) >= 6 * 8
    store.add_entries("known", entries)
    ctx = PipelineContext(limits=LIMITS, matcher=Matcher.open(store.db))
    im = load(photos[3])
    w, h = im.size
    for copy in (
        im.crop((w // 10, h // 10, w - w // 10, h - h // 10)),  # 10% off every side
        im.crop((w // 10, h // 10, w, h)),  # off-centre
        im.rotate(3, resample=Image.Resampling.BILINEAR),
    ):
        res = process_item(Item("c.jpg", jpeg(copy), "image/jpeg"), ctx)
        pdq = [m for m in res.matches if m["signal"] == "pdq"]
        assert len(pdq) == 1 and pdq[0]["labels"]["external_id"].endswith(photos[3].name), res.matches
        assert pdq[0]["transform"] in DERIVED or "+" in pdq[0]["transform"]
    out = io.StringIO()
    assert store.export("known", "csv", out) == 6 * 4  # md5, sha1, sha256, pdq per file; no derived rows
    for p in photos[6:12]:
        assert process_item(Item("x.jpg", jpeg(load(p).rotate(3)), "image/jpeg"), ctx).matches == []


def test_verifier_promotes_tilted_and_overlaid_copies_with_geometric_evidence(
    db_url: str, photos: list[Path], tmp_path: Path
) -> None:
    """Copies beyond PDQ's reach (a 6° tilt, a large logo) match only when ORB keypoints verify under one
    similarity transform; the match says so, with inliers and the estimated rotation."""
    pytest.importorskip("cv2")
    store, entries = _media_bank(db_url, photos[:6], tmp_path)
    store.add_entries("known", entries)
    out = io.StringIO()
    store.export("known", "csv", out)
    assert "features" not in out.getvalue()  # local features are vigie's own data, never exported
    ctx = PipelineContext(limits=LIMITS, matcher=Matcher.open(store.db))
    im = load(photos[1])
    tilted = im.rotate(6, resample=Image.Resampling.BILINEAR)
    res = process_item(Item("t.jpg", jpeg(tilted), "image/jpeg"), ctx)
    [m] = [x for x in res.matches if x["signal"] == "pdq"]
    assert m["transform"] == "verified" and m["labels"]["external_id"].endswith(photos[1].name)
    ev = m["verification"]
    assert ev["inliers"] >= 25 and abs(abs(ev["rotation_deg"]) - 6) <= 1.5 and "features" not in m["labels"]
    for p in photos[6:14]:  # unrelated photos, tilted too: never verified
        q = load(p).rotate(6, resample=Image.Resampling.BILINEAR)
        assert process_item(Item("u.jpg", jpeg(q), "image/jpeg"), ctx).matches == []


def test_a_washed_out_copy_matches_only_through_verified_keypoints(
    db_url: str, photos: list[Path], tmp_path: Path
) -> None:
    """Under PDQ quality 50 a hash is never matched by its distance, however close (PDQ's rule); it only
    says which entries to verify. A copy with its contrast cut to a fifth (quality 27–43, PDQ a few bits
    from its original) therefore matches with keypoint evidence or not at all, and a flat image never."""
    pytest.importorskip("cv2")
    from PIL import ImageEnhance

    store, entries = _media_bank(db_url, photos[:6], tmp_path)
    store.add_entries("known", entries)
    ctx = PipelineContext(limits=LIMITS, matcher=Matcher.open(store.db))
    washed = 0
    for p in photos[:6]:
        data = jpeg(ImageEnhance.Contrast(load(p)).enhance(0.2))
        sig = hash_item(Item("w.jpg", data, "image/jpeg"), LIMITS)
        if (sig.pdq_quality or 0) >= 50:
            continue
        washed += 1
        res = process_item(Item("w.jpg", data, "image/jpeg"), ctx)
        pdq = [m for m in res.matches if m["signal"] == "pdq"]
        assert pdq and all(m["transform"] == "verified" and m["verification"]["inliers"] >= 25 for m in pdq)
        assert all(m["labels"]["external_id"].endswith(p.name) for m in pdq)
    assert washed >= 4
    flat = jpeg(Image.new("RGB", (640, 480), (128, 128, 128)))
    assert process_item(Item("f.jpg", flat, "image/jpeg"), ctx).matches == []
    for p in photos[6:12]:  # unrelated photos, washed out too: never verified
        data = jpeg(ImageEnhance.Contrast(load(p)).enhance(0.2))
        assert process_item(Item("u.jpg", data, "image/jpeg"), ctx).matches == []


def test_crops_too_flat_for_a_pdq_entry_still_say_where_to_verify(photos: list[Path], tmp_path: Path) -> None:
    """A smooth tile's 10% crop falls under quality 50, so `vigie bank add` keeps no PDQ entry for it;
    the entry keeps that crop's hash as a verification hint instead (vigie's own data: no label, no
    export). The same crop taken from an upload is then verified through it; without the hints, it is not."""
    pytest.importorskip("cv2")
    from vigie.banks.ingest import entries_for_paths

    by_name = {p.name: p for p in photos}
    if not {"greentraditional.jpg", "the-mouse.jpg"} <= set(by_name):
        pytest.skip("the smooth photos this test cuts tiles from are not among the shared photos")
    tiles = {}
    for name, (r, c) in (("greentraditional.jpg", (1, 0)), ("greentraditional.jpg", (1, 1)),
                         ("the-mouse.jpg", (0, 1))):  # fmt: skip
        im = load(by_name[name], 1600)
        w, h = im.width // 2, im.height // 2
        tiles[f"{name}_{r}{c}.jpg"] = im.crop((c * w, r * h, (c + 1) * w, (r + 1) * h))
    folder = tmp_path / "tiles"
    folder.mkdir()
    for n, im in tiles.items():
        (folder / n).write_bytes(jpeg(im))
    for p in photos[:8]:  # other entries the verifier could be pointed at
        (folder / p.name).write_bytes(jpeg(load(p)))
    verified = {}
    for with_hints in (True, False):
        store = BankStore(open_db(f"sqlite:///{tmp_path / f'h{with_hints}.db'}"))
        store.create_bank("known")
        entries = [
            e
            for e in entries_for_paths([folder], store.get_bank("known"), LIMITS, {}, name_by="name")
            if isinstance(e, EntryIn)
        ]
        hinted = [e for e in entries if (e.extra or {}).get("verify_hints")]
        assert len(hinted) >= 3 and all(len(h) == 64 for e in hinted for h in e.extra["verify_hints"])
        if not with_hints:
            for e in hinted:
                e.extra = {k: v for k, v in e.extra.items() if k != "verify_hints"}
        store.add_entries("known", entries)
        out = io.StringIO()
        store.export("known", "csv", out)
        assert "verify_hints" not in out.getvalue()
        ctx = PipelineContext(limits=LIMITS, matcher=Matcher.open(store.db))
        verified[with_hints] = 0
        for n, im in tiles.items():
            w, h = im.size
            data = jpeg(im.crop((w // 10, h // 10, w - w // 10, h - h // 10)))
            res = process_item(Item("c.jpg", data, "image/jpeg"), ctx)
            assert (res.pdq_quality or 0) < 50
            hits = [m for m in res.matches if m["signal"] == "pdq"]
            assert all(m["labels"]["external_id"] == n and "verify_hints" not in m["labels"] for m in hits)
            verified[with_hints] += bool(hits)
    assert verified[True] == len(tiles) > verified[False], verified


def test_the_verifiers_candidate_set_follows_bank_changes_without_rereading(
    db_url: str, photos: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Media entries added after the candidate set was read join it from their own id range (reading the
    whole set is slow for a large media bank); a removed or disabled entry stops being a candidate at once
    without a full read, an enabled one comes back, and once stale codes are a quarter of the set the next
    search reads it all again."""
    pytest.importorskip("cv2")
    from vigie.banks.ingest import entries_for_paths
    from vigie.banks.verifiable import VerifiableSet

    store, entries = _media_bank(db_url, photos[:3], tmp_path)
    store.add_entries("known", entries)
    matcher = Matcher.open(store.db)
    hexes = {
        e.external_id: e.value for e in entries if e.signal_type == "pdq" and (e.extra or {}).get("features")
    }
    assert len(hexes) == 3 and all(matcher.verify_candidates([h], 0, 8) for h in hexes.values())
    full_reads: list[bool] = []
    real_read = VerifiableSet._read
    monkeypatch.setattr(
        VerifiableSet,
        "_read",
        lambda self, where: full_reads.append(where is sa.true()) or real_read(self, where),
    )
    later = tmp_path / "later"
    later.mkdir()
    (later / photos[5].name).write_bytes(jpeg(load(photos[5])))
    added = [
        e
        for e in entries_for_paths([later], store.get_bank("known"), LIMITS, {}, name_by="name")
        if isinstance(e, EntryIn)
    ]
    store.add_entries("known", added)
    matcher.refresh()
    [new] = [e for e in added if e.signal_type == "pdq" and (e.extra or {}).get("features")]
    [(eid, dist)] = matcher.verify_candidates([new.value], 0, 8)
    assert dist == 0 and full_reads == [False]  # its id range only
    derived = next(e for e in added if (e.extra or {}).get("derived"))
    assert matcher.verify_candidates([derived.value], 0, 8) == [(eid, 0)]  # a crop names its owner
    store.set_enabled("known", [eid], False)
    matcher.refresh()
    assert matcher.verify_candidates([new.value], 0, 8) == []
    assert matcher.verify_candidates([derived.value], 0, 8) == []  # its crops no longer name it
    store.set_enabled("known", [eid], True)
    matcher.refresh()
    assert matcher.verify_candidates([new.value], 0, 8) == [(eid, 0)]
    store.remove_entries("known", [eid])
    matcher.refresh()
    assert matcher.verify_candidates([new.value], 0, 8) == [] and not any(full_reads)
    assert all(matcher.verify_candidates([h], 0, 8) for h in hexes.values())
    first = [int(e.id) for e in store.iter_entries("known") if e.external_id == photos[0].name]
    store.remove_entries("known", first)  # a third of the set: read again
    matcher.refresh()
    assert matcher.verify_candidates([hexes[photos[0].name]], 0, 8) == [] and full_reads[-1] is True
    assert matcher.verify_candidates([hexes[photos[1].name]], 0, 8)


def test_a_fitted_model_counts_every_keypoint_it_carries() -> None:
    """Repeated texture leaves few unambiguous pairs; once RANSAC has a model, the keypoints it carries
    onto a known keypoint with a close descriptor count too, each once, and a wrong model carries none."""
    features = pytest.importorskip("vigie.signals.features")
    rng = np.random.default_rng(7)
    pts = rng.uniform(0, 512, (200, 2)).astype(np.float32)
    desc = rng.integers(0, 256, (200, 32), dtype=np.uint8)
    a = np.radians(3.0)
    model = np.array([[np.cos(a), -np.sin(a), 5.0], [np.sin(a), np.cos(a), -3.0]]) * [[0.9], [0.9]]
    model[:, 2] = [5.0, -3.0]
    target = features.Features((pts @ model[:, :2].T + model[:, 2]).astype(np.float32), desc.copy())
    query = features.Features(pts, desc)
    assert features._carried(query, target, model) == 200
    flipped = desc.copy()
    flipped[:50, :8] ^= 0xFF  # 64 bits apart: past CARRIED_MAX_HAMMING
    assert features._carried(features.Features(pts, flipped), target, model) == 150
    wrong = model.copy()
    wrong[:, 2] += 40.0
    assert features._carried(query, target, wrong) <= 2
    twice = features.Features(np.vstack([pts, pts]), np.vstack([desc, desc]))
    assert features._carried(twice, target, model) == 200  # one known keypoint is carried onto once


def test_a_model_that_keeps_few_pairs_is_judged_by_what_it_carries(photos: list[Path]) -> None:
    """Clouds turned 4° and cropped: the ratio test keeps pairs RANSAC mostly rejects (a low share), yet the
    right model carries far more keypoints than any chance one; an unrelated photo verifies nothing."""
    features = pytest.importorskip("vigie.signals.features")
    from vigie.signals.views import PixelViews

    storm = next((p for p in photos if p.name == "storm.jpg"), None)
    if storm is None:
        pytest.skip("the storm photo is not among the shared photos")
    im = load(storm, 1600)
    tile = im.crop((im.width // 2, im.height // 2, im.width // 2 * 2, im.height // 2 * 2))
    known = features.extract(np.asarray(Image.open(io.BytesIO(jpeg(tile, 95))).convert("L")))
    turned = tile.rotate(4, resample=Image.Resampling.BILINEAR)
    dx, dy = (
        round(tile.height * np.tan(np.radians(4)) / 2 + 2),
        round(tile.width * np.tan(np.radians(4)) / 2 + 2),
    )
    copy = turned.crop((dx, dy, tile.width - dx, tile.height - dy))
    found = [ev for q in PixelViews(jpeg(copy, 95), LIMITS).looks() if (ev := features.verify(q, known))]
    assert found and abs(found[0]["rotation_deg"] - 4) <= 1 and found[0]["inliers"] >= features.MIN_INLIERS
    assert found[0]["ransac_inliers"] < features.MIN_INLIER_RATIO * found[0]["matched_keypoints"], found
    other = next(p for p in photos if p.name != "storm.jpg")
    assert not any(features.verify(q, known) for q in PixelViews(jpeg(load(other)), LIMITS).looks())


def test_verifier_looks_at_the_picture_inside_a_page_on_its_own(photos: list[Path]) -> None:
    """A photo shown in a page gets only part of the page's keypoints: the verifier also takes the picture
    inside the layout alone, maps its points back to page coordinates, and that view verifies better."""
    features = pytest.importorskip("vigie.signals.features")
    pytest.importorskip("cv2")
    from vigie.settings import MediaLimits
    from vigie.signals.views import PixelViews

    for p in photos[:4]:
        im = load(p, 900)
        page = screenshot(im).resize((1400, round(1400 * 1.4 / 1.6 * im.height / im.width)))
        whole, inner = PixelViews(jpeg(page), MediaLimits()).looks()
        known = features.extract(np.asarray(im.convert("L")))
        assert known is not None
        ev = features.verify(inner, known)
        assert ev is not None and ev["inliers"] > ((features.verify(whole, known) or {}).get("inliers") or 0)
        # the photo sits at (20, 0.2 h) of the layout, 1400/(1.6 w) times smaller, in the 512-wide view
        k = features.SIDE / 1400
        origin = -np.array(ev["translation_px"]) / ev["scale"]
        assert np.allclose(
            origin, [20 * 1400 / (1.6 * im.width) * k, 0.2 * im.height * 1400 / (1.6 * im.width) * k], atol=4
        )


def test_bank_add_reports_entries_whose_pdq_says_little(photos: list[Path], tmp_path: Path) -> None:
    """Periodic stripes give PDQ full quality but flat low frequencies: `vigie bank add` says so for that
    file (and only it), keeps the assessment out of labels and exports, and exact copies still match."""
    stripes = next((p for p in photos if p.name == "wood-l.jpg"), None)
    if stripes is None:
        pytest.skip("the striped wallpaper is not among the shared photos")
    ordinary = [p for p in photos if p.name != "wood-l.jpg"][:2]
    env = {**os.environ, "VIGIE_HOME": str(tmp_path / "home")}
    vigie = [sys.executable, "-m", "vigie"]
    subprocess.run([*vigie, "bank", "create", "known"], env=env, check=True, capture_output=True)
    added = subprocess.run(
        [*vigie, "bank", "add", "known", str(stripes), *map(str, ordinary)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    said = " ".join((added.stdout + added.stderr).split())
    assert f"weak PDQ for {stripes}" in said and "DCT spread" in said
    assert all(f"weak PDQ for {p}" not in said for p in ordinary)
    store = BankStore(open_db(f"sqlite:///{tmp_path / 'home' / 'vigie.db'}"))
    weak = [e for e in store.iter_entries("known") if (e.extra or {}).get("pdq_weak") is not None]
    sha = hashlib.sha256(stripes.read_bytes()).hexdigest()
    assert len(weak) == 1 and weak[0].external_id == f"sha256:{sha}" and weak[0].extra["pdq_weak"] < 1.0
    assert "pdq_weak" not in weak[0].labels()
    out = io.StringIO()
    store.export("known", "csv", out)
    assert "pdq_weak" not in out.getvalue()
    # files are named by content: no file name or folder of the added files reaches an export
    assert all(
        p.name not in out.getvalue() and str(p.parent) not in out.getvalue() for p in [stripes, *ordinary]
    )
    matched = subprocess.run(
        [*vigie, "match", "--json", str(stripes)], env=env, capture_output=True, text=True, check=True
    )
    assert any(m["signal"] == "sha256" for m in json.loads(matched.stdout)["matches"])


def png(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.parametrize("wrap", ["pad_black_20", "pad_white_30", "letterbox"])
def test_trims_of_a_reduced_jpeg_decode_agree_with_the_full_decode(photos: list[Path], wrap: str) -> None:
    """Large JPEGs are hashed from a reduced (or, when fragile, an exact) decode; the picture inside the
    frame must be hashed at the image's real size either way, as a PNG of the same pixels is."""
    for p in photos[:8]:
        framed = WRAPS[wrap](load(p, side=1024))  # ~2000 px: decoded at 1/2 or 1/4 scale
        via_jpeg = hash_item(Item("q.jpg", jpeg(framed), "image/jpeg"), LIMITS, dihedral=True).pdq_extra or {}
        via_png = hash_item(Item("q.png", png(framed), "image/png"), LIMITS, dihedral=True).pdq_extra or {}
        for name in via_jpeg.keys() & via_png.keys():
            assert distance(via_jpeg[name], via_png[name]) <= 16, (p.name, name)


def test_a_fragile_framed_jpeg_has_its_picture_hashed_at_full_size(photos: list[Path]) -> None:
    """A JPEG whose reduced-decode hash is fragile is rehashed from its exact pixels; the picture inside
    its frame must then be hashed at the image's real size (once it was hashed as if half as large: 134
    bits from the original instead of 24)."""
    mouse = next((p for p in photos if p.name == "the-mouse.jpg"), None)
    if mouse is None:
        pytest.skip("the-mouse.jpg is not among the shared photos")
    im = load(mouse, side=1024)
    orig = hash_item(Item("o.jpg", jpeg(im), "image/jpeg"), LIMITS)
    framed = hash_item(Item("q.jpg", jpeg(WRAPS["frame_blue_50"](im)), "image/jpeg"), LIMITS, dihedral=True)
    assert min(distance(v, orig.pdq or "") for v in (framed.pdq_extra or {"none": "f" * 64}).values()) <= 31


def caption(im: Image.Image) -> Image.Image:
    """Two lines of large outlined text across the lower half, as a repost watermark puts them."""
    out = im.copy()
    d = ImageDraw.Draw(out)
    font = ImageFont.load_default(size=max(12, im.height // 10))
    for k, line in enumerate(("repost @ example", "follow for more 2026")):
        d.text((im.width * 0.04, im.height * (0.55 + 0.2 * k)), line, fill=(255, 255, 255), font=font,
               stroke_width=3, stroke_fill=(0, 0, 0))  # fmt: skip
    return out


def meme(im: Image.Image, where: str = "top", lines: int = 1, size: int | None = None) -> Image.Image:
    """A white caption band added above or below the picture with lines of black text, as meme apps do."""
    band = im.height // 5
    out = Image.new("RGB", (im.width, im.height + band), "white")
    out.paste(im, (0, band if where == "top" else 0))
    font = ImageFont.load_default(size=size or max(12, band // (3 * lines)))
    y0 = 0 if where == "top" else im.height
    for k in range(lines):
        y = y0 + band * (k + 1) // (lines + 1) - font.size // 2
        ImageDraw.Draw(out).text((im.width // 20, y), f"line {k + 1}: when the weekend starts", fill="black",
                                 font=font)  # fmt: skip
    return out


@pytest.mark.parametrize(
    ("where", "lines", "size"), [("top", 1, None), ("top", 2, None), ("bottom", 1, None), ("top", 1, 11)]
)
def test_a_picture_under_a_caption_band_is_hashed_alone(
    photos: list[Path], where: str, lines: int, size: int | None
) -> None:
    """A meme's caption band stops the usual peel at its first line of text; the picture under (or over)
    it is found as ``trim_caption`` and hashes near the original, whatever the text's size and lines."""
    near = 0
    for p in photos[:12]:
        im = load(p, 800)
        orig = hash_item(Item("o.jpg", jpeg(im), "image/jpeg"), LIMITS)
        q = hash_item(Item("q.jpg", jpeg(meme(im, where, lines, size)), "image/jpeg"), LIMITS, dihedral=True)
        extra = q.pdq_extra or {}
        near += "trim_caption" in extra and distance(extra["trim_caption"], orig.pdq or "") <= 31
    assert near >= 10, near


def test_no_caption_band_is_found_on_plain_photos_or_their_frames(photos: list[Path]) -> None:
    """A photo with a plain sky or a graphic with a flat part, as it is or padded, is not a caption band:
    its edge fades, where a band's ends at once."""
    for p in photos:
        im = load(p, 800)
        for view in (im, WRAPS["pad_white_30"](im), WRAPS["pad_black_20"](im)):
            assert "trim_caption" not in picture_boxes(np.asarray(Image.open(io.BytesIO(jpeg(view))))), p.name


def test_a_known_meme_or_padded_image_matches_its_bare_picture(
    db_url: str, photos: list[Path], tmp_path: Path
) -> None:
    """A bank entry added from a framed or captioned copy also keeps the picture inside: the bare picture
    re-posted matches it, naming the entry's derived picture, and other photos do not."""
    store = BankStore(open_db(db_url))
    store.create_bank("known")
    folder = tmp_path / "known"
    folder.mkdir()
    wrapped = {photos[0]: meme(load(photos[0])), photos[1]: WRAPS["pad_white_30"](load(photos[1]))}
    for p, im in wrapped.items():
        (folder / p.name).write_bytes(jpeg(im))
    from vigie.banks.ingest import entries_for_paths

    got = entries_for_paths([folder], store.get_bank("known"), LIMITS, {}, name_by="name")
    store.add_entries("known", [e for e in got if isinstance(e, EntryIn)])
    ctx = PipelineContext(limits=LIMITS, matcher=Matcher.open(store.db))
    want = {photos[0].name: "picture_under_caption", photos[1].name: "picture_in_frame"}
    for p in wrapped:
        res = process_item(Item("bare.jpg", jpeg(load(p), 80), "image/jpeg"), ctx)
        assert [(m["labels"]["external_id"], m.get("transform")) for m in res.matches] == [
            (p.name, want[p.name])
        ]
    for p in photos[10:16]:
        assert process_item(Item("o.jpg", jpeg(load(p)), "image/jpeg"), ctx).matches == []


def test_verifier_takes_a_second_look_past_a_caption(photos: list[Path], tmp_path: Path) -> None:
    """Text laid over a copy wins the strongest corners; when the usual keypoints verify nothing, the
    verifier looks again with keypoints spread over the whole picture, so captioned copies still match
    (and unrelated ones do not)."""
    pytest.importorskip("cv2")
    store, entries = _media_bank(f"sqlite:///{tmp_path / 'v.db'}", photos[:10], tmp_path)
    # without the band cuts, which match most captioned copies before the verifier is asked
    store.add_entries("known", [e for e in entries if "cut_" not in str((e.extra or {}).get("derived"))])
    ctx = PipelineContext(limits=LIMITS, matcher=Matcher.open(store.db))
    verified = matched = 0
    for p in photos[:10]:
        res = process_item(Item("c.jpg", jpeg(caption(load(p))), "image/jpeg"), ctx)
        hits = [m for m in res.matches if m["signal"] == "pdq"]
        assert all(m["labels"]["external_id"].endswith(p.name) for m in hits)
        matched += bool(hits)
        verified += any(m.get("transform") == "verified" for m in hits)
    assert verified >= 5 and matched >= 8, (verified, matched)  # the usual keypoints alone verify none
    for p in photos[10:18]:
        assert process_item(Item("u.jpg", jpeg(caption(load(p))), "image/jpeg"), ctx).matches == []


def _within(px: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Reference: lo <= pixel <= hi on every channel of (..., c) uint8 pixels."""
    return ((px >= lo) & (px <= hi)).all(axis=-1)


def _bounds_reference(rgb: np.ndarray, tol: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Reference for ``background_bounds``: the band copied out, quantised, and each frequent colour's
    mean taken over its pixels, in numpy."""
    from vigie.signals.borders import _Q, _uint8_bounds

    a = rgb[:, :, None] if rgb.ndim == 2 else rgb
    h, w, c = a.shape
    b = max(2, min(h, w) // 40)
    band = np.concatenate([a[:b].reshape(-1, c), a[-b:].reshape(-1, c), a[:, :b].reshape(-1, c),
                           a[:, -b:].reshape(-1, c)]).astype(np.int64)  # fmt: skip
    step, tol = (_Q, tol) if c == 3 else (_Q // 2, tol // 2)
    q = band // step
    keys = q[:, 0] * 256 + q[:, -1] * 16 + q[:, c // 2]
    out = []
    for key in np.unique(keys):
        members = band[keys == key]
        if len(members) >= 0.08 * len(band):
            lo, hi = _uint8_bounds(members.mean(axis=0), tol)
            out.append((lo, hi))
    return out


def _peel_reference(a: np.ndarray, step: int, tol: int) -> int:
    """Reference for ``_peel_side``: every ``step``-th line tested in numpy, then the lines after the
    last one that was one colour."""
    from vigie.signals.borders import _line_median, _uint8_bounds

    lo, hi = _uint8_bounds(_line_median(a[0]).astype(np.int16), tol)

    def same(lines: np.ndarray) -> np.ndarray:
        return _within(lines, lo, hi).mean(axis=1) >= 0.98

    coarse = same(a[::step])
    n = int(np.argmin(coarse)) if not coarse.all() else len(coarse)
    if n == 0:
        return 0
    start = (n - 1) * step
    fine = same(a[start : start + step + 1])
    return start + (int(np.argmin(fine)) if not fine.all() else len(fine))


def test_compiled_band_colours_and_peel_are_the_numpy_forms(photos: list[Path]) -> None:
    """The background colours of an image's outer band and the bars peeled off each side are exactly what
    the plain numpy forms give: on photos, framed and padded copies, luma and RGB, strided and reversed
    views, and arrays smaller than the band."""
    from vigie.signals.borders import _peel_side, background_bounds

    rng = np.random.default_rng(5)
    arrays = [rng.integers(0, 256, (90, 140, 3), dtype=np.uint8), np.full((3, 5, 3), 7, np.uint8)]
    for p in photos[:8]:
        rgb = np.asarray(load(p, 512))
        arrays += [rgb, np.pad(rgb, ((40, 60), (90, 10), (0, 0)), constant_values=230)]
    arrays += [np.ascontiguousarray(a.mean(axis=2).astype(np.uint8)) for a in list(arrays)]
    for a in arrays:
        for view in (a, a[::3, ::3], a[1:, 2:-1], a[::-1]):
            for tol in (18, 3, 1):
                got, want = background_bounds(view, tol), _bounds_reference(view, tol)
                assert len(got) == len(want)
                for (lo, hi), (rlo, rhi) in zip(got, want, strict=True):
                    assert np.array_equal(lo, rlo) and np.array_equal(hi, rhi)
            lines = view if view.ndim == 3 else view[:, :, None]
            for side in (lines, lines[::-1], lines.transpose(1, 0, 2), lines.transpose(1, 0, 2)[::-1]):
                for step, tol in ((1, 12), (5, 12), (5, 3)):
                    assert _peel_side(side, step, tol) == _peel_reference(side, step, tol)


def test_rgb_background_masks_are_the_per_colour_comparisons(photos: list[Path]) -> None:
    """The compiled one-pass mask gives exactly what comparing each colour's bounds in numpy gives,
    on whole images and on the strided and cropped views the search passes it."""
    from vigie.signals.borders import background_bounds, mask_within

    rng = np.random.default_rng(2)
    arrays = [rng.integers(0, 256, (90, 140, 3), dtype=np.uint8)]
    arrays += [np.asarray(Image.open(p).convert("RGB")) for p in photos[:4]]
    extra = (np.array([100, 90, 80], np.uint8), np.array([160, 170, 180], np.uint8))
    for a in arrays:
        for view in (a, a[::3, ::3], a[10:-10, 5:]):
            bounds = [*background_bounds(view), extra]
            expected = np.zeros(view.shape[:2], dtype=bool)
            for lo, hi in bounds:
                expected |= _within(view, lo, hi)
            assert np.array_equal(mask_within(view, bounds), expected)


def test_a_pale_picture_on_a_white_pad_is_found_by_peeling_to_the_grey_level() -> None:
    """A light-grey graphic on a white pad: the usual tolerance takes the graphic's flat background for more
    pad and peels half the picture off; the strict peel stops at the pad's edge, and its box hashes near the
    original."""
    im = Image.new("RGB", (600, 400), (247, 247, 247))
    d = ImageDraw.Draw(im)
    for k in range(4):  # green arcs in the left part, the rest the flat light background
        d.arc((-200 + 30 * k, 40 + 20 * k, 260 - 30 * k, 360 - 20 * k), 270, 90, fill=(90, 170, 90), width=14)
    padded = ImageOps.expand(im, border=(120, 80), fill="white")
    px = np.asarray(Image.open(io.BytesIO(jpeg(padded))).convert("RGB"))
    boxes = picture_boxes(px)
    x0, y0, x1, y1 = boxes["trim_strict"]
    assert max(abs(x0 - 120), abs(y0 - 80), abs(x1 - 720), abs(y1 - 480)) <= 3, boxes
    assert boxes["trim"][2] < 600  # the usual peel went into the picture
    s = hash_item(Item("p.jpg", jpeg(padded), "image/jpeg"), LIMITS, dihedral=True)
    own = hash_item(Item("o.jpg", jpeg(im), "image/jpeg"), LIMITS)
    assert distance((s.pdq_extra or {})["trim_strict"], own.pdq or "") <= 16
