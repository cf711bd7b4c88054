"""End-to-end: bank from benign photos, `vigie scan` of transformed copies, reports, resume after kill -9."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from PIL import Image, ImageEnhance

REPO = Path(__file__).resolve().parents[1]


def vigie(home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VIGIE_HOME": str(home)}
    env.pop("VIGIE_DATABASE_URL", None)
    proc = subprocess.run(
        [sys.executable, "-m", "vigie", *args], env=env, capture_output=True, text=True, timeout=300
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"vigie {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def small(photo: Path, size: int = 640) -> Image.Image:
    with Image.open(photo) as im:
        im.draft("RGB", (size, size))
        im = im.convert("RGB")
        im.thumbnail((size, size))
        return im


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory, photos: list[Path]) -> dict[str, object]:
    """A bank of 4 known photos; an inbox of their altered copies, 4 unrelated photos, an archive, junk."""
    root = tmp_path_factory.mktemp("scan")
    home, known, inbox = root / "home", root / "known", root / "inbox"
    known.mkdir()
    inbox.mkdir()
    for i, p in enumerate(photos[:4]):
        small(p).save(known / f"known_{i}.jpg", quality=92)
    small(photos[0]).save(inbox / "k0_recompressed.jpg", quality=45)
    im1 = small(photos[1])
    im1.resize((im1.width // 2, im1.height // 2)).save(inbox / "k1_half.jpg", quality=85)
    ImageEnhance.Brightness(small(photos[2])).enhance(1.25).save(inbox / "k2_bright.jpg", quality=85)
    small(photos[0]).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(inbox / "k0_mirrored.jpg", quality=85)
    for i, p in enumerate(photos[10:14]):
        small(p).save(inbox / f"unrelated_{i}.jpg", quality=85)
    (inbox / "dup").mkdir()
    for n in ("a", "b"):
        small(photos[15]).save(inbox / "dup" / f"copy_{n}.jpg", quality=85)
    small(photos[10]).save(inbox / "dup" / "resaved_unrelated_0.jpg", quality=60)
    buf = io.BytesIO()
    small(photos[3]).save(buf, "JPEG", quality=80)
    with zipfile.ZipFile(inbox / "dump.zip", "w") as zf:
        zf.writestr("sub/k3.jpg", buf.getvalue())
        zf.writestr("../evil.jpg", buf.getvalue())
    (inbox / "truncated.jpg").write_bytes((known / "known_0.jpg").read_bytes()[:3000])
    (inbox / "zero.png").write_bytes(b"")
    Image.new("RGB", (640, 480), (10, 200, 30)).save(inbox / "one_colour.jpg", quality=90)
    from slideshow import encode, slideshow_frames

    footage = list(slideshow_frames(photos[4:8], 4.0, 5, (320, 180)))  # a known 16-s video
    (known / "known_video.mp4").write_bytes(encode(footage, 5, (320, 180)))
    mirrored = [f[:, ::-1].copy() for f in footage[10:70]]  # 12 s of it, mirrored, as re-posts do
    (inbox / "v_mirrored_clip.mp4").write_bytes(encode(mirrored, 5, (320, 180), bitrate=200_000))

    vigie(home, "bank", "create", "known", "--description", "benign stand-ins")
    vigie(home, "bank", "add", "known", str(known), "--category", "test-category", "--source", "pytest")
    report = root / "out" / "report"
    proc = vigie(
        home,
        "scan",
        str(inbox),
        "--workers",
        "2",
        "--report",
        f"{report}.html",
        "--report",
        f"{report}.json",
        "--report",
        f"{report}.csv",
    )
    return {"home": home, "inbox": inbox, "report": report, "stdout": proc.stdout}


def test_scan_finds_altered_copies_and_nothing_else(scenario: dict[str, object]) -> None:
    doc = json.loads(Path(f"{scenario['report']}.json").read_text())
    by_path = {
        Path(r["path"]).name if "!" not in r["path"] else r["path"].split("/")[-1]: r for r in doc["items"]
    }
    matched = {name for name, r in by_path.items() if r["matches"]}
    assert matched == {
        "k0_recompressed.jpg",
        "k0_mirrored.jpg",
        "k1_half.jpg",
        "k2_bright.jpg",
        "k3.jpg",
        "v_mirrored_clip.mp4",
    }
    assert [m.get("transform") for m in by_path["k0_mirrored.jpg"]["matches"]] == ["mirror_lr"]
    [video] = by_path.pop("v_mirrored_clip.mp4")["matches"]
    known_video = Path(str(scenario["inbox"])).parent / "known" / "known_video.mp4"
    named = "sha256:" + hashlib.sha256(known_video.read_bytes()).hexdigest()
    assert video["signal"] == "vpdq" and video["labels"]["external_id"] == named
    assert video["labels"]["video_match"]["rule"] == "clip_of_known_video"
    assert set(video["labels"]["video_match"]["frame_variants"]) == {"mirror_lr"}
    for name in matched - {"v_mirrored_clip.mp4"}:
        m = min(by_path[name]["matches"], key=lambda m: m["distance"])
        assert m["bank"] == "known" and m["signal"] == "pdq" and m["distance"] <= 31
        assert m["labels"]["category"] == "test-category"


def test_scan_reports_every_bad_file_and_goes_on(scenario: dict[str, object]) -> None:
    doc = json.loads(Path(f"{scenario['report']}.json").read_text())
    errors = {r["path"].rsplit("/", 1)[-1]: r["error"] for r in doc["items"] if r["error"]}
    assert "truncated.jpg" in errors and "zero.png" in errors
    assert any("evil" in p or ".." in p for p in errors), errors
    assert doc["summary"]["errors"] == len(errors)
    assert doc["summary"]["items"] == len(doc["items"])


def test_scan_clusters_duplicates(scenario: dict[str, object]) -> None:
    doc = json.loads(Path(f"{scenario['report']}.json").read_text())
    exact = [c for c in doc["clusters"] if c["kind"] == "exact"]
    assert any(sorted(Path(m).name for m in c["members"]) == ["copy_a.jpg", "copy_b.jpg"] for c in exact)
    near = [sorted(Path(m).name for m in c["members"]) for c in doc["clusters"] if c["kind"] == "near"]
    assert ["resaved_unrelated_0.jpg", "unrelated_0.jpg"] in near


def test_html_and_csv_reports_are_readable(scenario: dict[str, object]) -> None:
    html = Path(f"{scenario['report']}.html").read_text()
    assert "k1_half.jpg" in html and "test-category" in html and "truncated.jpg" in html
    assert "mirror_lr" in html  # the flipped copy names the variant it matched through, in words too
    assert 'title="matched through the item&#39;s mirror image (left–right)"' in html
    assert "video: clip_of_known_video" in html and "mirror_lr ×" in html  # and so does the mirrored clip
    assert "not conclusions" in html and "<script" in html
    exact_only = html.split('id="exact-only"', 1)[1].split("<h2", 1)[0]
    assert "one_colour.jpg" in exact_only and "k1_half.jpg" not in exact_only
    with Path(f"{scenario['report']}.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    doc = json.loads(Path(f"{scenario['report']}.json").read_text())
    assert len(rows) == len(doc["items"])
    assert {r["path"].rsplit("/", 1)[-1] for r in rows if r["matched"] == "True"} >= {"k1_half.jpg", "k3.jpg"}
    assert "matched items" in str(scenario["stdout"])


def test_hash_json_contract(scenario: dict[str, object], photos: list[Path]) -> None:
    proc = vigie(Path(str(scenario["home"])), "hash", "--json", str(photos[0]))
    obj = json.loads(proc.stdout.strip().splitlines()[0])
    assert set(obj) >= {"path", "md5", "sha1", "sha256", "pdq", "pdq_quality", "error"}
    assert len(obj["pdq"]) == 64 and obj["pdq_quality"] >= 50 and obj["error"] is None
    assert "pdq_variants" not in obj
    # what a platform that hashes itself sends with a hash-only item: the same record, plus its variants
    proc = vigie(Path(str(scenario["home"])), "hash", "--json", "--variants", str(photos[0]))
    full = json.loads(proc.stdout.strip().splitlines()[0])
    assert list(full)[:-1] == list(obj) and {k: full[k] for k in obj} == obj
    assert {"mirror_lr", "rot90", "cut_top"} <= set(full["pdq_variants"])
    assert all(len(v) == 64 and v != obj["pdq"] for v in full["pdq_variants"].values())
    table = vigie(Path(str(scenario["home"])), "hash", "--variants", str(photos[0]), check=False)
    assert table.returncode == 2 and "use it with --json" in table.stderr and "Traceback" not in table.stderr


def test_match_json_contract(scenario: dict[str, object], tmp_path: Path) -> None:
    inbox, home = Path(str(scenario["inbox"])), Path(str(scenario["home"]))
    flat = tmp_path / "flat.jpg"
    Image.new("RGB", (640, 480), (10, 200, 30)).save(flat, quality=90)
    proc = vigie(home, "match", "--json", str(inbox / "k1_half.jpg"), str(inbox / "zero.png"), str(flat))
    lines = [json.loads(x) for x in proc.stdout.strip().splitlines()]
    assert [list(x) for x in lines] == [["path", "matches", "error", "pdq_quality"]] * 3
    assert lines[0]["pdq_quality"] >= 50 and lines[1]["pdq_quality"] is None
    # a one-colour image is not matched by PDQ distance (PDQ's rule), and both outputs say so
    assert lines[2] == {"path": str(flat), "matches": [], "error": None, "pdq_quality": 0}
    env = {**os.environ, "VIGIE_HOME": str(home), "COLUMNS": "200"}
    env.pop("VIGIE_DATABASE_URL", None)
    table = subprocess.run(
        [sys.executable, "-m", "vigie", "match", str(flat)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "no matches" not in table and "PDQ quality 0 < 50: too flat to match by PDQ distance" in table
    assert lines[0]["matches"] and set(lines[0]["matches"][0]) == {
        "bank",
        "signal",
        "distance",
        "entry_id",
        "labels",
    }
    assert lines[1]["error"] and not lines[1]["matches"]


def test_cli_errors_are_one_line_without_traceback(tmp_path: Path) -> None:
    proc = vigie(
        tmp_path, "bank", "import", "nope", str(REPO / "pyproject.toml"), "--format", "te", check=False
    )
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr and "nope" in proc.stderr
    vigie(tmp_path, "bank", "create", "k")
    missing = tmp_path / "no" / "such" / "folder"
    for args in (
        ("bank", "export", "k", str(missing / "out.csv")),
        ("guard", "--file", str(missing / "texts.jsonl")),
        ("serve", "--port", "99999"),  # was accepted, and uvicorn listened on some other port
    ):
        proc = vigie(tmp_path, *args, check=False)
        said = proc.stdout + proc.stderr
        assert proc.returncode == 2 and "Traceback" not in said, said
        assert str(missing) in said or "65535" in said, said


def test_scan_resumes_after_kill_without_loss_or_double_count(tmp_path: Path, photos: list[Path]) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    base = [small(p, 1024) for p in photos[:6]]
    total = 180
    for i in range(total):
        im = base[i % len(base)].rotate(i % 7, expand=False)
        im.save(inbox / f"f{i:03d}.jpg", quality=90)
    env = {**os.environ, "VIGIE_HOME": str(tmp_path / "home")}
    report = tmp_path / "r.json"
    journal = Path(f"{report}.journal")
    args = [sys.executable, "-m", "vigie", "scan", str(inbox), "--workers", "1", "--report", str(report)]
    proc = subprocess.Popen(
        args, env=env, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    done = 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
        if journal.exists():
            try:
                with sqlite3.connect(journal, timeout=0.1) as db:
                    done = db.execute("SELECT COUNT(*) FROM inputs WHERE done=1").fetchone()[0]
            except sqlite3.Error:
                continue
            if done >= 10:
                os.killpg(proc.pid, signal.SIGKILL)
                break
    proc.wait(timeout=30)
    assert 10 <= done < total, f"scan was not interrupted mid-way (done={done})"
    assert not report.exists()
    resumed = subprocess.run(
        [sys.executable, "-m", "vigie", "scan", "--resume", "--workers", "1", "--report", str(report)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr
    doc = json.loads(report.read_text())
    paths = [r["path"] for r in doc["items"]]
    assert len(paths) == total and len(set(paths)) == total
    assert doc["summary"]["resumed"] is True and doc["summary"]["errors"] == 0


def test_resuming_from_a_damaged_journal_says_so_in_one_line(tmp_path: Path) -> None:
    """A journal overwritten or hit by a disk error was a sqlite3 traceback on --resume."""
    journal = tmp_path / "out.json.journal"
    journal.write_bytes(b"not a database, " * 100)
    r = vigie(tmp_path, "scan", "--resume", "--journal", str(journal), "--report", str(tmp_path / "out.json"),
              check=False)  # fmt: skip
    assert r.returncode == 2 and "Traceback" not in r.stderr + r.stdout
    assert "journal" in r.stdout + r.stderr and "damaged" in r.stdout + r.stderr


def test_a_match_transform_reads_as_words() -> None:
    """Each side of a match's transform in words: the item's variant, then the bank entry's derived hash
    it met (whose names may hold a "+")."""
    from vigie.scan.report import transform_words

    assert transform_words("trim_caption") == "the item's picture under or over its caption band"
    assert transform_words("mirror_lr+rotate_+3") == (
        "the item's mirror image (left–right), against the bank entry's derived rotate_+3"
    )
    assert transform_words("crop_c10").startswith("the bank entry's derived crop_c10")
    assert "or the bank entry's derived cut_top" in transform_words("cut_top")
    assert transform_words("verified").startswith("a second-stage check: keypoints that agree")


def test_verification_evidence_reads_as_words() -> None:
    """A verified match says what the second stage saw: keypoints with the turn and scale, or a weak
    entry's stable bits, and where (a cell of a grid, the mirror image)."""
    from vigie.scan.report import evidence_words

    orb = {"method": "ORB + RANSAC similarity", "inliers": 43, "rotation_deg": 3.9, "scale": 0.944}
    assert evidence_words(orb) == "43 keypoints agree, turned 3.9°, scaled ×0.944"
    assert evidence_words({**orb, "mirrored": True}).endswith(", on its mirror image")
    kept = {
        "method": "PDQ stable bits",
        "stable_bits": 64,
        "differing": 3,
        "view": "cell_2_1",
        "cell": "cell_2_1",
    }
    assert evidence_words(kept) == (
        "3 of its 64 stable bits differ, on picture in row 2, column 1 of its grid "
        "(a contact sheet or collage)"
    )
