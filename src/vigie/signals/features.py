"""Local features (ORB) and their geometric verification: the second stage for copies PDQ alone misses.

Tilted, overlaid or heavily cropped copies land far from the original in PDQ space, but their keypoints still
line up under one similarity transform. A bank entry made from media keeps up to ``MAX_KEYPOINTS`` ORB
keypoints (32-byte descriptors and coordinates, never pixels); a query near such an entry in a wide PDQ band
is promoted to a match only when RANSAC finds enough inliers under a plausible rotation and scale, and the
match carries that evidence. Needs OpenCV (``vigie[verify]``); without it the stage is skipped.
"""

from __future__ import annotations

import base64
import math
import struct
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

MAX_KEYPOINTS = 250
QUERY_KEYPOINTS = 1000
"""Keypoints of a query's second look (:func:`extract_spread`), when its usual ones verify no candidate.
Never stored."""
SPREAD_GRID = 4
"""The second look keeps at most QUERY_KEYPOINTS / SPREAD_GRID² keypoints per cell of this grid."""
SIDE = 512  # features are taken on the image scaled to this long side
MIN_INLIERS = 25
FAST_THRESHOLDS = (10, 5, 2)
"""FAST corner thresholds tried in turn until ENOUGH_KEYPOINTS are found: smooth photos (sky, water, a
gradient) give a dozen corners at 10, too few to verify a tilt; at 2 they give a hundred or more."""
ENOUGH_KEYPOINTS = 150
LAST_RESORT_THRESHOLD = 1
"""Tried only when threshold 2 leaves too few keypoints to verify anything (under 2 × MIN_INLIERS): at 1,
JPEG noise makes corners too, which crowd out real ones in a picture that has a hundred (a pale graphic's
4° tilt stopped verifying), but give a washed-out crop enough to verify (crop 10%: 3 more of 96)."""
MIN_MODEL_INLIERS = 12
"""Fewest RANSAC inliers from which a model is checked against every keypoint (``_carried``): repeated
texture (string, clouds) makes the ratio test drop true pairs, so a true 2–4° tilt can reach 18–24
inliers, while a model fitted to chance agreements of two unrelated pictures carries over at most 8
keypoints at this floor (measured on the benchmark's photos: every query against every other photo), 14
with the spread look and models that keep a low share of pairs (see MIN_INLIER_RATIO)."""
CARRIED_MAX_HAMMING = 56
"""Descriptor distance (of 256 bits) within which a keypoint the model carries onto a known one counts;
unrelated ORB descriptors lie near 128."""
MIN_INLIER_RATIO = 0.3
"""Share of the ratio-tested pairs RANSAC must keep for its own inliers to count. Below it (a textured tile
turned 4° and cropped: 12 of 51 pairs, on the right model), the model must carry MIN_INLIERS keypoints
(``_carried``) instead: measured on the robustness benchmark's photos, every look of 880 tilted, cropped,
overlaid and framed queries against every unrelated photo, a chance model carried at most 12 at a low
share and 14 at any (true low-share models: 46–105)."""
SCALE_RANGE = (0.25, 4.0)
REPROJ_PX = 6.0
"""How far (pixels, on the SIDE-scaled image) a keypoint may land from its match under the model."""


@dataclass(frozen=True)
class Features:
    points: np.ndarray  # (n, 2) float32, pixel coordinates on the SIDE-scaled image
    descriptors: np.ndarray  # (n, 32) uint8

    def pack(self) -> str:
        """Compact text for a JSON column: count, then float16 coordinates and the descriptors."""
        n = len(self.points)
        raw = struct.pack("<H", n) + self.points.astype(np.float16).tobytes() + self.descriptors.tobytes()
        return base64.b64encode(raw).decode("ascii")

    @classmethod
    def unpack(cls, text: str) -> Features:
        raw = base64.b64decode(text)
        (n,) = struct.unpack_from("<H", raw)
        pts = np.frombuffer(raw, dtype=np.float16, count=2 * n, offset=2).astype(np.float32).reshape(n, 2)
        desc = np.frombuffer(raw, dtype=np.uint8, count=32 * n, offset=2 + 4 * n).reshape(n, 32)
        return cls(pts, desc)


@lru_cache(maxsize=1)
def _cv2() -> Any | None:
    try:
        import cv2
    except ImportError:
        return None
    # one item is verified at a time per process (scans and the service parallelise by process); OpenCV's
    # own worker threads only spin on the other core between the short calls made here
    cv2.setNumThreads(1)
    return cv2


def available() -> bool:
    return _cv2() is not None


def extract(gray: np.ndarray, max_keypoints: int = MAX_KEYPOINTS) -> Features | None:
    """ORB features of a grayscale image (any size; scaled to ``SIDE``); None when OpenCV is missing."""
    cv2 = _cv2()
    if cv2 is None:
        return None
    gray = scaled(gray)
    kps: Any = ()
    desc: Any = None
    for threshold in (*FAST_THRESHOLDS, LAST_RESORT_THRESHOLD):  # smooth pictures give few corners
        if threshold == LAST_RESORT_THRESHOLD and len(kps) >= 2 * MIN_INLIERS:
            break
        orb = cv2.ORB_create(nfeatures=max_keypoints, fastThreshold=threshold)
        kps, desc = orb.detectAndCompute(gray, None)
        if desc is not None and len(kps) >= ENOUGH_KEYPOINTS:
            break
    return _features(kps, desc)


