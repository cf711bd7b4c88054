"""``vigie guard`` and ``vigie model-scan``: the command-line faces of the guard (registered by cli.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from vigie.errors import VigieError

console = Console(stderr=True)


def _engine() -> Any:
    from vigie.settings import Settings
    from vigie.textrisk import TextRisk, Thresholds

    s = Settings.from_env()
    return TextRisk(thresholds=Thresholds(review=s.text_review, block=s.text_block))


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n")


def guard(
    text: Annotated[str | None, typer.Argument(help="A prompt (or other text) to check.")] = None,
    negative: Annotated[str | None, typer.Option("--negative", help="The prompt's negative prompt.")] = None,
    kind: Annotated[
        str, typer.Option(help="prompt, negative_prompt, caption, tags, comment, model_tags")
    ] = "prompt",
    lang: Annotated[str | None, typer.Option(help="ISO 639-1 code; detected when not given.")] = None,
    file: Annotated[
        Path | None,
        typer.Option("--file", help='JSON lines {"id","text","kind"?,"negative"?,"lang"?}; "-" = stdin'),
    ] = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="JSON output (one object per line in batch mode).")
    ] = False,
    explain: Annotated[
        bool, typer.Option("--explain", help="Batch mode: add label reasons to each line.")
    ] = False,
) -> None:
    """Check prompts and texts for sexualisation of minors: allow, review or block, with reasons.

    Exit status: 0 when every text is allowed, 1 when one is sent to review or blocked, 2 on bad input.
    """
    engine = _engine()
    if file is not None:
        raise typer.Exit(_batch(engine, file, explain))
    if text is None:
        raise VigieError("give a text, or --file texts.jsonl")
    a = engine.assess(text, kind, negative, lang)
    if json_out:
        _emit(a.to_json())
    else:
        colour = {"allow": "green", "review": "yellow", "block": "red"}[a.action]
        console.print(f"[{colour}]{a.action}[/] {a.label} score {a.score:.2f} ({a.lang}, {a.stage})")
        for r in a.reasons:
            console.print(f"  {r.rule} {r.weight:+.2f}: {', '.join(r.terms)}")
    raise typer.Exit(0 if a.action == "allow" else 1)


def _batch(engine: Any, file: Path, explain: bool) -> int:
    """One output line per input line; a bad line is reported with its number and never stops the batch."""
    from vigie.textrisk import KINDS

    fh = sys.stdin if str(file) == "-" else file.open(encoding="utf-8", errors="replace")
    flagged = errors = 0
    with fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
                    raise ValueError('expected an object with a string "text"')
                kind = obj.get("kind") or "prompt"
                if kind not in KINDS:
                    raise ValueError(f"unknown kind {kind!r}")
                a = engine.assess(obj["text"], kind, obj.get("negative"), obj.get("lang"))
            except (ValueError, VigieError) as exc:
                errors += 1
                rid = obj.get("id") if isinstance(locals().get("obj"), dict) else None
                _emit({"id": rid, "error": f"line {n}: {exc}"})
                obj = None
                continue
            row: dict[str, Any] = {
                "id": obj.get("id"),
                "score": round(a.score, 4),
                "label": a.label,
                "action": a.action,
            }
            if explain:
                row["reasons"] = [r.to_json() for r in a.reasons]
            _emit(row)
            flagged += a.action != "allow"
            obj = None
    if errors:
        console.print(f"[red]{errors} bad line(s)[/] reported in the output")
        return 2
    return 1 if flagged else 0


def model_scan(
    files: Annotated[
        list[Path], typer.Argument(help="Model files: .safetensors, or pickle checkpoints to list.")
    ],
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object per file per line.")] = False,
    top: Annotated[int, typer.Option(help="How many of the most frequent training tags to keep.")] = 50,
) -> None:
    """Read model files without loading them and score their names, folders and training tags."""
    from vigie.guard.modelscan import scan_model

    engine = _engine()
    worst = 0
    for path in files:
        if not path.exists():
            raise VigieError(f"no such file: {path}")
        r = scan_model(path, engine, top=top)
        worst = max(worst, 0 if r.action == "allow" and not r.error else 1)
        if json_out:
            _emit(r.to_json())
            continue
        status = r.error or f"{r.action} {r.label} score {r.score:.2f}"
        console.print(f"[bold]{path}[/]: {r.format}{'' if r.safe_format else ' (unsafe format)'} — {status}")
        if r.name:
            console.print(f"  name: {r.name}   base model: {r.base_model or '?'}")
        if r.top_tags:
            console.print(f"  {r.tag_count} training tags, top: {', '.join(t for t, _ in r.top_tags[:10])}")
        if r.unsafe_imports:
            console.print(f"  [yellow]imports outside torch/numpy:[/] {', '.join(r.unsafe_imports)}")
        for reason in r.reasons:
            detail = ", ".join(map(str, reason.get("terms", []))) or reason.get("summary", "")
            console.print(f"  {reason.get('rule')}: {detail}")
    raise typer.Exit(worst)
