"""The ``vigie`` command: thin Typer wrappers over the library; no logic of its own."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from vigie import __version__
from vigie.errors import VigieError
from vigie.settings import Settings

app = typer.Typer(
    name="vigie",
    help="Hash, match, analyse and report media against banks of known material.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
bank_app = typer.Typer(help="Create, fill, export and remove hash banks.", no_args_is_help=True)
app.add_typer(bank_app, name="bank")
console = Console(stderr=True)
out = Console(highlight=False, soft_wrap=True)


class BankKind(StrEnum):
    match = "match"
    allow = "allow"


class NameBy(StrEnum):
    sha256 = "sha256"
    name = "name"
    path = "path"


class ImportFormat(StrEnum):
    csv = "csv"
    te = "te"
    vics = "vics"
    hashlist = "hashlist"


def _settings() -> Settings:
    return Settings.from_env()


def _store() -> Any:
    from vigie.banks import BankStore
    from vigie.store import open_db

    s = _settings()
    s.home.mkdir(parents=True, exist_ok=True)
    return BankStore(open_db(s.db_url))


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")


@app.callback(invoke_without_command=True)
def _root(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
) -> None:
    if version:
        out.print(f"vigie {__version__}")
        raise typer.Exit()


# ------------------------------------------------------------------------------------------------- hash
@app.command("hash")
def hash_cmd(
    files: Annotated[list[Path], typer.Argument(help="Files, folders or archives.")],
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object per item per line.")] = False,
    variants: Annotated[
        bool,
        typer.Option(
            "--variants",
            help="With --json, also an image's other query hashes (flips, rotations, the picture inside a "
            "frame or under a caption, band cuts, each picture of a contact sheet) as pdq_variants, to send "
            "with a hash-only item.",
        ),
    ] = False,
    keypoints: Annotated[
        bool,
        typer.Option(
            "--keypoints",
            help="With --json, implies --variants: also an image's ORB keypoints (positions and "
            "descriptors, no pixels, but enough for a coarse likeness of the picture) as keypoints, so a "
            "hash-only item of a tilted, cropped or overlaid copy is verified as its upload would be. "
            "Needs vigie[verify].",
        ),
    ] = False,
) -> None:
    """Print md5, sha1, sha256 and PDQ (vPDQ for video) of every item."""
    from vigie.media import list_inputs
    from vigie.signals import features, hash_path

    if (variants or keypoints) and not json_out:
        flag = "--keypoints" if keypoints else "--variants"
        raise VigieError(f"{flag} adds to the JSON records: use it with --json")
    if keypoints and not features.available():
        raise VigieError("--keypoints needs OpenCV: pip install 'vigie[verify]'")
    variants |= keypoints
    s = _settings()
    table = Table("path", "pdq", "q", "sha256", "error")
    failed = False
    for path in list_inputs(files):
        for sig in hash_path(path, s.limits, vpdq_fps=s.vpdq_fps, dihedral=variants, keypoints=keypoints):
            failed |= bool(sig.error)
            if json_out:
                _emit(sig.to_json(variants=variants))
            else:
                table.add_row(
                    sig.path, sig.pdq or "-", str(sig.pdq_quality or "-"), sig.sha256 or "-", sig.error
                )
    if not json_out:
        out.print(table)
    raise typer.Exit(1 if failed else 0)


# ------------------------------------------------------------------------------------------------ banks
@bank_app.command("create")
def bank_create(
    name: str,
    kind: Annotated[BankKind, typer.Option(help="match: known material; allow: known false positives.")] = (
        BankKind.match
    ),
    pdq_threshold: Annotated[int, typer.Option(min=0, max=256, help="Max PDQ distance.")] = 31,
    min_quality: Annotated[int, typer.Option(min=0, max=100, help="Min PDQ quality to match.")] = 50,
    description: Annotated[str, typer.Option(help="Free text.")] = "",
) -> None:
    """Create an empty bank."""
    _store().create_bank(
        name,
        kind=kind.value,
        pdq_threshold=pdq_threshold,
        pdq_min_quality=min_quality,
        description=description,
    )
    out.print(f"created {kind.value} bank [bold]{name}[/] (pdq ≤ {pdq_threshold}, quality ≥ {min_quality})")


@bank_app.command("list")
def bank_list(json_out: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List banks with their thresholds and entry counts."""
    banks = _store().list_banks()
    if json_out:
        for b in banks:
            _emit(
                {
                    "name": b.name,
                    "kind": b.kind,
                    "pdq_threshold": b.pdq_threshold,
                    "pdq_min_quality": b.pdq_min_quality,
                    "entries": b.entry_count,
                }
            )
        return
    table = Table("bank", "kind", "pdq ≤", "quality ≥", "entries", "description")
    for b in banks:
        table.add_row(
            b.name, b.kind, str(b.pdq_threshold), str(b.pdq_min_quality), str(b.entry_count), b.description
        )
    out.print(table)


