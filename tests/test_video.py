"""Video intake and vPDQ on small videos made here with PyAV (benign moving gradients)."""

from __future__ import annotations

import io
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from vigie.errors import MediaError
from vigie.media import Item, sniff
from vigie.media.video import sample_frames
from vigie.settings import MediaLimits
from vigie.signals import hash_item
from vigie.signals.pdq import hash_pixels


def make_video(
    seconds: float = 3.0, fps: int = 10, size: tuple[int, int] = (160, 96), vfr: bool = False
) -> bytes:
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream("libx264" if "libx264" in av.codecs_available else "mpeg4", rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, 1000)
        w, h = size
        yy, xx = np.mgrid[0:h, 0:w]
        t_ms = 0
        for i in range(int(seconds * fps)):
            img = np.stack([(xx * 2 + i * 5) % 256, (yy * 3) % 256, (xx + yy + i * 9) % 256], axis=2).astype(
                np.uint8
            )
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = t_ms
            frame.time_base = Fraction(1, 1000)
            t_ms += int(1000 / fps) * (2 if vfr and i % 3 == 0 else 1)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buf.getvalue()


def test_vpdq_samples_about_one_frame_per_second() -> None:
    data = make_video(seconds=3.0)
    assert sniff(data) == "video/mp4"
    sig = hash_item(Item("clip.mp4", data, sniff(data)), MediaLimits(), vpdq_fps=1.0)
    assert sig.error is None and sig.pdq is None
    assert sig.vpdq is not None and 3 <= len(sig.vpdq) <= 4
    times = [f.seconds for f in sig.vpdq]
    assert times == sorted(times) and times[0] == 0.0
    rec = sig.to_json()["vpdq"][0]
    assert isinstance(rec[0], float) and len(rec[1]) == 64 and 0 <= rec[2] <= 100


def test_variable_frame_rate_uses_timestamps() -> None:
    frames = list(sample_frames(make_video(seconds=3.0, vfr=True), MediaLimits(), fps=2.0))
    gaps = np.diff([t for t, _ in frames])
    assert len(frames) >= 4 and gaps.min() >= 0.45


def test_video_limits_and_garbage() -> None:
    data = make_video(seconds=2.0)
    with pytest.raises(MediaError) as err:
        list(sample_frames(data, MediaLimits(max_frames=5), fps=30))
    assert err.value.reason == "too_long"
    bad = data[:48] + bytes(len(data) - 48)  # header kept, every frame zeroed
    sig = hash_item(Item("bad.mp4", bad, sniff(bad)), MediaLimits())
    assert sig.error and sig.error.split(":")[0] in {"corrupt", "unsupported"}
    assert sig.sha256  # crypto hashes survive a decode failure


def test_a_stream_of_an_unknown_codec_is_corrupt_not_a_crash() -> None:
    """Found by mutating videos: a damaged codec tag leaves PyAV no codec context, and reading its size
    raised AttributeError out of the pipeline, which must turn every bad file into an error."""
    from vigie.pipeline import PipelineContext, process_item

    data = make_video(seconds=1.0)
    tag = b"avc1" if b"avc1" in data else b"mp4v"
    bad = data.replace(tag, b"zzzz")
    res = process_item(Item("bad.mp4", bad, sniff(bad)), PipelineContext())
    assert res.error == "corrupt: the video stream's codec cannot be read" and res.sha256


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg command (.ci/run installs it)")
def test_rotation_metadata_turns_frames_upright_as_ffmpeg_shows_them(tmp_path: Path) -> None:
    """A phone-style video (pixels stored sideways, a display matrix saying how to show them) is hashed
    as a player shows it: vigie's frames equal ffmpeg's auto-rotated decode, pixel for pixel."""
    src, tagged, raw = tmp_path / "upright.mp4", tmp_path / "tagged.mp4", tmp_path / "first.rgb"
    src.write_bytes(make_video(seconds=2.0, size=(160, 96)))
    ff = ["ffmpeg", "-v", "error", "-y"]
    subprocess.run([*ff, "-i", src, "-c", "copy", "-metadata:s:v:0", "rotate=90", tagged], check=True)
    subprocess.run(
        [*ff, "-i", tagged, "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", raw], check=True
    )
    shown = np.fromfile(raw, np.uint8).reshape(160, 96, 3)  # ffmpeg's autorotate: 96 wide, 160 high
    frames = list(sample_frames(tagged.read_bytes(), MediaLimits(), fps=1.0))
    assert frames[0][1].shape == (160, 96, 3)
    assert np.array_equal(frames[0][1], shown)
    turned = hash_item(Item("t.mp4", tagged.read_bytes(), "video/mp4"), MediaLimits()).vpdq
    assert turned and turned[0].pdq == hash_pixels(shown).hex  # the hash is of what a viewer sees
