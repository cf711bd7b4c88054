"""`make demo`: build a bank from benign stand-in photos, scan transformed copies, write the HTML report.

The photos in ../shared/data/photos (ordinary wallpapers) play "known material". Without them, abstract
generated patterns stand in. Every step runs the real `vigie` command, printed before it runs.
`make demo-serve` (``--serve``) then creates an API key and starts `vigie serve` on loopback over the demo
bank, with the requests to try printed first.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import shlex
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageOps, PngImagePlugin

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ROOT.parent / "shared" / "data" / "photos"
VIGIE = [sys.executable, "-m", "vigie"]


def stand_ins() -> list[Image.Image]:
    """Benign images: the shared photos, or abstract patterns when they are not there."""
    files = sorted(PHOTOS.glob("*.jpg"))
    if files:
        images = []
        for f in files:
            with Image.open(f) as im:
                im.draft("RGB", (1600, 1600))
                images.append(im.convert("RGB"))
        return images
    rng = np.random.default_rng(7)
    images = []
    for _ in range(16):
        base = rng.integers(0, 255, (12, 16, 3), dtype=np.uint8)
        images.append(Image.fromarray(base).resize((1024, 768), Image.Resampling.BICUBIC))
    return images


def save(im: Image.Image, path: Path, quality: int = 90) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, "JPEG", quality=quality)


def env_for(out: Path) -> dict[str, str]:
    return {**os.environ, "VIGIE_HOME": str(out / "vigie-data")}


def run(out: Path, *args: str, capture: bool = False) -> str:
    """Run one `vigie` command, shown before it runs; with ``capture`` its standard output is returned."""
    print(f"\n$ vigie {' '.join(shlex.quote(a) for a in args)}", flush=True)
    pipe = subprocess.PIPE if capture else None
    done = subprocess.run([*VIGIE, *args], check=True, env=env_for(out), stdout=pipe, text=True)
    return done.stdout or ""


def serve(out: Path, port: int) -> None:
    """A key for the demo service, the requests to try, then `vigie serve` in the foreground."""
    made = run(
        out, "keys", "create", "--scope", "lookup", "--scope", "items:write", "--name", "demo", capture=True
    )
    key = made.strip().splitlines()[-1]
    known = sorted((out / "known").glob("*.jpg"))[0]
    upload = sorted((out / "inbox").glob("upload_*_mirrored.jpg"))[0]
    base = f"http://127.0.0.1:{port}"
    md5 = hashlib.md5(known.read_bytes()).hexdigest()
    print(
        f"""
The demo service: bank demo-known, API key {key} (scopes lookup, items:write).
Try, from another terminal:
  curl -s -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' \\
       -d '{{"md5": ["{md5}"]}}' {base}/v1/lookup
  curl -s -H 'Authorization: Bearer {key}' -F file=@{upload} {base}/v1/items
  open {base}/docs for the OpenAPI pages. Ctrl-C stops the server.""",
        flush=True,
    )
    args = ["serve", "--host", "127.0.0.1", "--port", str(port)]
    print(f"\n$ vigie {' '.join(args)}", flush=True)
    os.execve(sys.executable, [*VIGIE, *args], env_for(out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "demo" / "out", help="where the demo writes")
    ap.add_argument("--serve", action="store_true", help="then start vigie serve over the demo bank")
    ap.add_argument("--port", type=int, default=8000)
    args = ap.parse_args()
    out: Path = args.out
    shutil.rmtree(out, ignore_errors=True)
    images = stand_ins()
    known, unrelated = images[: len(images) // 2], images[len(images) // 2 :]
    known_dir, inbox = out / "known", out / "inbox"
    for i, im in enumerate(known):
        save(im, known_dir / f"known_{i:02d}.jpg", quality=92)

    # The folder to scan: transformed copies of known images, unrelated photos, an archive, broken files.
    transforms = {
        "recompressed_q50": lambda im: im,
        "half_size": lambda im: im.resize((im.width // 2, im.height // 2)),
        "brighter": lambda im: ImageEnhance.Brightness(im).enhance(1.3),
        "grayscale": lambda im: ImageOps.grayscale(im).convert("RGB"),
        "mirrored": ImageOps.mirror,
    }
    for i, im in enumerate(known):
        name, fn = list(transforms.items())[i % len(transforms)]
        save(fn(im), inbox / f"upload_{i:02d}_{name}.jpg", quality=50 if name == "recompressed_q50" else 85)
    for i, im in enumerate(unrelated):
        save(im, inbox / f"holiday_{i:02d}.jpg")
    save(known[0], inbox / "duplicates" / "copy_a.jpg")
    shutil.copy(inbox / "duplicates" / "copy_a.jpg", inbox / "duplicates" / "copy_b.jpg")
    buf = io.BytesIO()
    known[1].resize((800, 450)).save(buf, "JPEG", quality=80)
    with zipfile.ZipFile(inbox / "forum_dump.zip", "w") as zf:
        zf.writestr("thread1/img_001.jpg", buf.getvalue())
        zf.writestr("../escape.jpg", buf.getvalue())
    with tarfile.open(inbox / "backup.tar.gz", "w:gz") as tf:
        info = tarfile.TarInfo("old/photo.jpg")
        info.size = len(buf.getvalue())
        tf.addfile(info, io.BytesIO(buf.getvalue()))
    # a file whose own metadata claims it was generated (Automatic1111 writes this PNG text chunk)
    info = PngImagePlugin.PngInfo()
    info.add_text(
        "parameters",
        "a lighthouse at dusk, oil painting\nNegative prompt: blurry\n"
        "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1234, Size: 512x512, Model: v1-5-pruned-emaonly",
    )
    unrelated[0].resize((512, 384)).save(inbox / "generated_lighthouse.png", pnginfo=info)
    (inbox / "broken.jpg").write_bytes((known_dir / "known_00.jpg").read_bytes()[:5000])
    (inbox / "empty.png").write_bytes(b"")
    (inbox / "notes.txt").write_text("not an image\n")

    run(out, "bank", "create", "demo-known", "--description", "benign stand-ins playing known material")
    run(out, "bank", "add", "demo-known", str(known_dir), "--category", "demo", "--source", "make demo")
    run(out, "bank", "list")
    run(out, "scan", str(inbox), "--report", str(out / "report.html"), "--report", str(out / "report.json"))
    print(f"\nOpen {out / 'report.html'} in a browser to read the report.")
    if args.serve:
        serve(out, args.port)


if __name__ == "__main__":
    main()
