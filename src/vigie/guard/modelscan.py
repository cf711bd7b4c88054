"""Model files (LoRAs, checkpoints) read without loading them: safetensors metadata, training tags, risk.

A model built to produce abuse imagery usually says so in what its trainer recorded: kohya's tag
frequencies and dataset folder names, the output name, trigger words. Pickle-based checkpoints
(.ckpt/.pt/.bin/.pth) can execute code when loaded, so they are never unpickled: their opcodes are only
listed (``pickletools.genops`` parses without executing) to name the Python objects they would import.
"""

from __future__ import annotations

import io
import json
import pickletools
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vigie.textrisk import TextRisk

MAX_HEADER = 64 * 1024 * 1024
"""Largest safetensors header read (the reference reader caps it at 100 MB; real ones are < 1 MB)."""
MAX_PICKLE_SCAN = 32 * 1024 * 1024
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin", ".pkl", ".pickle")
_SAFE_GLOBALS = (
    "torch._utils",
    "torch.",
    "collections.OrderedDict",
    "numpy.core.multiarray",
    "numpy.dtype",
    "numpy.ndarray",
    "_codecs.encode",
    "builtins.set",
    "builtins.slice",
)
_TEXT_KEYS = (
    "ss_output_name",
    "modelspec.title",
    "modelspec.description",
    "modelspec.trigger_phrase",
    "modelspec.tags",
    "ss_training_comment",
    "ss_trigger_words",
    "trigger_words",
    "name",
)


@dataclass
class ModelReport:
    """What vigie could read from one model file, and textrisk's verdict on its training vocabulary."""

    path: str
    format: str = "unknown"
    safe_format: bool = False
    name: str | None = None
    base_model: str | None = None
    trigger_words: list[str] = field(default_factory=list)
    top_tags: list[tuple[str, int]] = field(default_factory=list)
    tag_count: int = 0
    dataset_dirs: list[str] = field(default_factory=list)
    metadata_keys: list[str] = field(default_factory=list)
    tensors: int | None = None
    imports: list[str] = field(default_factory=list)
    unsafe_imports: list[str] = field(default_factory=list)
    score: float = 0.0
    label: str = "none"
    action: str = "allow"
    reasons: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["top_tags"] = [[t, n] for t, n in self.top_tags]
        return d


class ModelFileError(Exception):
    """A model file that cannot be read as what it claims to be (message is for the user)."""


def read_safetensors_metadata(path: Path) -> tuple[dict[str, str], int]:
    """The ``__metadata__`` map and the tensor count, reading only the header."""
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise ModelFileError("file too short for a safetensors header")
        (n,) = struct.unpack("<Q", head)
        if n > MAX_HEADER:
            raise ModelFileError(f"header claims {n} bytes (limit {MAX_HEADER}): refused without reading")
        if n > size - 8:
            raise ModelFileError(f"header claims {n} bytes but the file holds {size - 8} after the length")
        raw = fh.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"header is not valid JSON: {exc}") from None
    if not isinstance(header, dict):
        raise ModelFileError("header is not a JSON object")
    meta = header.pop("__metadata__", {}) or {}
    if not isinstance(meta, dict):
        raise ModelFileError("__metadata__ is not an object")
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in meta.items()}, len(header)


def _json_field(meta: dict[str, str], key: str) -> Any:
    try:
        return json.loads(meta[key]) if key in meta else None
    except json.JSONDecodeError:
        return None


def training_vocabulary(meta: dict[str, str]) -> tuple[dict[str, int], list[str]]:
    """Tag → count over datasets (kohya ``ss_tag_frequency`` or ``ss_datasets``) and dataset folders."""
    tags: dict[str, int] = {}
    dirs: list[str] = []
    freq = _json_field(meta, "ss_tag_frequency")
    sources: list[Any] = [freq] if isinstance(freq, dict) else []
    datasets = _json_field(meta, "ss_datasets")
    if isinstance(datasets, list):
        sources += [d.get("tag_frequency") for d in datasets if isinstance(d, dict)]
    for src in sources:
        if not isinstance(src, dict):
            continue
        for folder, counts in src.items():
            dirs.append(str(folder))
            if isinstance(counts, dict):
                for tag, n in counts.items():
                    t = str(tag).strip()
                    if t:
                        tags[t] = tags.get(t, 0) + (int(n) if isinstance(n, (int, float)) else 1)
    dd = _json_field(meta, "ss_dataset_dirs")
    if isinstance(dd, dict):
        dirs += [str(k) for k in dd]
    return tags, list(dict.fromkeys(dirs))


