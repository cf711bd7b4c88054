"""Provenance analyzers on files written the way each generator writes them (benign stand-in images)."""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from vigie.analyzers import ai_evidence_summary, analyze_item
from vigie.analyzers.genmeta import parse_a1111
from vigie.media import Item
from vigie.settings import MediaLimits

A1111 = (
    "a lighthouse at dusk, oil painting <lora:paintstyle:0.8>\n"
    "Negative prompt: blurry, low quality\n"
    "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1234, Size: 512x512, Model hash: 6ce0161689, "
    'Model: v1-5-pruned-emaonly, Lora hashes: "paintstyle: 0123abcd", Version: v1.6.0'
)
COMFY_PROMPT = {
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd_xl_base_1.0.safetensors"}},
    "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 1024, "height": 1024, "batch_size": 1}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a red bicycle in the rain", "clip": ["10", 1]}},
    "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "watermark", "clip": ["10", 1]}},
    "10": {
        "class_type": "LoraLoader",
        "inputs": {
            "lora_name": "bikes.safetensors",
            "strength_model": 0.7,
            "model": ["4", 0],
            "clip": ["4", 1],
        },
    },
    "3": {
        "class_type": "KSampler",
        "inputs": {
            "seed": 42,
            "steps": 25,
            "cfg": 6.5,
            "sampler_name": "dpmpp_2m",
            "model": ["10", 0],
            "positive": ["6", 0],
            "negative": ["7", 0],
            "latent_image": ["5", 0],
        },
    },
}


def png_with(text: dict[str, str], mode: str = "RGB", itxt: bool = False) -> bytes:
    im = Image.new(mode, (64, 48), (40, 90, 160, 255)[: len(mode)])
    info = PngImagePlugin.PngInfo()
    for k, v in text.items():
        (info.add_itxt if itxt else info.add_text)(k, v)
    buf = io.BytesIO()
    im.save(buf, "PNG", pnginfo=info)
    return buf.getvalue()


def gen_findings(data: bytes) -> list:  # type: ignore[type-arg]
    return [f for f in analyze_item(Item("x", data)) if f.kind == "generator_metadata"]


def test_a1111_parameters_chunk() -> None:
    [f] = gen_findings(png_with({"parameters": A1111}))
    ev = f.evidence
    assert f.ai_generated is True and f.generator == "Automatic1111" and 0.5 < f.confidence < 1
    assert ev["prompt"].startswith("a lighthouse") and ev["negative_prompt"] == "blurry, low quality"
    assert (ev["seed"], ev["steps"], ev["sampler"], ev["model_hash"]) == (
        "1234",
        "20",
        "Euler a",
        "6ce0161689",
    )
    assert {lo["name"] for lo in ev["loras"]} == {"paintstyle"}
    assert "forged" in ev["claim"]


def test_forge_and_sdnext_are_told_apart() -> None:
    forge = parse_a1111(A1111.replace("Version: v1.6.0", "Version: f0.0.17v1.8.0rc"))
    assert forge is not None and forge.generator == "Forge"


def test_comfyui_graph_is_walked_to_the_text_encoders() -> None:
    workflow = {"nodes": [{"id": i} for i in range(7)], "links": []}
    [f] = gen_findings(png_with({"prompt": json.dumps(COMFY_PROMPT), "workflow": json.dumps(workflow)}))
    ev = f.evidence
    assert f.generator == "ComfyUI" and ev["prompt"] == "a red bicycle in the rain"
    assert ev["negative_prompt"] == "watermark" and ev["model"] == "sd_xl_base_1.0.safetensors"
    assert ev["seed"] == 42 and ev["size"] == "1024x1024" and ev["workflow_nodes"] == 7
    assert ev["loras"] == [{"name": "bikes.safetensors", "weight": 0.7, "kind": "lora"}]


def test_invokeai_current_and_legacy() -> None:
    meta = {
        "positive_prompt": "a teapot",
        "negative_prompt": "text",
        "seed": 7,
        "steps": 30,
        "cfg_scale": 7.5,
        "scheduler": "euler",
        "width": 512,
        "height": 768,
        "model": {"name": "sd-1.5", "hash": "abc"},
        "loras": [{"model": {"name": "ceramic"}, "weight": 0.6}],
        "app_version": "4.2.0",
    }
    [f] = gen_findings(png_with({"invokeai_metadata": json.dumps(meta)}))
    assert (
        f.generator == "InvokeAI" and f.evidence["prompt"] == "a teapot" and f.evidence["size"] == "512x768"
    )
    legacy = {
        "model": "stable diffusion",
        "model_weights": "sd-1.4",
        "image": {
            "prompt": [{"prompt": "a kite"}],
            "seed": 9,
            "steps": 50,
            "cfg_scale": 7.5,
            "sampler": "k_lms",
        },
    }
    [g] = gen_findings(png_with({"sd-metadata": json.dumps(legacy)}))
    assert g.evidence["prompt"] == "a kite" and g.evidence["model"] == "sd-1.4"
    [d] = gen_findings(png_with({"Dream": '"a boat on a lake" -s 50 -S 12345 -W 512 -H 512 -C 7.5 -A k_lms'}))
    assert d.evidence["prompt"] == "a boat on a lake" and d.evidence["seed"] == "12345"


