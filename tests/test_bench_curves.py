"""The robustness benchmark's recall-at-precision curves: it reports the thresholds the data allow."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from curves import Curve, JointCurve


def test_joint_thresholds_keep_every_positive_the_negatives_allow() -> None:
    rng = np.random.default_rng(0)
    curve = JointCurve()
    # negatives: PDQ's own distance never under 80, the nearest extra signal never under 50
    neg_plain, neg_extra = rng.integers(80, 140, 20_000), rng.integers(50, 140, 20_000)
    curve.add("neg", None, JointCurve.codes(np.zeros(20_000, bool), neg_plain, neg_extra))
    for plain, extra, matched in [(70, 120, False), (120, 45, False), (130, 130, True), (90, 60, False)]:
        codes = JointCurve.codes(np.array([matched]), np.array([plain]), np.array([extra]))
        curve.add("t", (codes[0][0], codes[1][0]), (np.array([], int), np.array([], int)))
    plain_t, extra_t = curve.fit()
    # the last positive sits beyond both walls of negatives: no pair of thresholds can take it at 99.99%
    assert curve.recall("t") == 0.75 and curve.negatives == 20_000
    assert 70 <= plain_t - 1 < 80 and 45 <= extra_t - 1 < 50, curve.label()


def test_with_no_extra_signal_the_joint_curve_is_the_plain_one() -> None:
    rng = np.random.default_rng(1)
    pos, neg = rng.integers(0, 90, 500), rng.integers(60, 200, 40_000)
    plain, joint = Curve(), JointCurve()
    for d in pos:
        plain.add("t", int(d), np.array([], int))
    plain.add("t", None, neg)
    none = np.full(len(neg), 256)
    joint.add("t", None, JointCurve.codes(np.zeros(len(neg), bool), neg, none))
    for d in pos:
        c = JointCurve.codes(np.array([False]), np.array([d]), np.array([256]))
        joint.add("t", (c[0][0], c[1][0]), (np.array([], int), np.array([], int)))
    t = plain.fit()
    joint.fit()
    assert joint.t[0] - 1 == t and plain.recall("t") == joint.recall("t")
