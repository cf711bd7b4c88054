"""vPDQ: one PDQ per sampled video frame, compared later as a bag of frames."""

from __future__ import annotations

from dataclasses import dataclass

from vigie.media.video import sample_frames
from vigie.settings import MediaLimits
from vigie.signals.pdq import hash_array


@dataclass(frozen=True)
class FrameHash:
    seconds: float
    pdq: str
    quality: int

    def to_json(self) -> list[float | str | int]:
        return [round(self.seconds, 3), self.pdq, self.quality]


def hash_video(data: bytes, limits: MediaLimits, fps: float = 1.0) -> list[FrameHash]:
    """PDQ of about ``fps`` frames per second; raises MediaError when no frame decodes."""
    return [
        FrameHash(t, h.hex, h.quality)
        for t, h in ((t, hash_array(rgb)) for t, rgb in sample_frames(data, limits, fps))
    ]