def test_novelai_chunks_and_stealth_alpha_copy() -> None:
    comment = {
        "prompt": "a castle on a hill",
        "uc": "lowres",
        "steps": 28,
        "seed": 5,
        "sampler": "k_euler",
        "scale": 5.0,
        "width": 832,
        "height": 1216,
    }
    chunks = {
        "Software": "NovelAI",
        "Source": "NovelAI Diffusion V3",
        "Description": "a castle on a hill",
        "Comment": json.dumps(comment),
        "Title": "AI generated image",
    }
    [f] = gen_findings(png_with(chunks))
    assert f.generator == "NovelAI" and f.evidence["negative_prompt"] == "lowres"

    # the same metadata hidden in the alpha channel's low bits, gzip-compressed, column by column
    [s] = gen_findings(stealth_png(chunks))
    assert s.generator == "NovelAI" and s.evidence["found_in"] == "alpha-channel stealth metadata"
    assert s.evidence["prompt"] == "a castle on a hill"


def stealth_png(chunks: dict[str, str], size: tuple[int, int] = (96, 64)) -> bytes:
    """A PNG whose alpha channel's low bits carry ``chunks`` as NovelAI writes them (gzip, by column)."""
    payload = gzip.compress(json.dumps(chunks).encode())
    bits = np.unpackbits(np.frombuffer(b"stealth_pngcomp", np.uint8))
    bits = np.concatenate([bits, np.array([int(b) for b in f"{len(payload) * 8:032b}"], np.uint8)])
    bits = np.concatenate([bits, np.unpackbits(np.frombuffer(payload, np.uint8))])
    w, h = size
    alpha = np.full(w * h, 254, np.uint8)
    alpha[: bits.size] |= bits
    rgba = np.zeros((h, w, 4), np.uint8)
    rgba[..., :3] = (30, 120, 60)
    rgba[..., 3] = alpha.reshape(w, h).T
    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, "PNG")
    return buf.getvalue()


def test_analyzers_never_decode_what_hashing_refused() -> None:
    """An image over the pixel limit (a decompression bomb, to hashing) is refused once, and no analyzer
    decodes its pixels afterwards: its stealth metadata, read from every alpha pixel, is not looked for.
    Under the limit the same file is read whole. Formats vigie does not read are opened by none of them."""
    from vigie.analyzers import default_analyzers
    from vigie.media import image_header
    from vigie.media.image import LIMITS
    from vigie.pipeline import PipelineContext, process_item

    data = stealth_png({"Software": "NovelAI", "Comment": json.dumps({"prompt": "a castle"})}, (1100, 1000))
    tight = PipelineContext(limits=MediaLimits(max_pixels=1_000_000), analyzers=default_analyzers())
    refused = process_item(Item("big.png", data, "image/png"), tight)
    assert (refused.error or "").startswith("bomb:")
    assert [f["kind"] for f in refused.findings] == []
    read = process_item(Item("big.png", data, "image/png"), PipelineContext(analyzers=default_analyzers()))
    assert read.error is None
    assert [f["evidence"]["found_in"] for f in read.findings] == ["alpha-channel stealth metadata"]
    for fmt in ("PPM", "TGA", "ICO"):  # Pillow reads them; vigie does not
        buf = io.BytesIO()
        Image.new("RGB", (64, 64), (200, 10, 10)).save(buf, fmt)
        item = Item(f"x.{fmt.lower()}", buf.getvalue())
        assert image_header(item) is None and analyze_item(item) == []
    assert image_header(Item("x.png", data)) is not None
    # an item hashing opened answers under hashing's limits, an operator's own, not the defaults
    tight = Item("x.png", data)
    tight.decoded[LIMITS] = MediaLimits(max_pixels=1_000_000)
    assert image_header(tight) is None


