"""Write scan reports: JSON (everything), CSV (one row per item) and HTML (for an analyst to read)."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

from vigie import __version__
from vigie.errors import ConfigError
from vigie.scan.cluster import Cluster
from vigie.scan.runner import ScanSummary
from vigie.signals.pdq import MIN_QUALITY, MIRROR

FORMATS = ("html", "json", "csv")
CSV_COLUMNS = [
    "path",
    "media_type",
    "size",
    "md5",
    "sha1",
    "sha256",
    "pdq",
    "pdq_quality",
    "matched",
    "banks",
    "best_distance",
    "categories",
    "suppressed_by",
    "ai_evidence",
    "cluster",
    "error",
]


def report_format(path: Path) -> str:
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise ConfigError(f"report {path}: unknown format {fmt!r}; use a .html, .json or .csv file name")
    return fmt


def write_report(
    path: Path,
    summary: ScanSummary,
    results: Sequence[dict[str, Any]],
    clusters: Sequence[Cluster],
) -> None:
    """Write one report; the format follows the file name's suffix."""
    fmt = report_format(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cluster_of = {m: c.id for c in clusters for m in c.members}
    if fmt == "json":
        doc = {
            "vigie": __version__,
            "generated_at": _now(),
            "summary": summary.to_json(),
            "items": [{**r, "cluster": cluster_of.get(r["path"])} for r in results],
            "clusters": [c.to_json() for c in clusters],
        }
        path.write_text(json.dumps(doc, indent=1), encoding="utf-8")
    elif fmt == "csv":
        with path.open("w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=CSV_COLUMNS, extrasaction="ignore")
            w.writeheader()
            for r in results:
                w.writerow(_csv_row(r, cluster_of.get(r["path"])))
    else:
        path.write_text(render_html(summary, results, clusters, cluster_of), encoding="utf-8")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _csv_row(r: dict[str, Any], cluster: int | None) -> dict[str, Any]:
    matches = r.get("matches") or []
    return {
        **{k: r.get(k) for k in CSV_COLUMNS if k in r},
        "matched": bool(matches),
        "banks": ";".join(sorted({m["bank"] for m in matches})),
        "best_distance": min((m["distance"] for m in matches), default=""),
        "categories": ";".join(sorted({str(m["labels"].get("category")) for m in matches} - {"None"})),
        "suppressed_by": ";".join(sorted({m["bank"] for m in r.get("suppressed") or []})),
        "cluster": cluster if cluster is not None else "",
    }


_ITEM_WORDS = {
    "mirror_lr": "mirror image (left–right)",
    "mirror_tb": "mirror image (top–bottom)",
    "rot90": "copy turned 90°",
    "rot180": "copy turned 180°",
    "rot270": "copy turned 270°",
    "transpose": "mirror image across a diagonal",
    "transverse": "mirror image across the other diagonal",
    "trim": "picture inside its bars or frame",
    "trim_strict": "picture inside its bars, peeled to the grey level",
    "trim_caption": "picture under or over its caption band",
    "trim_inner": "picture inside its page layout",
    "cut_top": "picture without its top quarter",
    "cut_bottom": "picture without its bottom quarter",
    "centre_16x9": "middle band",
    "centre_9x16": "middle column",
}
_CELL = re.compile(r"cell_(\d+)_(\d+)(?:_cut_(top|bottom))?")
_SHEET_CELL = re.compile(r"sheet_cell_(\d+)_(\d+)")


def _item_words(name: str) -> str | None:
    if name in _ITEM_WORDS:
        return _ITEM_WORDS[name]
    if name.endswith(MIRROR) and (base := _item_words(name.removesuffix(MIRROR))):
        return f"{base}, mirrored left–right"
    if cell := _CELL.fullmatch(name):
        cut = f", without its {cell[3]} quarter" if cell[3] else ""
        return f"picture in row {cell[1]}, column {cell[2]} of its grid (a contact sheet or collage){cut}"
    return None


def _entry_words(name: str) -> str:
    cell = _SHEET_CELL.fullmatch(name)
    if cell:
        return f"picture in row {cell[1]}, column {cell[2]} of the known contact sheet or collage"
    return f"derived {name}"


def transform_words(name: str) -> str:
    """What a match's ``transform`` says, in words for a reviewer: the item's side (a flip, a turn, the
    picture inside bars, one picture of a grid) and, after ``+``, the bank entry's derived crop, tilt, cut
    or picture of a known grid it met."""
    if name == "verified":
        return (
            "a second-stage check: keypoints that agree under one rotation and scale, or the stable bits "
            "of a bank entry whose PDQ is weak (see the evidence)"
        )
    for i, ch in enumerate(name):  # "<item's variant>+<entry's derived>"; derived names may hold a "+"
        if ch == "+" and (item := _item_words(name[:i])):
            return f"the item's {item}, against the bank entry's {_entry_words(name[i + 1 :])}"
    if item := _item_words(name):
        item = f"the item's {item}"
        return f"{item}, or the bank entry's derived {name}" if name.startswith("cut_") else item
    if _SHEET_CELL.fullmatch(name):
        return f"the bank entry's {_entry_words(name)}"
    return f"the bank entry's derived {name} (a crop, tilt or cut of the known image)"


def evidence_words(ev: dict[str, Any]) -> str:
    """A verified match's evidence in a few words: what the second stage saw, and how much of it."""
    if ev.get("method") == "PDQ stable bits":
        words = f"{ev.get('differing')} of its {ev.get('stable_bits')} stable bits differ"
    elif "inliers" in ev:
        words = (
            f"{ev['inliers']} keypoints agree, turned {ev.get('rotation_deg')}°, scaled ×{ev.get('scale')}"
        )
    else:
        words = str(ev.get("method") or "verified")
    where = [f"on {_item_words(c) or c}" for c in (ev.get("cell"),) if c]
    if ev.get("mirrored"):
        where.append("on its mirror image")
    return ", ".join([words, *where])


def render_html(
    summary: ScanSummary,
    results: Sequence[dict[str, Any]],
    clusters: Sequence[Cluster],
    cluster_of: dict[str, int],
) -> str:
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    env.filters["transform_words"] = transform_words
    env.filters["evidence_words"] = evidence_words
    template = env.from_string(
        resources.files("vigie.scan").joinpath("templates/report.html.j2").read_text(encoding="utf-8")
    )
    matched = [r for r in results if r.get("matches")]
    matched.sort(key=lambda r: min(m["distance"] for m in r["matches"]))
    return template.render(
        version=__version__,
        generated_at=_now(),
        summary=summary,
        matched=matched,
        suppressed=[r for r in results if r.get("suppressed") and not r.get("matches")],
        ai_items=[r for r in results if r.get("ai_evidence")],
        errors=[r for r in results if r.get("error")],
        # images too flat for PDQ: an analyst must not read "no match" as "checked for near copies"
        exact_only=[
            r
            for r in results
            if not r.get("error") and (q := r.get("pdq_quality")) is not None and q < MIN_QUALITY
        ],
        min_quality=MIN_QUALITY,
        clusters=clusters,
        cluster_of=cluster_of,
        thumbnails=any(r.get("thumbnail") for r in results),
    )
