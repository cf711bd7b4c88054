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
"""Keypoints of a query's second look, when its usual ones verify no candidate: a caption laid over a
copy wins the strongest corners and leaves few of the picture's own (1,000 verify 12 of 25 text-overlaid
benchmark copies that 250 missed; as the only look they lost three that 250 verify). Never stored."""
SIDE = 512  # features are taken on the image scaled to this long side
MIN_INLIERS = 25
FAST_THRESHOLDS = (10, 5, 2)
"""FAST corner thresholds tried in turn until ENOUGH_KEYPOINTS are found: smooth photos (sky, water, a
gradient) give a dozen corners at 10, too few to verify a tilt; at 2 they give a hundred or more."""
ENOUGH_KEYPOINTS = 150
MIN_INLIER_RATIO = 0.3
SCALE_RANGE = (0.25, 4.0)


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
    h, w = gray.shape[:2]
    k = SIDE / max(h, w)
    if k < 1:
        gray = cv2.resize(gray, (max(1, round(w * k)), max(1, round(h * k))), interpolation=cv2.INTER_AREA)
    gray = np.ascontiguousarray(gray)
    for threshold in FAST_THRESHOLDS:  # smooth pictures (sky, water) give few corners at the default
        orb = cv2.ORB_create(nfeatures=max_keypoints, fastThreshold=threshold)
        kps, desc = orb.detectAndCompute(gray, None)
        if desc is not None and len(kps) >= ENOUGH_KEYPOINTS:
            break
    if desc is None or not kps:
        return Features(np.zeros((0, 2), np.float32), np.zeros((0, 32), np.uint8))
    return Features(np.array([kp.pt for kp in kps], dtype=np.float32), desc.astype(np.uint8))


def verify(query: Features, target: Features) -> dict[str, Any] | None:
    """Evidence that ``query`` shows ``target`` under one similarity transform, or None."""
    cv2 = _cv2()
    if cv2 is None or len(query.points) < MIN_INLIERS or len(target.points) < MIN_INLIERS:
        return None
    matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
    pairs = matcher.knnMatch(query.descriptors, target.descriptors, k=2)
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < 0.8 * p[1].distance]
    if len(good) < MIN_INLIERS:
        return None
    src = np.float32([query.points[m.queryIdx] for m in good])
    dst = np.float32([target.points[m.trainIdx] for m in good])
    model, mask = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=6.0)
    if model is None or mask is None:
        return None
    inliers = int(mask.sum())
    scale = math.hypot(model[0, 0], model[1, 0])
    rotation = math.degrees(math.atan2(model[1, 0], model[0, 0]))
    if inliers < MIN_INLIERS or inliers / len(good) < MIN_INLIER_RATIO:
        return None
    if not SCALE_RANGE[0] <= scale <= SCALE_RANGE[1]:
        return None
    return {
        "method": "ORB + RANSAC similarity",
        "inliers": inliers,
        "matched_keypoints": len(good),
        "rotation_deg": round(rotation, 1),
        "scale": round(scale, 3),
        "translation_px": [round(float(model[0, 2]), 1), round(float(model[1, 2]), 1)],
    }