def test_swarmui_fooocus_and_midjourney() -> None:
    swarm = {
        "sui_image_params": {
            "prompt": "a fox",
            "negativeprompt": "",
            "model": "flux",
            "seed": 3,
            "steps": 20,
            "cfgscale": 1,
            "width": 1024,
            "height": 1024,
            "swarm_version": "0.9",
        }
    }
    [s] = gen_findings(png_with({"parameters": json.dumps(swarm)}))
    assert s.generator == "SwarmUI" and s.evidence["prompt"] == "a fox"
    fooocus = {
        "Prompt": "a tram",
        "Negative Prompt": "",
        "Base Model": "juggernautXL",
        "Seed": 11,
        "Steps": 30,
        "Version": "Fooocus v2.5",
    }
    [fo] = gen_findings(png_with({"parameters": json.dumps(fooocus), "fooocus_scheme": "fooocus"}))
    assert fo.generator == "Fooocus" and fo.evidence["model"] == "juggernautXL"
    desc = "a paper boat --ar 3:2 --v 6 Job ID: 1b2c3d4e-1111-2222-3333-444455556666"
    [mj] = gen_findings(png_with({"Description": desc, "Author": "someone"}, itxt=True))
    assert mj.generator == "Midjourney" and mj.evidence["settings"]["job_id"].startswith("1b2c3d4e")


@pytest.mark.parametrize("encoding", ["UNICODE-BE", "UNICODE-LE", "ASCII"])
def test_jpeg_exif_user_comment(encoding: str) -> None:
    body = {
        "UNICODE-BE": b"UNICODE\x00" + A1111.encode("utf-16-be"),
        "UNICODE-LE": b"UNICODE\x00" + A1111.encode("utf-16-le"),
        "ASCII": b"ASCII\x00\x00\x00" + A1111.encode(),
    }[encoding]
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9286] = body
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 100, 50)).save(buf, "JPEG", exif=exif)
    [f] = gen_findings(buf.getvalue())
    assert f.evidence["found_in"] == "EXIF UserComment" and f.evidence["seed"] == "1234"


def test_iptc_digital_source_type_and_ai_fields() -> None:
    xmp = (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" '
        'Iptc4xmpExt:DigitalSourceType="http://cv.iptc.org/newscodes/digitalsourcetype/'
        'trainedAlgorithmicMedia" '
        'Iptc4xmpExt:AISystemUsed="ExampleGen" Iptc4xmpExt:AISystemVersionUsed="2.1"/></rdf:RDF></x:xmpmeta>'
    )
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 10, 10)).save(buf, "JPEG", xmp=xmp.encode())
    found = [f for f in analyze_item(Item("x.jpg", buf.getvalue())) if f.kind == "digital_source_type"]
    assert len(found) == 1 and found[0].ai_generated is True and found[0].generator == "ExampleGen"
    assert found[0].evidence["AISystemVersionUsed"] == "2.1"
    assert "trainedAlgorithmicMedia" in (ai_evidence_summary(found) or "")


def test_benign_photos_carry_no_ai_generation_evidence(photos: list[Path]) -> None:
    for p in photos:
        found = analyze_item(Item(str(p), p.read_bytes()))
        assert not [f for f in found if f.ai_generated], p.name
        assert not [f for f in found if f.kind == "analyzer_error"], p.name


@pytest.mark.parametrize(
    "chunks",
    [
        {"parameters": "Steps: x, Seed"},
        {"prompt": "{not json"},
        {
            "prompt": json.dumps({"1": {"class_type": "KSampler", "inputs": {"positive": ["1", 0]}}})
        },  # a cycle
        {"invokeai_metadata": "[1, 2"},
        {"Comment": "{", "Software": "NovelAI"},
        {"parameters": "\x00\xff" * 1000},
    ],
)
def test_forged_or_broken_metadata_never_crashes(chunks: dict[str, str]) -> None:
    found = analyze_item(Item("x.png", png_with(chunks)))
    assert not [f for f in found if f.kind == "analyzer_error"]


