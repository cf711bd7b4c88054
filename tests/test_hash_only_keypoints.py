"""Privacy mode with keypoints: a platform that hashes itself and chooses to send an image's keypoint views
(``vigie hash --json --keypoints``) gets the verifier's matches an upload of the image gets."""

from __future__ import annotations

import base64
import json
import struct
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from slideshow import sheet
from test_borders import _media_bank, jpeg, load
from test_scan_cli import vigie
from test_service import auth, env  # noqa: F401  (the fixture, on both databases)
from vigie.media import Item
from vigie.settings import MediaLimits, Settings
from vigie.signals import hash_item

pytest.importorskip("cv2")
LIMITS = MediaLimits()


def _sent(data: bytes) -> dict[str, Any]:
    """What ``vigie hash --json --keypoints`` prints for an image: the body a platform sends."""
    rec = hash_item(Item("q.jpg", data), LIMITS, dihedral=True, keypoints=True).to_json(variants=True)
    return {k: rec[k] for k in ("pdq", "pdq_quality", "pdq_variants", "keypoints")}


def _post_until_matched(c: TestClient, body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    """The bank was written behind the service's back: post until its refresh has seen it."""
    for _ in range(40):
        r = c.post("/v1/items", json=body, headers=headers)
        assert r.status_code == 201, r.text
        if r.json()["decision"]["action"] != "allow":
            break
        time.sleep(0.1)
    return r.json()


def test_sent_keypoints_verify_a_tilted_copy_as_its_upload_does(
    env: dict[str, object],  # noqa: F811
    photos: list[Path],
    tmp_path: Path,
) -> None:
    """A known photo turned 6° is past every PDQ signal: sent with its keypoints it matches the entry by
    verified geometry (the turn in the evidence) as its upload does; without them it matches nothing. What
    is recorded is how many views came, never the keypoints."""
    c: TestClient = env["client"]  # type: ignore[assignment]
    settings: Settings = env["settings"]  # type: ignore[assignment]
    store, entries = _media_bank(settings.database_url, photos[:4], tmp_path)
    store.add_entries("known", entries)
    it = auth(env, "items:write")
    for k in (0, 3):
        data = jpeg(load(photos[k]).rotate(6, resample=Image.Resampling.BILINEAR))
        body = _sent(data)
        r = _post_until_matched(c, body, it)
        [m] = r["decision"]["reasons"][0]["evidence"]
        assert (m["labels"]["external_id"], m["transform"]) == (photos[k].name, "verified"), m
        ev = m["verification"]
        assert abs(abs(ev["rotation_deg"]) - 6) <= 1.5 and ev["inliers"] >= 25, ev
        up = c.post("/v1/items", files={"file": ("q.jpg", data, "image/jpeg")}, headers=it).json()
        [u] = up["decision"]["reasons"][0]["evidence"]
        assert (u["entry_id"], u["transform"]) == (m["entry_id"], "verified")
        plain = {k: v for k, v in body.items() if k != "keypoints"}
        alone = c.post("/v1/items", json=plain, headers=it).json()
        assert alone["decision"]["action"] == "allow", alone
        stored = c.get(f"/v1/items/{r['item_id']}", headers=it).json()
        assert stored["signals"]["keypoint_views"] >= 2  # the whole image and the spread look
        assert "keypoints" not in stored["signals"]
        assert body["keypoints"]["views"][0][:24] not in json.dumps(stored)


def test_sent_keypoints_of_a_sheet_verify_its_tilted_cell(
    env: dict[str, object],  # noqa: F811
    photos: list[Path],
    tmp_path: Path,
) -> None:
    """A contact sheet with a known photo turned 6° in one cell: its cell views, sent, verify that cell."""
    c: TestClient = env["client"]  # type: ignore[assignment]
    settings: Settings = env["settings"]  # type: ignore[assignment]
    store, entries = _media_bank(settings.database_url, photos[:4], tmp_path)
    store.add_entries("known", entries)
    it = auth(env, "items:write")
    unknown = [load(p) for p in photos[6:14]]
    tilted = load(photos[3]).rotate(6, resample=Image.Resampling.BILINEAR)
    im, _ = sheet([*unknown[:4], tilted, *unknown[4:]], 3, cell=(480, 300))
    body = _sent(jpeg(im))
    assert "cell_2_2" in body["keypoints"]["cells"] and len(body["keypoints"]["cells"]) >= 8
    r = _post_until_matched(c, body, it)
    [m] = r["decision"]["reasons"][0]["evidence"]
    assert (m["labels"]["external_id"], m["transform"]) == (photos[3].name, "verified"), m
    assert m["verification"]["cell"] == "cell_2_2"
    body["keypoints"].pop("cells")
    assert c.post("/v1/items", json=body, headers=it).json()["decision"]["action"] == "allow"


def _packed(points: np.ndarray, n: int | None = None) -> str:
    desc = np.zeros((len(points), 32), np.uint8)
    raw = struct.pack("<H", len(points) if n is None else n) + points.astype(np.float16).tobytes()
    return base64.b64encode(raw + desc.tobytes()).decode()


def test_malformed_keypoints_are_refused_whole(env: dict[str, object], photos: list[Path]) -> None:  # noqa: F811
    """Every malformed view is a 422 problem that names it; nothing is recorded."""
    c: TestClient = env["client"]  # type: ignore[assignment]
    it = auth(env, "items:write")
    body = _sent(jpeg(load(photos[1])))
    good = body["keypoints"]
    assert c.post("/v1/items", json=body, headers=it).status_code == 201
    pts = np.full((30, 2), 100.0)
    bad_views: list[Any] = [
        [],  # no view
        ["not base64!"],
        [_packed(pts, n=31)],  # a count its bytes do not hold
        [_packed(np.full((1001, 2), 10.0))],  # more keypoints than any view takes
        [_packed(np.full((30, 2), 9000.0))],  # off the 512-pixel view
        [good["views"][0]] * 3,
        "x",
    ]
    for views in bad_views:
        r = c.post("/v1/items", json={**body, "keypoints": {**good, "views": views}}, headers=it)
        assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json", views
    for bad in (
        {**good, "cells": {"cell_9_1": good["views"][0]}},
        {**good, "cells": {"trim": good["views"][0]}},
        {**good, "spread": "AQA="},  # one keypoint, and no bytes for it
        {**good, "hints": ["zz" * 32]},
        {**good, "pixels": "AAAA"},
        {**good, "mirrored": {**good["mirrored"], "cells": {}}},  # a mirror's looks only
        {**good, "mirrored": {"views": ["not base64!"]}},
    ):
        r = c.post("/v1/items", json={**body, "keypoints": bad}, headers=it)
        assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json", bad
    r = c.post("/v1/items", json={"md5": "0" * 32, "keypoints": good}, headers=it)  # keypoints of no image
    assert r.status_code == 422 and "pdq" in r.json()["detail"]


def test_hash_cli_prints_keypoints_only_when_asked(photos: list[Path], tmp_path: Path) -> None:
    """``--keypoints`` adds the packed views and hints at the end of the record (and implies the variants);
    without ``--json`` it is an error that says so."""
    p = tmp_path / "a.jpg"
    p.write_bytes(jpeg(load(photos[2])))
    rec = json.loads(vigie(tmp_path, "hash", "--json", "--keypoints", str(p)).stdout)
    assert list(rec)[-2:] == ["pdq_variants", "keypoints"]
    assert set(rec["keypoints"]) == {"views", "spread", "cells", "mirrored", "hints"}
    assert rec["keypoints"]["views"] and rec["keypoints"]["mirrored"]["views"]
    assert "keypoints" not in json.loads(vigie(tmp_path, "hash", "--json", "--variants", str(p)).stdout)
    table = vigie(tmp_path, "hash", "--keypoints", str(p), check=False)
    assert table.returncode == 2 and "use it with --json" in table.stderr and "Traceback" not in table.stderr
