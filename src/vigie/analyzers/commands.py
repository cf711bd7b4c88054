"""`vigie inspect`: every finding the analyzers make about files, for a person or as JSON lines."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from vigie.analyzers import analyze_item, default_analyzers
from vigie.media import Item, iter_file, list_inputs
from vigie.settings import Settings

CONTRACT_KEYS = ("analyzer", "kind", "ai_generated", "generator", "confidence", "evidence")


def inspect(
    files: Annotated[list[Path], typer.Argument(help="Files, folders or archives.")],
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object per item per line.")] = False,
) -> None:
    """Show AI-generation and provenance evidence found in files (metadata is a claim, not proof)."""
    settings = Settings.from_env()
    analyzers = default_analyzers()
    console = Console(highlight=False, soft_wrap=True)
    for path in list_inputs(files):
        for obj in iter_file(path, settings.limits):
            if not isinstance(obj, Item):
                record: dict[str, Any] = {
                    "path": obj.path,
                    "findings": [],
                    "error": f"{obj.reason}: {obj.message}",
                }
            else:
                found = analyze_item(obj, analyzers)
                record = {
                    "path": obj.path,
                    "findings": [{k: f.to_dict()[k] for k in CONTRACT_KEYS} for f in found],
                    "error": None,
                }
                record["_summaries"] = [f.summary for f in found]
            if json_out:
                record.pop("_summaries", None)
                sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
                continue
            _print(console, record)


def _print(console: Console, record: dict[str, Any]) -> None:
    console.print(f"[bold]{record['path']}[/]")
    if record["error"]:
        console.print(f"  [red]{record['error']}[/]")
        return
    if not record["findings"]:
        console.print("  no provenance or AI-generation evidence found")
        return
    table = Table("analyzer", "finding", "AI-generated", "confidence", "details", show_lines=True)
    for f, summary in zip(record["findings"], record["_summaries"], strict=True):
        ev = {k: v for k, v in f["evidence"].items() if k not in ("claim",)}
        details = "\n".join(f"{k}: {str(v)[:120]}" for k, v in ev.items())
        ai = {True: "yes", False: "no", None: "-"}[f["ai_generated"]]
        table.add_row(f["analyzer"], summary or f["kind"], ai, f"{f['confidence']:.2f}", details)
    console.print(table)
    console.print("  [dim]Metadata is a claim written by software: it can be forged or stripped.[/]")


c2pa_trust_app = typer.Typer(
    help="The C2PA trust anchors that decide whether a signed manifest is Trusted.", no_args_is_help=True
)


@c2pa_trust_app.command("show")
def trust_show(
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """Which anchors are in force, where they come from, and when each expires."""
    from vigie.analyzers.c2pa_trust import expired, resolve

    found = resolve(Settings.from_env().home)
    gone = expired(found)
    if json_out:
        anchors = [{"subject": a.subject, "not_after": a.not_after.isoformat()} for a in found.anchors]
        record = {"source": found.source, "anchors": anchors, "expired": len(gone)}
        sys.stdout.write(json.dumps(record) + "\n")
        return
    console = Console(highlight=False, soft_wrap=True)
    console.print(f"{found.label}")
    table = Table("subject", "expires")
    for a in found.anchors:
        table.add_row(a.subject, a.not_after.date().isoformat() + (" [red](expired)[/]" if a in gone else ""))
    console.print(table)


@c2pa_trust_app.command("update")
def trust_update(
    pem: Annotated[Path, typer.Argument(help="PEM file of trust anchors, e.g. a newer C2PA-TRUST-LIST.pem")],
) -> None:
    """Validate a PEM file and make it the anchors in force for this VIGIE_HOME."""
    from vigie.analyzers.c2pa_trust import install

    found = install(pem, Settings.from_env().home)
    Console(highlight=False).print(f"installed {len(found.anchors)} trust anchors: {found.source}")


@c2pa_trust_app.command("reset")
def trust_reset() -> None:
    """Go back to the C2PA Trust List shipped with vigie."""
    from vigie.analyzers.c2pa_trust import SHIPPED, reset

    removed = reset(Settings.from_env().home)
    done = "removed the installed anchors; " if removed else ""
    Console(highlight=False).print(f"{done}in force: {SHIPPED}")