def _pickle_imports(data: bytes) -> list[str]:
    """Globals a pickle stream would import, from its opcodes only (nothing is executed).

    Module and attribute names reach STACK_GLOBAL as strings, often fetched back from the memo, so the
    memo is followed for strings (and only strings).
    """
    out: list[str] = []
    strings: list[str | None] = []
    memo: dict[int, str | None] = {}
    last: str | None = None
    try:
        for op, arg, _pos in pickletools.genops(io.BytesIO(data)):
            name = op.name
            if name in (
                "SHORT_BINUNICODE",
                "BINUNICODE",
                "UNICODE",
                "BINUNICODE8",
                "SHORT_BINSTRING",
                "BINSTRING",
            ):
                last = str(arg)
                strings.append(last)
                continue
            if name == "MEMOIZE":
                memo[len(memo)] = last
            elif name in ("BINPUT", "LONG_BINPUT", "PUT"):
                memo[int(arg or 0)] = last  # a memo index, never None for these opcodes
            elif name in ("BINGET", "LONG_BINGET", "GET"):
                last = memo.get(int(arg or 0))
                strings.append(last)
                continue
            elif name == "GLOBAL":
                out.append(str(arg).replace(" ", "."))
            elif name == "STACK_GLOBAL" and len(strings) >= 2 and strings[-2] and strings[-1]:
                out.append(f"{strings[-2]}.{strings[-1]}")
            last = None
    except Exception as exc:  # a truncated or hostile stream: report what was read
        out.append(f"<unreadable after {len(out)} imports: {type(exc).__name__}>")
    return list(dict.fromkeys(out))


def _scan_pickle(path: Path, report: ModelReport) -> None:
    report.format = "pickle"
    report.safe_format = False
    streams: list[bytes] = []
    if zipfile.is_zipfile(path):
        report.format = "pytorch-zip (pickle)"
        try:
            with zipfile.ZipFile(path) as zf:
                for info in zf.infolist():
                    if info.filename.endswith(".pkl") and info.file_size <= MAX_PICKLE_SCAN:
                        streams.append(zf.read(info))
        except (OSError, zipfile.BadZipFile):
            raise
        except Exception as exc:  # EOFError, NotImplementedError, zlib.error...: a damaged archive (fuzzed)
            raise ModelFileError(f"damaged zip checkpoint: {type(exc).__name__}: {exc}") from None
    else:
        with path.open("rb") as fh:
            streams.append(fh.read(MAX_PICKLE_SCAN))
    for s in streams:
        report.imports += [i for i in _pickle_imports(s) if i not in report.imports]
    report.unsafe_imports = [i for i in report.imports if not i.startswith(_SAFE_GLOBALS)]
    report.reasons.append(
        {
            "producer": "vigie.guard.modelscan",
            "rule": "unsafe_format",
            "summary": "pickle checkpoint, never loaded by vigie: convert it to safetensors to read metadata",
        }
    )
    if report.unsafe_imports:
        report.action = "review"
        report.reasons.append(
            {
                "producer": "vigie.guard.modelscan",
                "rule": "unexpected_imports",
                "terms": report.unsafe_imports,
            }
        )


def scan_model(path: Path, textrisk: TextRisk | None = None, top: int = 50) -> ModelReport:
    """Read one model file safely and score its names, trigger words, folders and training tags."""
    report = ModelReport(path=str(path))
    try:
        if path.suffix.lower() == ".safetensors" or _looks_like_safetensors(path):
            meta, report.tensors = read_safetensors_metadata(path)
            report.format, report.safe_format = "safetensors", True
            _fill_from_metadata(meta, report, top)
            _score(report, meta, textrisk or TextRisk())
        elif path.suffix.lower() in PICKLE_SUFFIXES or zipfile.is_zipfile(path):
            _scan_pickle(path, report)
        else:
            report.error = "unsupported: not a safetensors file or a pickle checkpoint"
    except ModelFileError as exc:
        report.error = f"malformed: {exc}"
    except OSError as exc:
        report.error = f"unreadable: {exc.strerror or exc}"
    except zipfile.BadZipFile as exc:
        report.error = f"malformed: {exc}"
    return report


def _looks_like_safetensors(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            head = fh.read(9)
    except OSError:
        return False
    return len(head) == 9 and head[8:9] == b"{"


def _fill_from_metadata(meta: dict[str, str], report: ModelReport, top: int) -> None:
    report.metadata_keys = sorted(meta)
    report.name = meta.get("ss_output_name") or meta.get("modelspec.title") or meta.get("name")
    report.base_model = meta.get("ss_sd_model_name") or meta.get("modelspec.architecture")
    trig = meta.get("modelspec.trigger_phrase") or meta.get("ss_trigger_words") or meta.get("trigger_words")
    if trig:
        words = _json_field(meta, "ss_trigger_words") if trig.startswith("[") else None
        report.trigger_words = (
            [str(w) for w in words]
            if isinstance(words, list)
            else [w.strip() for w in trig.split(",") if w.strip()]
        )
    tags, report.dataset_dirs = training_vocabulary(meta)
    report.tag_count = len(tags)
    report.top_tags = sorted(tags.items(), key=lambda kv: (-kv[1], kv[0]))[:top]


def _score(report: ModelReport, meta: dict[str, str], tr: TextRisk) -> None:
    """The worst of: the names and trigger words, the folder names, and the training tags as one tag list."""
    texts = {
        "names": ", ".join(v for k in _TEXT_KEYS if (v := meta.get(k))),
        "dataset_dirs": ", ".join(report.dataset_dirs),
        "training_tags": ", ".join(t for t, _ in report.top_tags),
    }
    for where, text in texts.items():
        if not text:
            continue
        a = tr.assess(text, "model_tags")
        if a.score > report.score or (a.label != "none" and report.label == "none"):
            report.score, report.label, report.action = a.score, a.label, a.action
        if a.action != "allow":
            report.reasons += [{"producer": a.producer, "where": where, **r.to_json()} for r in a.reasons]
