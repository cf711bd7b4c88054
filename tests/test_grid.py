"""Contact sheets and collages: each picture of a grid is hashed alone and matches on its own."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from slideshow import sheet
from test_borders import WRAPS, _media_bank, jpeg, load, meme
from vigie.banks import BankStore, EntryIn
from vigie.banks.matcher import Matcher
from vigie.media import Item
from vigie.pipeline import PipelineContext, process_item
from vigie.scan.report import transform_words
from vigie.settings import MediaLimits
from vigie.signals import hash_item
from vigie.signals.grid import cell_hashes, grid_cells, is_cell
from vigie.signals.pdq import distance, hash_array
from vigie.store import open_db

LIMITS = MediaLimits()


def test_a_contact_sheet_is_cut_into_its_cells_exactly(photos: list[Path]) -> None:
    """Found on RGB and on the reduced luma a large JPEG decodes to, under a header, in either gutter
    colour; each cell's PDQ lands near its picture's."""
    pics = [load(p) for p in photos[:9]]
    for bg in ((24, 24, 24), (250, 250, 250)):
        im, boxes = sheet(pics, 3, bg=bg)
        got = [box for row in grid_cells(np.asarray(im)) for box in row]
        assert got == boxes
        big = im.resize((im.width * 2, im.height * 2))
        sig = hash_item(Item("s.jpg", jpeg(big, 90), "image/jpeg"), LIMITS, dihedral=True)
        cells = {k: v for k, v in (sig.pdq_extra or {}).items() if is_cell(k) and "cut" not in k}
        near = 0
        for k, pic in enumerate(pics):
            own = hash_array(np.asarray(pic.resize((320, 200))))
            name = f"cell_{k // 3 + 1}_{k % 3 + 1}"
            if own.quality >= 50 and name in cells:
                near += distance(cells[name], own.hex) <= 31
        assert near >= 5, cells  # a timestamp moves a smooth picture's PDQ further: its cuts catch those


def test_strips_and_gutterless_layouts(photos: list[Path]) -> None:
    """A row of pictures with a margin above and below is a grid, and so are pictures tiled edge to edge
    in rows and columns (ffmpeg's ``tile`` filter's default), re-encoded too, alone or inside a plain
    margin and under a header; one row of pictures that touch, or a single picture in a frame, is not (one
    straight edge across a photo is no layout)."""
    pics = [load(p) for p in photos[:3]]
    strip, boxes = sheet(pics, 3, header=0, stamps=False)
    assert [box for row in grid_cells(np.asarray(strip)) for box in row] == boxes
    touching, _ = sheet(pics, 3, gutter=0, margin=0, header=0, stamps=False)
    assert grid_cells(np.asarray(touching.convert("L"))) == []
    single, _ = sheet(pics[:1], 1)
    assert grid_cells(np.asarray(single.convert("L"))) == []
    for n, start in ((3, 0), (4, 6)):
        pics = [load(p) for p in (photos * 2)[start : start + n * n]]
        tiled, boxes = sheet(pics, n, cell=(256, 144), gutter=0, margin=0, header=0, stamps=False)
        decoded = np.asarray(Image.open(io.BytesIO(jpeg(tiled, 75))).convert("L"))
        assert [box for row in grid_cells(decoded) for box in row] == boxes, n
        # the same tiles inside a plain margin (ffmpeg's tile with a margin), and under a header too
        for margin, header in ((8, 0), (12, 56)):
            framed, boxes = sheet(
                pics, n, cell=(256, 144), gutter=0, margin=margin, header=header, stamps=False
            )
            decoded = np.asarray(Image.open(io.BytesIO(jpeg(framed, 75))).convert("L"))
            got = [box for row in grid_cells(decoded) for box in row]
            assert len(got) == len(boxes), (n, margin, header)
            off = [abs(u - v) for g, b in zip(got, boxes, strict=True) for u, v in zip(g, b, strict=True)]
            assert max(off) <= 2, (n, margin, header)


def test_photos_and_their_usual_wrappings_are_not_grids(photos: list[Path]) -> None:
    """No cell variant for plain photos, padded, letterboxed, screenshotted or captioned ones, tilted
    ones with black corners, or a flat image: what is hashed for them stays as it was."""
    for p in photos:
        im = load(p)
        if p.name == "truchet-l.jpg":  # a graphic drawn as tiles: a grid by construction
            assert [len(row) for row in grid_cells(np.asarray(im.convert("L")))] == [2, 2]
            continue
        for copy in (im, meme(im), im.rotate(10), *(wrap(im) for wrap in WRAPS.values())):
            assert grid_cells(np.asarray(copy.convert("L"))) == [], p.name
    assert cell_hashes(np.full((300, 400), 128, np.uint8), (400, 300)) == {}


def test_a_known_picture_in_a_sheet_matches_once_and_unknown_cells_do_not(
    db_url: str, photos: list[Path], tmp_path: Path
) -> None:
    """A collage holding one known photo among eight unknown ones matches that photo, naming the cell;
    a collage of unknown photos matches nothing."""
    store, entries = _media_bank(db_url, photos[:4], tmp_path)
    store.add_entries("known", entries)
    matcher = Matcher.open(store.db)
    ctx = PipelineContext(limits=LIMITS, matcher=matcher)
    unknown = [load(p) for p in photos[6:14]]
    pics = [*unknown[:4], load(photos[2]), *unknown[4:]]
    im, _ = sheet(pics, 3)
    res = process_item(Item("s.jpg", jpeg(im), "image/jpeg"), ctx)
    assert [m["labels"]["external_id"] for m in res.matches] == [photos[2].name], res.matches
    assert res.matches[0]["transform"].startswith("cell_2_2"), res.matches[0]
    # privacy mode: the platform hashes the sheet itself and sends what `vigie hash --variants` prints
    sig = hash_item(Item("s.jpg", jpeg(im), "image/jpeg"), LIMITS, dihedral=True)
    found = matcher.match(pdq=sig.pdq, pdq_quality=sig.pdq_quality, pdq_variants=sig.variants())
    assert [(m.labels["external_id"], (m.transform or "")[:8]) for m in found.matches] == [
        (photos[2].name, "cell_2_2")
    ]
    im, _ = sheet(unknown, 3)
    assert process_item(Item("u.jpg", jpeg(im), "image/jpeg"), ctx).matches == []


def test_a_tilted_picture_in_a_sheet_is_verified_on_its_cell(
    db_url: str, photos: list[Path], tmp_path: Path
) -> None:
    """A known photo turned 6° in one cell is past every PDQ threshold; its keypoints, taken on the cell
    alone, verify it, and the evidence names the cell and the turn."""
    store, entries = _media_bank(db_url, photos[:4], tmp_path)
    store.add_entries("known", entries)
    ctx = PipelineContext(limits=LIMITS, matcher=Matcher.open(store.db))
    unknown = [load(p) for p in photos[6:14]]
    for k in (0, 3):
        tilted = load(photos[k]).rotate(6, resample=Image.Resampling.BILINEAR)
        im, _ = sheet([*unknown[:4], tilted, *unknown[4:]], 3, cell=(480, 300))
        [m] = process_item(Item("s.jpg", jpeg(im), "image/jpeg"), ctx).matches
        ev = m["verification"]
        assert (m["labels"]["external_id"], m["transform"]) == (photos[k].name, "verified")
        assert ev["cell"] == "cell_2_2"
        assert abs(abs(ev["rotation_deg"]) - 6) <= 1.5 and ev["inliers"] >= 25, ev


def test_an_allow_listed_cell_does_not_hide_a_known_one(db_url: str, photos: list[Path]) -> None:
    """A known benign picture (allow bank) in one cell suppresses that cell's match only; the sheet itself
    on the allow list suppresses them all."""
    store = BankStore(open_db(db_url))
    store.create_bank("known")
    store.create_bank("benign", kind="allow")
    pics = [load(p) for p in photos[:6]]
    im, _ = sheet(pics, 3, stamps=False)
    sig = hash_item(Item("s.jpg", jpeg(im), "image/jpeg"), LIMITS)

    def pdq_of(pic: Image.Image) -> str:
        return hash_array(np.asarray(pic.resize((320, 200)))).hex

    store.add_entries("known", [EntryIn("pdq", pdq_of(pics[4]), external_id="known-4")])
    store.add_entries("benign", [EntryIn("pdq", pdq_of(pics[0]), external_id="benign-0")])
    ctx = PipelineContext(limits=LIMITS, matcher=Matcher.open(store.db))
    res = process_item(Item("s.jpg", jpeg(im), "image/jpeg"), ctx)
    assert [m["labels"]["external_id"] for m in res.matches] == ["known-4"]
    assert [m["labels"]["external_id"] for m in res.suppressed] == []
    store.add_entries("benign", [EntryIn("pdq", sig.pdq or "", external_id="benign-sheet")])
    ctx = PipelineContext(limits=LIMITS, matcher=Matcher.open(store.db))
    res = process_item(Item("s.jpg", jpeg(im), "image/jpeg"), ctx)
    assert res.matches == [] and [m["labels"]["external_id"] for m in res.suppressed] == ["known-4"]


def test_a_known_sheet_keeps_its_cells_and_one_frame_alone_matches_it(
    db_url: str, photos: list[Path], tmp_path: Path
) -> None:
    store = BankStore(open_db(db_url))
    store.create_bank("known")
    folder = tmp_path / "known"
    folder.mkdir()
    pics = [load(p) for p in photos[:6]]
    im, _ = sheet(pics, 3)
    (folder / "sheet.jpg").write_bytes(jpeg(im))
    from vigie.banks.ingest import entries_for_paths

    got = [
        e for e in entries_for_paths([folder], store.get_bank("known"), LIMITS, {}) if isinstance(e, EntryIn)
    ]
    derived = {(e.extra or {}).get("derived") for e in got}
    assert {f"sheet_cell_{r}_{c}" for r in (1, 2) for c in (1, 2, 3)} & derived
    store.add_entries("known", got)
    ctx = PipelineContext(limits=LIMITS, matcher=Matcher.open(store.db))
    hits = 0
    for k, pic in enumerate(pics):
        if f"sheet_cell_{k // 3 + 1}_{k % 3 + 1}" not in derived:
            continue
        res = process_item(Item("f.jpg", jpeg(pic.resize((640, 400)), 85), "image/jpeg"), ctx)
        if res.matches:
            assert res.matches[0]["transform"].endswith(f"sheet_cell_{k // 3 + 1}_{k % 3 + 1}"), res.matches
            hits += 1
    assert hits >= 3
    for p in photos[10:14]:
        assert process_item(Item("o.jpg", jpeg(load(p)), "image/jpeg"), ctx).matches == []


def test_a_contact_sheet_of_a_known_video_matches_the_video(db_url: str, photos: list[Path]) -> None:
    """The thumbnail sheet a site shows for a video, as a still: its frames meet the video's frames."""
    from test_video_bank import FPS, _bank

    m, known = _bank(db_url, photos)
    frames = [Image.fromarray(known[k]) for k in range(0, len(known), len(known) // 9)][:9]
    im, _ = sheet(frames, 3, cell=(320, 180))
    res = process_item(Item("sheet.jpg", jpeg(im), "image/jpeg"), PipelineContext(matcher=m))
    assert res.matches and res.matches[0]["labels"]["of"] == "known.mp4", res.matches
    assert is_cell(res.matches[0]["transform"]) and FPS


def test_a_reviewer_reads_which_cell_matched() -> None:
    assert transform_words("cell_2_3") == (
        "the item's picture in row 2, column 3 of its grid (a contact sheet or collage)"
    )
    assert "row 1, column 2 of its grid" in transform_words("cell_1_2_cut_bottom+cut_bottom")
    assert transform_words("sheet_cell_1_2") == (
        "the bank entry's picture in row 1, column 2 of the known contact sheet or collage"
    )


def _panned_sheet(im: Image.Image, whole: int, n: int = 4, cell: int = 256) -> Image.Image:
    """n×n frames of a slow pan over ``im``, edge to edge as ffmpeg's ``tile`` lays them, frame ``whole``
    showing it whole: neighbouring frames of one scene."""
    ch = round(im.height * cell / im.width)
    out = Image.new("RGB", (n * cell, n * ch))
    for k in range(n * n):
        z = 1.0 if k == whole else 1.15 + 0.05 * (k % 8)
        fx, fy = (k * 0.37) % 1.0, (k * 0.61) % 1.0
        w, h = im.width / z, im.height / z
        x, y = (im.width - w) * fx, (im.height - h) * fy
        frame = im.crop((round(x), round(y), round(x + w), round(y + h)))
        out.paste(frame.resize((cell, ch), Image.Resampling.BILINEAR), ((k % n) * cell, (k // n) * ch))
    return out


def test_panned_frames_of_a_smooth_scene_tiled_edge_to_edge(
    db_url: str, photos: list[Path], tmp_path: Path
) -> None:
    """Frames of a slow pan over a smooth meadow barely step where they meet, point by point; the mean
    change along each edge still stands above the lines beside it, so the sheet is cut into its 4×4
    frames and the frame showing the known photo whole matches it, naming that cell."""
    meadow = next(p for p in photos if p.name == "greenmeadow.jpg")
    store, entries = _media_bank(db_url, [meadow], tmp_path)
    store.add_entries("known", entries)
    ctx = PipelineContext(limits=LIMITS, matcher=Matcher.open(store.db))
    im = _panned_sheet(load(meadow, 1024), whole=6)
    data = jpeg(im, 95)
    decoded = np.asarray(Image.open(io.BytesIO(data)).convert("L"))
    assert [len(row) for row in grid_cells(decoded)] == [4, 4, 4, 4]
    [m] = process_item(Item("s.jpg", data, "image/jpeg"), ctx).matches
    assert m["labels"]["external_id"] == meadow.name
    assert (m["transform"] or "").startswith("cell_2_3"), m
