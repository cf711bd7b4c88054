"""The ONNX detector slot, exercised with a tiny stand-in model built here (mean brightness → sigmoid)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from vigie.analyzers import default_analyzers
from vigie.errors import ConfigError
from vigie.media import Item

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper  # noqa: E402

from vigie.analyzers.detector import OnnxDetector  # noqa: E402


def tiny_model(path: Path, size: int = 32, logit: bool = True) -> Path:
    """A stand-in "detector" whose score is the image's mean brightness: it only tests the plumbing."""
    x = helper.make_tensor_value_info("pixels", TensorProto.FLOAT, [1, 3, size, size])
    y = helper.make_tensor_value_info("score", TensorProto.FLOAT, [1, 1])
    nodes = [
        helper.make_node("ReduceMean", ["pixels"], ["m"], keepdims=0),
        helper.make_node("Sub", ["m", "half"], ["c"]),
        helper.make_node("Mul", ["c", "gain"], ["l"]),
        helper.make_node("Reshape", ["l", "shape"], ["score"]),
    ]
    inits = [
        helper.make_tensor("half", TensorProto.FLOAT, [], [0.5]),
        helper.make_tensor("gain", TensorProto.FLOAT, [], [20.0]),
        helper.make_tensor("shape", TensorProto.INT64, [2], [1, 1]),
    ]
    model = helper.make_model(
        helper.make_graph(nodes, "brightness", [x], [y], inits), opset_imports=[helper.make_opsetid("", 17)]
    )
    model.ir_version = 8
    for k, v in {
        "vigie.input_size": str(size),
        "vigie.output": "logit" if logit else "probability",
        "vigie.model_name": "brightness-standin",
        "vigie.limits": "measures brightness only",
    }.items():
        model.metadata_props.add(key=k, value=v)
    onnx.save(model, path)
    return path


def jpeg(value: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (120, 80), (value, value, value)).save(buf, "JPEG")
    return buf.getvalue()


def test_scores_follow_the_model_and_never_claim_photograph(tmp_path: Path) -> None:
    det = OnnxDetector(tiny_model(tmp_path / "m.onnx"))
    [bright] = det.analyze(Item("b.jpg", jpeg(240)))
    [dark] = det.analyze(Item("d.jpg", jpeg(20)))
    assert bright.ai_generated is True and bright.confidence > 0.99
    assert dark.ai_generated is None and dark.confidence < 0.01  # low score ≠ "this is a photograph"
    assert (
        bright.evidence["model"] == "brightness-standin"
        and bright.evidence["limits"] == "measures brightness only"
    )
    assert det.analyze(Item("x.jpg", b"not an image")) == []


def test_configured_by_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VIGIE_DETECTOR_MODEL", raising=False)
    assert not any(a.name == "synthetic_detector" for a in default_analyzers())
    monkeypatch.setenv("VIGIE_DETECTOR_MODEL", str(tiny_model(tmp_path / "m.onnx")))
    assert any(a.name == "synthetic_detector" for a in default_analyzers())


def test_bad_model_files_are_clear_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00garbage")
    with pytest.raises(ConfigError, match="cannot load detector model"):
        OnnxDetector(bad)
    x = helper.make_tensor_value_info("v", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("w", TensorProto.FLOAT, [1, 4])
    m = helper.make_model(
        helper.make_graph([helper.make_node("Identity", ["v"], ["w"])], "g", [x], [y]),
        opset_imports=[helper.make_opsetid("", 17)],
    )
    m.ir_version = 8
    onnx.save(m, tmp_path / "wrong.onnx")
    with pytest.raises(ConfigError, match="one \\[1, 3, S, S\\] input"):
        OnnxDetector(tmp_path / "wrong.onnx")