def extract_spread(gray: np.ndarray, max_keypoints: int = QUERY_KEYPOINTS) -> Features | None:
    """ORB features at the lowest corner threshold, at most max_keypoints / SPREAD_GRID² per grid cell.

    A caption laid over a copy has the strongest corners, and enough of them that :func:`extract` stops at
    a high threshold: a smooth picture's own corners, which its bank entry was described by, are never
    detected. Here every part of the picture keeps its share (a benchmark caption over a smooth photo:
    0–10 matched keypoints with the usual look, 28–175 inliers with this one).
    """
    cv2 = _cv2()
    if cv2 is None:
        return None
    gray = scaled(gray)
    orb = cv2.ORB_create(nfeatures=4 * max_keypoints, fastThreshold=FAST_THRESHOLDS[-1])
    kps = orb.detect(gray, None)
    if not kps:
        return _features((), None)
    h, w = gray.shape[:2]
    pts = cv2.KeyPoint_convert(kps)
    cell = (pts[:, 1] * SPREAD_GRID // h).astype(np.int64) * SPREAD_GRID + (pts[:, 0] * SPREAD_GRID // w)
    order = np.lexsort((-np.array([kp.response for kp in kps]), cell))  # by cell, strongest first
    ranked = cell[order]
    rank = np.arange(len(order)) - np.searchsorted(ranked, ranked, side="left")
    keep = order[rank < max(1, max_keypoints // SPREAD_GRID**2)]
    return _features(*orb.compute(gray, [kps[i] for i in keep]))


def _features(kps: Any, desc: Any) -> Features:
    """Features of OpenCV keypoints and their descriptors (none when OpenCV found none)."""
    if desc is None or not kps:
        return Features(np.zeros((0, 2), np.float32), np.zeros((0, 32), np.uint8))
    return Features(np.array([kp.pt for kp in kps], dtype=np.float32), desc.astype(np.uint8))


def scaled(gray: np.ndarray) -> np.ndarray:
    """The image at SIDE pixels on its long side (never enlarged), contiguous for OpenCV.

    Both extractors start here; a caller taking both looks at one image scales it once and passes the
    result (scaling a 1 MP copy costs about 1 ms, a tenth of a query's verification)."""
    cv2 = _cv2()
    h, w = gray.shape[:2]
    k = SIDE / max(h, w)
    if cv2 is not None and k < 1:
        gray = cv2.resize(gray, (max(1, round(w * k)), max(1, round(h * k))), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(gray)


def verify(query: Features, target: Features) -> dict[str, Any] | None:
    """Evidence that ``query`` shows ``target`` under one similarity transform, or None."""
    cv2 = _cv2()
    if cv2 is None or len(query.points) < MIN_INLIERS or len(target.points) < MIN_INLIERS:
        return None
    matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
    pairs = matcher.knnMatch(query.descriptors, target.descriptors, k=2)
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < 0.8 * p[1].distance]
    if len(good) < MIN_MODEL_INLIERS:
        return None
    src = np.array([query.points[m.queryIdx] for m in good], dtype=np.float32)
    dst = np.array([target.points[m.trainIdx] for m in good], dtype=np.float32)
    model, mask = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=REPROJ_PX)
    if model is None or mask is None:
        return None
    fitted = int(mask.sum())
    scale = math.hypot(model[0, 0], model[1, 0])
    rotation = math.degrees(math.atan2(model[1, 0], model[0, 0]))
    if fitted < MIN_MODEL_INLIERS or not SCALE_RANGE[0] <= scale <= SCALE_RANGE[1]:
        return None
    if fitted / len(good) < MIN_INLIER_RATIO:  # RANSAC's own inliers say little: count what it carries
        inliers = _carried(query, target, model)
    else:
        inliers = fitted if fitted >= MIN_INLIERS else max(fitted, _carried(query, target, model))
    if inliers < MIN_INLIERS:
        return None
    return {
        "method": "ORB + RANSAC similarity",
        "inliers": inliers,
        "ransac_inliers": fitted,
        "matched_keypoints": len(good),
        "rotation_deg": round(rotation, 1),
        "scale": round(scale, 3),
        "translation_px": [round(float(model[0, 2]), 1), round(float(model[1, 2]), 1)],
    }


_POPCOUNT = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).sum(axis=1)


def _carried(query: Features, target: Features, model: np.ndarray) -> int:
    """Query keypoints the model carries within REPROJ_PX of a known keypoint with a close descriptor,
    each keypoint of either side counted once (nearest descriptors first).

    The ratio test keeps only unambiguous pairs, which repeated texture has few of; the model, once fitted,
    can check every keypoint instead."""
    moved = query.points @ model[:, :2].T + model[:, 2]
    qi, ti = np.nonzero(((moved[:, None, :] - target.points[None, :, :]) ** 2).sum(axis=2) <= REPROJ_PX**2)
    ham = _POPCOUNT[np.bitwise_xor(query.descriptors[qi], target.descriptors[ti])].sum(axis=1)
    close = ham <= CARRIED_MAX_HAMMING
    qi, ti = qi[close], ti[close]
    used_q: set[int] = set()
    used_t: set[int] = set()
    for k in np.argsort(ham[close], kind="stable"):
        a, b = int(qi[k]), int(ti[k])
        if a not in used_q and b not in used_t:
            used_q.add(a)
            used_t.add(b)
    return len(used_q)
