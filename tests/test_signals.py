"""PDQ conformance with Meta's reference (pdqhash), dihedral variants, crypto hashes, the hash contract."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import pdqhash
import pytest
from PIL import Image

from vigie.media import Item
from vigie.settings import MediaLimits
from vigie.signals import hash_item
from vigie.signals.pdq import DIHEDRAL_NAMES, _coefficients, dihedral_hexes, distance, hash_array, hash_image


def reference(im: Image.Image) -> tuple[str, int]:
    """What python-threatexchange and perception do: pdqhash on the fully decoded RGB image."""
    bits, quality = pdqhash.compute(np.asarray(im.convert("RGB")))
    return np.packbits(bits).tobytes().hex(), int(quality)


def test_same_pixels_give_the_reference_hash_bit_for_bit(photos: list[Path]) -> None:
    for p in photos[:6]:
        with Image.open(p) as im:
            im = im.convert("RGB")
            im.thumbnail((700, 700))
        arr = np.asarray(im)
        ours = hash_array(arr)
        ref_hex, ref_q = reference(im)
        assert distance(ours.hex, ref_hex) <= 1, p.name
        assert ours.quality == ref_q


def test_fast_decode_path_is_conformant_on_every_shared_photo(photos: list[Path]) -> None:
    """PDQ's rule for other implementations: ≤ 10 bits from the reference when quality ≥ 80."""
    checked = 0
    for p in photos:
        with Image.open(p) as im:
            ours, _ = hash_image(im)
        with Image.open(p) as im:
            ref_hex, ref_q = reference(im)
        if ref_q >= 80:
            assert distance(ours.hex, ref_hex) <= 10, p.name
            assert abs(ours.quality - ref_q) <= 2
            checked += 1
    assert checked >= 15


def test_hashing_a_query_from_its_luma_gives_the_same_bits(photos: list[Path]) -> None:
    """A query's hashes are taken from its luma, converted once: the same PDQ, quality and trims as hashing
    the RGB, for lossless images and for JPEGs too flat for the reduced decode (decoded whole)."""
    from vigie.signals.borders import trimmed_hashes
    from vigie.signals.pdq import hash_image_pixels

    flat_jpeg = Image.new("RGB", (900, 600), (90, 120, 150))
    flat_jpeg.paste(Image.new("RGB", (300, 200), (96, 124, 152)), (100, 100))
    for im in [*(Image.open(p).convert("RGB").resize((640, 420)) for p in photos[:4]), flat_jpeg]:
        for fmt in ("PNG", "JPEG"):
            buf = io.BytesIO()
            im.save(buf, fmt)
            with Image.open(buf) as a:
                plain, _, rgb, none = hash_image_pixels(a)
            with Image.open(buf) as b:
                query, variants, px, gray = hash_image_pixels(b, dihedral=True)
            assert none is None and gray is not None and variants and variants[0] == query.hex
            assert query == plain
            if rgb is not None and rgb.ndim == 3:  # decoded whole: the luma hashed is that RGB's
                assert gray.dtype == np.float32 and gray.shape == rgb.shape[:2]
                assert px is not None and trimmed_hashes(px, im.size, gray) == trimmed_hashes(rgb, im.size)
    big = np.zeros((4100, 4000, 3), np.uint8)  # past LUMA_MAX_PIXELS the RGB stands in for its luma
    big[1000:3000, 1000:3000] = 200
    buf = io.BytesIO()
    Image.fromarray(big).save(buf, "PNG", compress_level=1)
    with Image.open(buf) as c:
        query, _, px, gray = hash_image_pixels(c, dihedral=True)
    assert gray is px and query.quality > 0


def test_dihedral_variants_match_transformed_images(photos: list[Path]) -> None:
    with Image.open(photos[5]) as im:
        im = im.convert("RGB")
        im.thumbnail((600, 600))
    coef, _ = _coefficients(np.asarray(im))
    variants = dict(zip(DIHEDRAL_NAMES, dihedral_hexes(coef), strict=True))
    T = Image.Transpose
    for name, op in [
        ("mirror_lr", T.FLIP_LEFT_RIGHT),
        ("mirror_tb", T.FLIP_TOP_BOTTOM),
        ("rot180", T.ROTATE_180),
        ("transpose", T.TRANSPOSE),
        ("rot90", T.ROTATE_90),
        ("rot270", T.ROTATE_270),
        ("transverse", T.TRANSVERSE),
    ]:
        actual = hash_array(np.ascontiguousarray(np.asarray(im.transpose(op)))).hex
        dists = {k: distance(actual, v) for k, v in variants.items()}
        assert min(dists, key=dists.__getitem__) == name
        assert dists[name] <= 31  # a flipped or rotated copy still matches at the production threshold


def test_flat_image_has_low_quality() -> None:
    h = hash_array(np.full((300, 400, 3), 127, np.uint8))
    assert h.quality < 50


def test_hash_item_contract_and_crypto(photos: list[Path]) -> None:
    data = photos[0].read_bytes()
    sig = hash_item(Item(str(photos[0]), data, "image/jpeg"), MediaLimits(), dihedral=True)
    rec = sig.to_json()
    assert list(rec) == ["path", "md5", "sha1", "sha256", "pdq", "pdq_quality", "error"]
    assert rec["md5"] == hashlib.md5(data).hexdigest() and rec["sha256"] == hashlib.sha256(data).hexdigest()
    assert len(rec["pdq"]) == 64 and rec["pdq_quality"] >= 80 and rec["error"] is None
    assert sig.pdq_dihedral is not None and sig.pdq_dihedral[0] == sig.pdq and len(sig.pdq_dihedral) == 8


@pytest.mark.parametrize("size", [(1, 1), (3, 500), (64, 64), (5000, 9)])
def test_tiny_and_odd_sizes_hash(size: tuple[int, int]) -> None:
    buf = io.BytesIO()
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(buf, "PNG")
    sig = hash_item(Item("x.png", buf.getvalue(), "image/png"), MediaLimits())
    assert sig.error is None and sig.pdq is not None
    with Image.open(io.BytesIO(buf.getvalue())) as im:
        ref_hex, _ = reference(im)
    assert distance(sig.pdq, ref_hex) <= 2
