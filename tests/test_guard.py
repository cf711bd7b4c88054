"""The generation guard, its pipeline adapter, `vigie guard` and `vigie model-scan`, on real files."""

from __future__ import annotations

import io
import json
import pickle
import struct
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from vigie.banks import BankStore, EntryIn
from vigie.banks.matcher import Matcher
from vigie.guard import Guard, GuardedPipeline, GuardRefusal, scan_model
from vigie.signals import hash_path
from vigie.store import open_db
from vigie.textrisk import TextRisk

VIGIE = [str(Path(sys.executable).parent / "vigie")]


@pytest.fixture(scope="module")
def lexical() -> TextRisk:
    return TextRisk(semantic=None)


def test_check_prompt_decides_with_reasons(lexical: TextRisk) -> None:
    g = Guard(textrisk=lexical)
    d = g.check_prompt("nude, explicit", negative_prompt="adult, mature, wrinkles")
    assert d.action == "block" and d.label == "sexual_minors"
    assert all(r["producer"].startswith("vigie.textrisk") for r in d.reasons)
    assert "nude" not in json.dumps(d.to_json(redact=True))
    assert g.check_prompt("a lighthouse on a cliff at dawn").allowed


def _bank_with(db_url: str, photo: Path) -> Matcher:
    store = BankStore(open_db(db_url))
    store.create_bank("known")
    [sig] = list(hash_path(photo, Guard(textrisk=TextRisk(semantic=None)).limits))
    store.add_entries(
        "known",
        [EntryIn(st, getattr(sig, st), external_id=photo.name) for st in ("sha256", "pdq")],
    )
    return Matcher.open(store.db)


def test_check_image_blocks_known_material(db_url: str, photos: list[Path], lexical: TextRisk) -> None:
    g = Guard(textrisk=lexical, matcher=_bank_with(db_url, photos[0]))
    assert g.check_image(photos[0]).action == "block"
    im = Image.open(photos[0]).convert("RGB")
    im.thumbnail((640, 640))
    d = g.check_image(np.asarray(im))  # re-encoded pixels: a PDQ match, not an exact one
    assert d.action == "block" and d.reasons[0]["signal"] == "pdq"
    assert g.check_image(photos[1]).action == "allow"
    assert g.check_image(b"not an image").action == "review"


class Out:
    def __init__(self, images: list[Image.Image]) -> None:
        self.images = images


class FakePipeline:
    """Stands in for a diffusers pipeline: returns benign photos, records what it was asked."""

    def __init__(self, images: list[Image.Image]) -> None:
        self.images = images
        self.calls: list[dict[str, Any]] = []
        self.device = "cpu"

    def __call__(self, prompt: Any = None, **kwargs: Any) -> Any:
        self.calls.append({"prompt": prompt, **kwargs})

        return Out([im.copy() for im in self.images])


def test_adapter_refuses_before_generation_and_screens_after(
    db_url: str, photos: list[Path], lexical: TextRisk
) -> None:
    known = Image.open(photos[0]).convert("RGB")
    known.thumbnail((512, 512))
    other = Image.open(photos[1]).convert("RGB")
    other.thumbnail((512, 512))
    pipe = FakePipeline([known, other])
    guarded = GuardedPipeline(pipe, Guard(textrisk=lexical, matcher=_bank_with(db_url, photos[0])))
    with pytest.raises(GuardRefusal) as exc:
        guarded(prompt="collégienne nue")
    assert exc.value.decision.label == "sexual_minors" and pipe.calls == []  # no compute spent
    out = guarded(prompt="a quiet harbour", negative_prompt="blurry", num_inference_steps=2)
    assert pipe.calls[-1]["num_inference_steps"] == 2 and guarded.device == "cpu"
    assert [d.action for d in out.guard_decisions] == ["block", "allow"]
    assert np.asarray(out.images[0]).max() == 0 and np.asarray(out.images[1]).max() > 0