@bank_app.command("import")
def bank_import(
    name: str,
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    fmt: Annotated[ImportFormat, typer.Option("--format", "-f", help="File format.")] = ImportFormat.csv,
) -> None:
    """Import entries; the file lands whole or not at all, with every bad line named."""
    n = _store().import_file(name, file, fmt.value)
    out.print(f"imported {n} entries into [bold]{name}[/]")


@bank_app.command("export")
def bank_export(
    name: str,
    file: Annotated[Path, typer.Argument(dir_okay=False, help="Output file, '-' for stdout.")],
    fmt: Annotated[ImportFormat, typer.Option("--format", "-f")] = ImportFormat.csv,
) -> None:
    """Export a bank's entries."""
    store = _store()
    if str(file) == "-":
        n = store.export(name, fmt.value, sys.stdout)
    else:
        with file.open("w", encoding="utf-8", newline="") as fh:
            n = store.export(name, fmt.value, fh)
    console.print(f"exported {n} entries from {name}")


@bank_app.command("remove")
def bank_remove(
    name: str,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Remove a bank and all its entries."""
    if not yes and sys.stdin.isatty():
        typer.confirm(f"Remove bank {name} and all its entries?", abort=True)
    _store().remove_bank(name)
    out.print(f"removed bank {name}")


@bank_app.command("add")
def bank_add(
    name: str,
    files: Annotated[list[Path], typer.Argument(help="Media files, folders or archives to hash and add.")],
    category: Annotated[str | None, typer.Option(help="Category label.")] = None,
    source: Annotated[str | None, typer.Option(help="Where the material came from.")] = None,
    ai_generated: Annotated[
        bool | None, typer.Option("--ai-generated/--not-ai-generated", help="Known synthetic or not.")
    ] = None,
    note: Annotated[str | None, typer.Option(help="Free text.")] = None,
    derived: Annotated[
        bool,
        typer.Option(
            "--derived/--no-derived",
            help="Also store PDQs of standard crops, tilts and band cuts (video: zoomed, filled frames).",
        ),
    ] = True,
    name_by: Annotated[
        NameBy,
        typer.Option(
            "--name-by",
            help="What names each file in its entries' external_id, which every match and export carries: "
            "sha256 (default; seized files' names and folders can identify people or describe content), "
            "name (the file name) or path.",
        ),
    ] = NameBy.sha256,
) -> None:
    """Hash media files and add their md5, sha1, sha256 and PDQ (and PDQs of crops, tilts, cuts) to a bank."""
    from vigie.banks.ingest import entries_for_paths

    s = _settings()
    store = _store()
    bank = store.get_bank(name)
    labels = {"source": source, "category": category, "ai_generated": ai_generated, "note": note}
    entries: list[Any] = []
    skipped = 0
    found = entries_for_paths(
        files, bank, s.limits, labels, derived=derived, vpdq_fps=s.vpdq_fps, name_by=name_by.value
    )
    for got in found:
        if isinstance(got, str):
            console.print(f"[yellow]{got}[/]")
            skipped += got.startswith("skipped")
        else:
            entries.append(got)
    n = store.add_entries(name, entries)
    out.print(f"added {n} entries to [bold]{name}[/]" + (f", {skipped} file(s) skipped" if skipped else ""))


# ------------------------------------------------------------------------------------------------ match
def _found_by(m: dict[str, Any]) -> str:
    """A match's transform, with its verification evidence in words when the second stage found it."""
    from vigie.scan.report import evidence_words

    if ev := m.get("verification"):
        return f"verified: {evidence_words(ev)}"
    return str(m.get("transform") or "")


@app.command("match")
def match_cmd(
    files: Annotated[list[Path], typer.Argument(help="Files, folders or archives.")],
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object per item per line.")] = False,
) -> None:
    """Match items against every bank."""
    from vigie.analyzers.coverage import coverage_findings
    from vigie.banks.matcher import Matcher
    from vigie.media import Item, iter_file, list_inputs
    from vigie.pipeline import PipelineContext, error_result, process_item
    from vigie.store import open_db

    s = _settings()
    s.home.mkdir(parents=True, exist_ok=True)
    matcher = Matcher.open(open_db(s.db_url), s.index_dir)
    ctx = PipelineContext(limits=s.limits, matcher=matcher, vpdq_fps=s.vpdq_fps)
    table = Table("path", "bank", "signal", "distance", "entry", "category", "found by")
    for path in list_inputs(files):
        for obj in iter_file(path, s.limits):
            res = process_item(obj, ctx) if isinstance(obj, Item) else error_result(obj)
            # what produced each match (a flip, a derived crop, verified evidence) travels with it
            keep = ("bank", "signal", "distance", "entry_id", "labels", "transform", "verification")
            matches = [{k: m[k] for k in keep if k in m} for m in res.matches]
            # pdq_quality under 50: not matched by PDQ distance (PDQ's rule), said rather than silent
            if json_out:
                _emit(
                    {"path": res.path, "matches": matches, "error": res.error, "pdq_quality": res.pdq_quality}
                )
            else:
                for m in matches:
                    table.add_row(
                        res.path,
                        m["bank"],
                        m["signal"],
                        str(m["distance"]),
                        m["entry_id"],
                        str(m["labels"].get("category") or ""),
                        _found_by(m),
                    )
                if res.error:
                    table.add_row(res.path, "-", "-", "-", "-", f"[red]{res.error}[/]", "")
                else:
                    for f in coverage_findings(None, res.pdq_quality):
                        table.add_row(res.path, "-", "-", "-", "-", f"[yellow]{f.summary}[/]", "")
    if not json_out:
        out.print(table if table.row_count else "no matches")


# ------------------------------------------------------------------------------------------------- scan
@app.command("scan")
def scan_cmd(
    paths: Annotated[list[Path] | None, typer.Argument(help="Files, folders or archives.")] = None,
    report: Annotated[
        list[Path] | None, typer.Option("--report", "-r", help="out.html, out.json or out.csv; repeatable.")
    ] = None,
    workers: Annotated[int, typer.Option("--workers", "-w", min=0, help="Worker processes (0: inline).")] = 2,
    resume: Annotated[bool, typer.Option("--resume", help="Continue an interrupted scan.")] = False,
    journal: Annotated[
        Path | None, typer.Option(help="Scan journal (default: next to the first report).")
    ] = None,
    thumbnails: Annotated[
        bool, typer.Option("--thumbnails", help="Embed blurred thumbnails of flagged items in HTML.")
    ] = False,
    analyzers: Annotated[bool, typer.Option("--analyzers/--no-analyzers", help="Run analyzers.")] = True,
) -> None:
    """Scan files, folders and archives against every bank; write reports; resumable."""
    from vigie.scan.report import report_format, write_report
    from vigie.scan.runner import ScanOptions, run_scan

    reports = report or []
    for r in reports:
        report_format(r)
    if not paths and not resume:
        raise VigieError("nothing to scan: give one or more paths (or --resume)")
    jpath = journal or (
        reports[0].with_name(reports[0].name + ".journal") if reports else Path("vigie-scan.journal")
    )
    jpath.parent.mkdir(parents=True, exist_ok=True)
    s = _settings()
    opts = ScanOptions(workers=workers, analyzers=analyzers, thumbnails=thumbnails)
    with Progress(
        TextColumn("[bold]scanning"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[items]} items"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as bar:
        task = bar.add_task("scan", total=None, items=0)

        def progress(done: int, total: int, items: int) -> None:
            bar.update(task, completed=done, total=total, items=items)

        outcome = run_scan(paths or [], jpath, s, opts, resume=resume, progress=progress)
    for r in reports:
        write_report(r, outcome.summary, outcome.results, outcome.clusters)
    sm = outcome.summary
    table = Table(show_header=False, title="scan summary", title_justify="left")
    for label, value in [
        ("inputs", sm.inputs),
        ("items", sm.items),
        ("matched items", sm.matched_items),
        ("suppressed by allow banks", sm.suppressed_items),
        ("with AI-generation evidence", sm.ai_evidence_items),
        ("duplicate clusters", f"{sm.clusters} ({sm.items_in_clusters} items)"),
        ("errors", sm.errors),
        ("banks", ", ".join(sm.banks) or "none"),
        ("items/s", sm.items_per_s),
    ]:
        table.add_row(label, str(value))
    out.print(table)
    for r in reports:
        out.print(f"report: {r}")


def _register_optional() -> None:
    """Commands that live with their modules (analyzers, service, guard); absent ones add nothing."""
    try:
        from vigie.analyzers.commands import c2pa_trust_app, inspect

        app.command("inspect")(inspect)
        app.add_typer(c2pa_trust_app, name="c2pa-trust")
    except ImportError:
        pass
    try:
        from vigie.service.commands import keys_app, serve, worker

        app.command("serve")(serve)
        app.command("worker")(worker)
        app.add_typer(keys_app, name="keys")
    except ImportError:
        pass
    try:
        from vigie.guard.commands import guard, model_scan

        app.command("guard")(guard)
        app.command("model-scan")(model_scan)
    except ImportError:
        pass


_register_optional()


def main() -> None:
    """Console entry point: a VigieError or an OSError becomes a one-line message and exit code 2, never a
    traceback."""
    try:
        app()
    except (VigieError, OSError) as exc:  # OSError: a file in a missing folder, a full disk, no permission
        text = str(exc)
        if isinstance(exc, OSError):
            text = (f"{exc.filename}: " if exc.filename else "") + str(exc.strerror or exc)
        console.print(f"[red]error:[/] {text}", markup=True, highlight=False, soft_wrap=True)  # one line
        sys.exit(2)
    except KeyboardInterrupt:
        console.print("interrupted")
        sys.exit(130)