def test_inspect_json_contract(tmp_path: Path) -> None:
    p = tmp_path / "gen.png"
    p.write_bytes(png_with({"parameters": A1111}))
    (tmp_path / "empty.png").write_bytes(b"")
    proc = subprocess.run(
        [sys.executable, "-m", "vigie", "inspect", "--json", str(p), str(tmp_path / "empty.png")],
        capture_output=True,
        text=True,
        env={**os.environ, "VIGIE_HOME": str(tmp_path / "h")},
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    recs = {Path(r["path"]).name: r for r in map(json.loads, proc.stdout.splitlines())}
    assert set(recs["gen.png"]) == {"path", "findings", "error"}
    f = recs["gen.png"]["findings"][0]
    assert set(f) == {"analyzer", "kind", "ai_generated", "generator", "confidence", "evidence"}
    assert f["generator"] == "Automatic1111" and f["ai_generated"] is True
    assert (
        recs["empty.png"]["findings"] == [] and recs["empty.png"]["error"] is None
    )  # nothing to read, no claim


def _reference_encoder():  # type: ignore[no-untyped-def]
    """invisible-watermark's dwtDct encoder, loaded alone (the package imports torch at module level)."""
    import importlib.util
    import sysconfig

    path = Path(sysconfig.get_paths()["purelib"]) / "imwatermark" / "maxDct.py"
    if not path.exists():
        pytest.skip("invisible-watermark not installed (make test installs it)")
    spec = importlib.util.spec_from_file_location("_imwatermark_maxdct", path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.EmbedMaxDct


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(arr)).save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def test_sd_watermarks_embedded_by_the_reference_encoder_are_found(photos: list[Path]) -> None:
    from vigie.analyzers.watermark import MARKS, SDWatermarkAnalyzer

    embed = _reference_encoder()
    rgb = np.asarray(Image.open(photos[3]).convert("RGB").resize((768, 512)))
    analyzer = SDWatermarkAnalyzer()
    # SDXL as diffusers does it (RGB array into the BGR encoder); SD 1.x like the reference scripts (true BGR)
    sdxl = embed(list(MARKS["Stable Diffusion XL"]), wmLen=48).encode(rgb.copy())
    sd1 = embed(list(MARKS["Stable Diffusion 1.x"]), wmLen=136).encode(rgb[:, :, ::-1].copy())[:, :, ::-1]
    for arr, name in ((sdxl, "Stable Diffusion XL"), (sd1, "Stable Diffusion 1.x")):
        [f] = analyzer.analyze(Item("x.png", _png(arr)))
        assert f.generator == name and f.ai_generated is True and f.confidence > 0.999
        assert f.evidence["agreement"] >= 0.9
    buf = io.BytesIO()
    Image.fromarray(sdxl).save(buf, "JPEG", quality=95)
    assert analyzer.analyze(Item("x.jpg", buf.getvalue())) == []  # JPEG erases the mark: not even decoded


def test_watermark_kernel_reads_the_blocks_as_the_numpy_form_does(photos: list[Path]) -> None:
    from vigie.analyzers.watermark import _both_block_scores, block_scores

    rng = np.random.default_rng(3)
    arrays = [
        rng.integers(0, 256, shape, dtype=np.uint8) for shape in ((8, 8, 3), (67, 131, 3), (300, 209, 3))
    ]
    arrays += [np.asarray(Image.open(p).convert("RGB")) for p in photos[:4]]
    for a in arrays:
        as_rgb, as_bgr = _both_block_scores(a)
        assert np.array_equal(as_rgb, block_scores(a, False)) and np.array_equal(
            as_bgr, block_scores(a, True)
        )


def test_a_png_is_decoded_once_for_hashing_and_the_watermark_check(photos: list[Path]) -> None:
    from vigie.analyzers.watermark import MARKS, SDWatermarkAnalyzer
    from vigie.pipeline import PipelineContext, process_item
    from vigie.signals import hash_item

    rgb = np.asarray(Image.open(photos[3]).convert("RGB").resize((768, 512)))
    marked = _reference_encoder()(list(MARKS["Stable Diffusion XL"]), wmLen=48).encode(rgb.copy())
    item = Item("x.png", _png(marked), "image/png")
    hash_item(item, MediaLimits())
    kept = item.decoded["rgb"]
    assert np.array_equal(kept, marked) and not kept.flags.writeable
    res = process_item(
        Item("x.png", _png(marked), "image/png"), PipelineContext(analyzers=[SDWatermarkAnalyzer()])
    )
    assert [f["generator"] for f in res.findings] == ["Stable Diffusion XL"]
    big = io.BytesIO()
    Image.open(photos[0]).save(big, "JPEG")  # a large JPEG is hashed from a reduced decode: nothing kept
    jpeg = Item("x.jpg", big.getvalue(), "image/jpeg")
    hash_item(jpeg, MediaLimits())
    assert "rgb" not in jpeg.decoded


def test_unmarked_photos_never_read_as_marked(photos: list[Path]) -> None:
    from vigie.analyzers.watermark import SDWatermarkAnalyzer

    analyzer = SDWatermarkAnalyzer()
    for p in photos:
        with Image.open(p) as im:
            im = im.convert("RGB")
            im.thumbnail((1024, 1024))
        for tile in (im, im.crop((0, 0, im.width // 2, im.height // 2))):
            assert analyzer.analyze(Item("x.png", _png(np.asarray(tile)))) == [], p.name
