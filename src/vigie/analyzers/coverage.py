"""Findings for what an item's checks could not cover, so that a decision never allows it silently.

A file that does not decode (broken, truncated, over the pixel limit, a format vigie cannot read) was only
checked by its byte-exact hashes; an image whose PDQ quality is under 50 was not matched by PDQ distance
(PDQ's rule), only by exact hashes and, where a bank entry keeps keypoints, by their verified geometry.
Without a finding, both answer ``allow`` with no reason, exactly like a checked, clean item. Such a file is
also what an evader would craft, so the shipped policy sends undecodable media to review.
"""

from __future__ import annotations

from vigie.analyzers.base import Finding
from vigie.signals.pdq import MIN_QUALITY

NOT_ANALYSED = "not_analysed"
LOW_QUALITY = "low_quality"


def coverage_findings(error: str | None, pdq_quality: int | None) -> list[Finding]:
    """A ``media``/``not_analysed`` finding for a hashing error ("reason: message"), else a
    ``pdq``/``low_quality`` one for a PDQ quality under PDQ's minimum of 50."""
    if error:
        reason, _, message = error.partition(": ")
        return [
            Finding(
                analyzer="media",
                kind=NOT_ANALYSED,
                confidence=1.0,
                summary=f"not analysed ({reason}): only byte-exact hashes were checked",
                evidence={"reason": reason, "message": message or reason},
            )
        ]
    if pdq_quality is not None and pdq_quality < MIN_QUALITY:
        return [
            Finding(
                analyzer="pdq",
                kind=LOW_QUALITY,
                confidence=1.0,
                summary=(
                    f"PDQ quality {pdq_quality} < {MIN_QUALITY}: "
                    "too flat to match by PDQ distance; exact hashes and verified keypoints only"
                ),
                evidence={"pdq_quality": pdq_quality, "min_quality": MIN_QUALITY},
            )
        ]
    return []
