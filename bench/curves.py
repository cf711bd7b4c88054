"""Recall-at-precision curves for the robustness benchmark: thresholds chosen on the data.

Kept apart from bench_robustness, which pins numba to one thread at import: importing these from a test
must not change numba's configuration in a process that already started its threads.
"""

from __future__ import annotations

import numpy as np

PRECISION = 0.9999


class Curve:
    """Positive scores per transform and every negative score, for recall at 99.99% precision."""

    def __init__(self) -> None:
        self.pos: dict[str, list[int]] = {}
        self.neg: list[np.ndarray] = []
        self.t = -1

    def add(self, tname: str, pos: int | None, neg: np.ndarray) -> None:
        if pos is not None:
            self.pos.setdefault(tname, []).append(int(pos))
        self.neg.append(neg)

    def fit(self) -> int:
        self.t = threshold_at(
            np.concatenate([np.array(v) for v in self.pos.values()]), np.concatenate(self.neg)
        )
        return self.t

    def recall(self, tname: str | None = None) -> float:
        vals = self.pos.get(tname, []) if tname else [x for v in self.pos.values() for x in v]
        return round(float(np.mean(np.array(vals) <= self.t)), 4) if vals else 0.0

    @property
    def negatives(self) -> int:
        return int(sum(len(x) for x in self.neg))


class JointCurve:
    """Vigie's matcher on the curve: a pair counts where a stage matched it, or where PDQ's own distance is
    within one threshold or the nearest of vigie's extra signals (dihedral variants, trims, derived crops and
    tilts) within another, both chosen on the data like the reference's single one.

    One threshold over the smallest distance of ~30 hashes per side would sit where negatives get close
    under that minimum (~48 bits), far below PDQ's own (~79), and drop copies that plain PDQ finds.
    """

    SIDE = 258  # codes: 0 = matched by a stage, else 1 + distance (0..256)

    def __init__(self) -> None:
        self.pos: dict[str, list[tuple[int, int]]] = {}
        self.neg = np.zeros((self.SIDE, self.SIDE), np.int64)
        self.t = (-1, -1)

    @staticmethod
    def codes(matched: np.ndarray, d_plain: np.ndarray, d_var: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.where(matched, 0, d_plain + 1), np.where(matched, 0, d_var + 1)

    def add(self, tname: str, pos: tuple[int, int] | None, neg: tuple[np.ndarray, np.ndarray]) -> None:
        if pos is not None:
            self.pos.setdefault(tname, []).append((int(pos[0]), int(pos[1])))
        np.add.at(self.neg, neg, 1)

    def fit(self) -> tuple[int, int]:
        """(plain, extra) codes: the pair that counts the most positives at precision >= PRECISION."""
        pos = np.zeros_like(self.neg)
        np.add.at(pos, tuple(np.array([p for v in self.pos.values() for p in v]).T), 1)

        def outside(h: np.ndarray) -> np.ndarray:  # [a, b]: pairs with plain code > a and extra code > b
            return np.flip(np.flip(h, (0, 1)).cumsum(0).cumsum(1), (0, 1))[1:, 1:]

        tp = int(pos.sum()) - outside(pos)[:129, :129]
        fp = int(self.neg.sum()) - outside(self.neg)[:129, :129]
        ok = (tp > 0) & (fp <= (1 - PRECISION) * (tp + fp))
        score = np.where(ok, tp, -1)
        a, b = np.unravel_index(int(np.argmax(score)), score.shape)
        self.t = (int(a), int(b))
        return self.t

    def recall(self, tname: str | None = None) -> float:
        vals = self.pos.get(tname, []) if tname else [x for v in self.pos.values() for x in v]
        hit = [p <= self.t[0] or v <= self.t[1] for p, v in vals]
        return round(float(np.mean(hit)), 4) if vals else 0.0

    @property
    def negatives(self) -> int:
        return int(self.neg.sum())

    @property
    def thresholds(self) -> dict[str, int]:
        """The fitted thresholds as distances (a pair counts at or under either)."""
        return {"pdq": self.t[0] - 1, "extra_signals": self.t[1] - 1}

    def label(self) -> str:
        return "PDQ <= {pdq}, extra signals <= {extra_signals}".format(**self.thresholds)


def threshold_at(dist_pos: np.ndarray, dist_neg: np.ndarray) -> int:
    """Largest distance threshold with precision >= PRECISION over all pairs."""
    best = -1
    for t in range(0, 129):
        tp = int((dist_pos <= t).sum())
        fp = int((dist_neg <= t).sum())
        if tp and fp / (tp + fp) <= 1 - PRECISION:
            best = t
        elif fp:
            break
    return best
