"""The detector slot: a learned synthetic-image detector behind a documented ONNX interface.

A classifier score is one weak signal among others: it never decides alone (policies combine it with
provenance and matches), and its finding states the model's own measured limits.

Input spec (what a model must accept to plug in here):
- one input, float32, shape ``[1, 3, S, S]``, RGB, values ``(pixel / 255 - mean) / std`` per channel;
- the image is resized so its short side is S (bilinear), then centre-cropped to S × S;
- one output: the probability that the image is synthetic, shape ``[1]`` or ``[1, 1]`` (or a logit).
Optional ONNX metadata (``metadata_props``) configures the rest: ``vigie.input_size`` (S, default 224),
``vigie.mean`` / ``vigie.std`` (three comma-separated floats, default 0/1), ``vigie.output`` (``probability``
or ``logit``), ``vigie.threshold`` (default 0.5), ``vigie.model_name``, ``vigie.limits`` (free text: what
the model was measured on and how it fails). Enable by naming the file in ``VIGIE_DETECTOR_MODEL``.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from vigie.analyzers.base import Finding
from vigie.errors import ConfigError
from vigie.media.image import open_checked
from vigie.media.item import Item


class OnnxDetector:
    """Runs a synthetic-image classifier that follows the input spec above."""

    name = "synthetic_detector"

    def __init__(self, model_path: Path) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise ConfigError("the detector slot needs onnxruntime: pip install 'vigie[detector]'") from exc
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(model_path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise ConfigError(f"cannot load detector model {model_path}: {exc}") from exc
        meta = self.session.get_modelmeta().custom_metadata_map
        inputs = self.session.get_inputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4:
            raise ConfigError(f"{model_path}: the detector needs one [1, 3, S, S] input, got {inputs}")
        self.input_name = inputs[0].name
        try:
            self.size = int(meta.get("vigie.input_size", 224))
            self.mean = np.array([float(x) for x in meta.get("vigie.mean", "0,0,0").split(",")], np.float32)
            self.std = np.array([float(x) for x in meta.get("vigie.std", "1,1,1").split(",")], np.float32)
            self.threshold = float(meta.get("vigie.threshold", 0.5))
        except ValueError as exc:
            raise ConfigError(f"{model_path}: bad vigie.* metadata: {exc}") from exc
        self.logit = meta.get("vigie.output", "probability") == "logit"
        self.model_name = meta.get("vigie.model_name", model_path.name)
        self.limits = meta.get("vigie.limits", "not stated by the model's author")

    def preprocess(self, im: Image.Image) -> np.ndarray:
        im = im.convert("RGB")
        k = self.size / min(im.size)
        size = (max(self.size, round(im.width * k)), max(self.size, round(im.height * k)))
        im = im.resize(size, Image.Resampling.BILINEAR)
        left, top = (im.width - self.size) // 2, (im.height - self.size) // 2
        arr = np.asarray(im.crop((left, top, left + self.size, top + self.size)), np.float32) / 255.0
        arr = (arr - self.mean) / self.std
        return arr.transpose(2, 0, 1)[None].astype(np.float32)

    def score(self, im: Image.Image) -> float:
        out = self.session.run(None, {self.input_name: self.preprocess(im)})[0]
        value = float(np.asarray(out).reshape(-1)[0])
        return 1.0 / (1.0 + math.exp(-value)) if self.logit else value

    def analyze(self, item: Item) -> list[Finding]:
        im = open_checked(item)  # only what hashing would open: no bombs, no formats vigie does not read
        if im is None:
            return []
        try:
            with warnings.catch_warnings(), im:
                warnings.simplefilter("ignore")
                im.draft("RGB", (self.size * 2, self.size * 2))
                p = self.score(im)
        except Exception:
            return []
        return [
            Finding(
                analyzer=self.name,
                kind="synthetic_detector_score",
                confidence=round(p, 4),
                ai_generated=True if p >= self.threshold else None,
                generator=None,
                summary=f"{self.model_name}: synthetic score {p:.2f}",
                evidence={
                    "model": self.model_name,
                    "score": p,
                    "threshold": self.threshold,
                    "limits": self.limits,
                    "note": "a learned classifier's score; never decisive on its own, and a low score is not "
                    "evidence that an image is a photograph",
                },
            )
        ]


def configured_detector() -> OnnxDetector | None:
    path = os.environ.get("VIGIE_DETECTOR_MODEL")
    return OnnxDetector(Path(path)) if path else None
