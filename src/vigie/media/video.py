"""Decode video safely with PyAV: limits on duration, frames and size; frames sampled at a fixed rate."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from vigie.errors import MediaError
from vigie.settings import MediaLimits

if TYPE_CHECKING:  # PyAV loads its shared libraries on import: only when a video shows up
    import av


def _upright(frame: av.VideoFrame) -> np.ndarray:
    """RGB pixels rotated by the display matrix (counterclockwise degrees, multiples of 90 honoured)."""
    rgb = frame.to_ndarray(format="rgb24")
    k = round((getattr(frame, "rotation", 0) or 0) / 90) % 4
    return np.ascontiguousarray(np.rot90(rgb, k)) if k else rgb


def sample_frames(data: bytes, limits: MediaLimits, fps: float = 1.0) -> Iterator[tuple[float, np.ndarray]]:
    """Yield (seconds, RGB uint8 array) about ``fps`` times per second of video.

    Timestamps come from the container (variable frame rate is fine). Frames are turned upright as a
    player (and ffmpeg's autorotate) shows them, from the stream's display matrix, so a phone video
    hashes the same as its upright copy. A stream with no decodable frame, or over the duration, frame
    or pixel limits, raises :class:`MediaError`.
    """
    import av

    if fps <= 0:
        raise ValueError("fps must be positive")
    try:
        container = av.open(io.BytesIO(data), mode="r")
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise MediaError("corrupt", f"cannot open video: {exc}") from None
    with container:
        if not container.streams.video:
            raise MediaError("unsupported", "no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        if container.duration is not None and container.duration / 1e6 > limits.max_duration_s:
            raise MediaError(
                "too_long",
                f"duration {container.duration / 1e6:.0f} s is over the limit of {limits.max_duration_s}",
            )
        cc = stream.codec_context
        if cc is None:  # a stream whose codec FFmpeg does not know (a damaged header, found by fuzzing)
            raise MediaError("corrupt", "the video stream's codec cannot be read")
        if cc.width and cc.height and cc.width * cc.height > limits.max_pixels:
            raise MediaError("bomb", f"{cc.width}×{cc.height} frames are over the pixel limit")
        tb = float(stream.time_base) if stream.time_base else 0.0
        step = 1.0 / fps
        next_t = 0.0
        decoded = 0
        emitted = 0
        try:
            for frame in container.decode(stream):
                decoded += 1
                if decoded > limits.max_frames:
                    raise MediaError("too_long", f"more than {limits.max_frames} frames")
                t = float(frame.pts * tb) if frame.pts is not None and tb else (decoded - 1) / 25.0
                if t > limits.max_duration_s:
                    raise MediaError("too_long", f"frame at {t:.0f} s is past the duration limit")
                if emitted and t < next_t:
                    continue
                if frame.width * frame.height > limits.max_pixels:
                    raise MediaError("bomb", f"{frame.width}×{frame.height} frame is over the pixel limit")
                emitted += 1
                next_t = t + step
                yield t, _upright(frame)
        except av.FFmpegError as exc:
            if not emitted:
                raise MediaError("corrupt", f"cannot decode video: {exc}") from None
            return  # a damaged tail: keep what was decoded
        if not emitted:
            raise MediaError("corrupt", "no decodable video frame")