def test_guard_cli_single_and_batch(tmp_path: Path) -> None:
    one = subprocess.run([*VIGIE, "guard", "nude 12yo", "--json"], capture_output=True, text=True)
    assert one.returncode == 1 and json.loads(one.stdout)["action"] == "block"
    ok = subprocess.run([*VIGIE, "guard", "a lighthouse at dawn"], capture_output=True, text=True)
    assert ok.returncode == 0
    lines = [
        {"id": "1", "text": "collégienne nue", "kind": "tags"},
        {"id": "2", "text": "kids at the beach", "kind": "caption"},
        {"id": "3", "text": "nude, explicit", "negative": "adult, mature body"},
        {"id": "4", "text": "x", "kind": "bogus"},
    ]
    f = tmp_path / "texts.jsonl"
    f.write_text("\n".join(json.dumps(x) for x in lines) + "\n{broken\n", encoding="utf-8")
    res = subprocess.run([*VIGIE, "guard", "--file", str(f), "--json"], capture_output=True, text=True)
    rows = [json.loads(x) for x in res.stdout.splitlines()]
    assert res.returncode == 2  # bad lines reported, good lines still answered
    assert [r.get("action") for r in rows[:3]] == ["block", "allow", "block"]
    assert set(rows[0]) == {"id", "score", "label", "action"}
    assert rows[3]["id"] == "4" and "line 4" in rows[3]["error"] and "line 5" in rows[4]["error"]


def _safetensors(path: Path, meta: dict[str, str], header_len: int | None = None) -> Path:
    header = {
        "__metadata__": meta,
        "lora_up.weight": {"dtype": "F16", "shape": [4, 4], "data_offsets": [0, 32]},
    }
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", header_len or len(raw)) + raw + bytes(32))
    return path


def test_model_scan_reads_kohya_metadata(tmp_path: Path, lexical: TextRisk) -> None:
    benign = _safetensors(
        tmp_path / "lighthouse.safetensors",
        {
            "ss_output_name": "lighthouse_style",
            "ss_sd_model_name": "v1-5-pruned.safetensors",
            "ss_tag_frequency": json.dumps({"10_lighthouse": {"lighthouse": 40, "sea": 30, "cliff": 12}}),
        },
    )
    r = scan_model(benign, lexical)
    assert (r.format, r.safe_format, r.action, r.tensors) == ("safetensors", True, "allow", 1)
    assert r.top_tags[0] == ("lighthouse", 40) and r.dataset_dirs == ["10_lighthouse"]
    risky = _safetensors(
        tmp_path / "x.safetensors",
        {"ss_tag_frequency": json.dumps({"5_set": {"loli": 20, "nude": 18, "solo": 30}})},
    )
    r = scan_model(risky, lexical)
    assert r.action == "block" and r.label == "sexual_minors"
    assert any(x.get("where") == "training_tags" for x in r.reasons)


def test_model_scan_bad_headers(tmp_path: Path, lexical: TextRisk) -> None:
    giga = _safetensors(tmp_path / "giga.safetensors", {}, header_len=1 << 30)
    assert "refused without reading" in (scan_model(giga, lexical).error or "")
    liar = _safetensors(tmp_path / "liar.safetensors", {}, header_len=10_000)
    assert "file holds" in (scan_model(liar, lexical).error or "")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(struct.pack("<Q", 5) + b"{nope")
    assert (scan_model(junk, lexical).error or "").startswith("malformed: header is not valid JSON")
    short = tmp_path / "short.safetensors"
    short.write_bytes(b"\x01")
    assert scan_model(short, lexical).error


class _Boom:
    """A pickle payload that would create a file if anything ever unpickled it."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (Path(self.marker),))


def test_pickle_checkpoints_are_never_loaded(tmp_path: Path, lexical: TextRisk) -> None:
    marker = tmp_path / "executed"
    ckpt = tmp_path / "model.ckpt"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("archive/data.pkl", pickle.dumps({"state_dict": _Boom(str(marker))}))
    ckpt.write_bytes(buf.getvalue())
    r = scan_model(ckpt, lexical)
    assert not marker.exists()
    assert r.format == "pytorch-zip (pickle)" and not r.safe_format and r.action == "review"
    assert "pathlib.Path.touch" in r.unsafe_imports
    cli = subprocess.run([*VIGIE, "model-scan", str(ckpt), "--json"], capture_output=True, text=True)
    assert cli.returncode == 1 and "pathlib.Path.touch" in json.loads(cli.stdout)["unsafe_imports"]
    assert not marker.exists()


def test_a_damaged_zip_checkpoint_is_reported_malformed(tmp_path: Path) -> None:
    """Found by mutating checkpoints: zipfile's EOFError and NotImplementedError (an unknown compression
    method, a version from the future) escaped `vigie model-scan` as a traceback, and the files after it went
    unscanned."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("archive/data.pkl", pickle.dumps({"epoch": 3}, protocol=2))
    data = bytearray(buf.getvalue())
    for sig, at in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):  # compression method 99, local and central
        i = data.find(sig)
        data[i + at : i + at + 2] = struct.pack("<H", 99)
    p = tmp_path / "model.pt"
    p.write_bytes(bytes(data))
    report = scan_model(p)
    assert report.error is not None and report.error.startswith("malformed: damaged zip checkpoint")
