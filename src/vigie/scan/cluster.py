"""Group the scanned set into clusters of exact (same sha256) and near (PDQ within a radius) duplicates.

Analysts review one cluster instead of every re-upload of the same picture.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Cluster:
    """Items that are copies of each other; ``exact`` when every member has the same bytes."""

    id: int
    members: list[str]
    exact: bool
    max_distance: int = 0
    edges: list[tuple[str, str, int]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": "exact" if self.exact else "near",
            "size": len(self.members),
            "max_distance": self.max_distance,
            "members": self.members,
        }


def _find(parent: list[int], i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def cluster_results(
    results: Sequence[dict[str, Any]], radius: int = 31, min_quality: int = 50
) -> list[Cluster]:
    """Clusters of two or more items, largest first; items below ``min_quality`` join only exact groups."""
    from vigie.index import PDQIndex

    n = len(results)
    parent = list(range(n))
    dist_of: dict[tuple[int, int], int] = {}

    def union(a: int, b: int, d: int) -> None:
        ra, rb = _find(parent, a), _find(parent, b)
        if ra != rb:
            parent[rb] = ra
        dist_of[(min(a, b), max(a, b))] = d

    by_sha: dict[str, int] = {}
    for i, r in enumerate(results):
        sha = r.get("sha256")
        if sha:
            if sha in by_sha:
                union(by_sha[sha], i, 0)
            else:
                by_sha[sha] = i

    rows = [
        i
        for i, r in enumerate(results)
        if r.get("pdq")
        and (r.get("pdq_quality") or 0) >= min_quality
        and by_sha.get(r.get("sha256") or "") == i
    ]
    if len(rows) > 1:
        codes = np.frombuffer(b"".join(bytes.fromhex(results[i]["pdq"]) for i in rows), dtype=np.uint8)
        codes = codes.reshape(-1, 32)
        index = PDQIndex()
        index.add(np.arange(len(rows), dtype=np.int64), codes)
        for qi, hits in enumerate(index.search(codes, radius)):
            for hid, d in hits:
                if hid > qi:
                    union(rows[qi], rows[int(hid)], int(d))

    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(_find(parent, i), []).append(i)
    clusters: list[Cluster] = []
    for members in groups.values():
        if len(members) < 2:
            continue
        shas = {results[i].get("sha256") for i in members}
        member_set = set(members)
        dists = [d for (a, b), d in dist_of.items() if a in member_set and b in member_set]
        clusters.append(
            Cluster(
                id=0,
                members=[results[i]["path"] for i in members],
                exact=len(shas) == 1,
                max_distance=max(dists, default=0),
            )
        )
    clusters.sort(key=lambda c: (-len(c.members), c.members[0]))
    for k, c in enumerate(clusters, 1):
        c.id = k
    return clusters
