"""Run a scan: enumerate inputs, fan them out to worker processes, journal every result, then cluster."""

from __future__ import annotations

import base64
import io
import multiprocessing as mp
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vigie.media.image import open_checked
from vigie.media.item import Item
from vigie.pipeline import ItemResult, PipelineContext, error_result, process_item
from vigie.scan.cluster import Cluster, cluster_results
from vigie.scan.journal import Journal
from vigie.settings import Settings

Progress = Callable[[int, int, int], None]
"""Called with (inputs done, inputs total, items so far) after each input."""


@dataclass(frozen=True)
class ScanOptions:
    """How a scan runs; stored in the journal so ``--resume`` continues the same way."""

    workers: int = 2
    analyzers: bool = True
    thumbnails: bool = False
    cluster_radius: int = 31


@dataclass
class ScanSummary:
    """Counts an analyst reads first."""

    inputs: int = 0
    items: int = 0
    errors: int = 0
    matched_items: int = 0
    suppressed_items: int = 0
    ai_evidence_items: int = 0
    clusters: int = 0
    items_in_clusters: int = 0
    banks: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0
    items_per_s: float = 0.0
    resumed: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ScanOutcome:
    summary: ScanSummary
    results: list[dict[str, Any]]
    clusters: list[Cluster]


# ---------------------------------------------------------------------------------------------- workers
_CTX: PipelineContext | None = None
_THUMBS = False


def _build_context(settings: Settings, analyzers: bool) -> PipelineContext:
    matcher = None
    from vigie.banks import BankStore
    from vigie.banks.matcher import Matcher
    from vigie.store import open_db

    db = open_db(settings.db_url)
    if BankStore(db).list_banks():
        matcher = Matcher.open(db, settings.index_dir)
    found: list[Any] = []
    if analyzers:
        try:
            from vigie.analyzers import default_analyzers
        except ImportError:
            pass
        else:
            found = list(default_analyzers())
    return PipelineContext(
        limits=settings.limits, matcher=matcher, analyzers=found, vpdq_fps=settings.vpdq_fps
    )


def _init_worker(settings: Settings, analyzers: bool, thumbnails: bool) -> None:
    global _CTX, _THUMBS
    _CTX = _build_context(settings, analyzers)
    _THUMBS = thumbnails


def _thumbnail(item: Item) -> str | None:
    """A small JPEG as a data URI; the HTML report shows it blurred until the analyst reveals it."""
    src = open_checked(item)  # only what hashing would open: no bombs, no formats vigie does not read
    if src is None:
        return None
    try:
        with src:
            src.draft("RGB", (160, 160))
            im = src.convert("RGB")
            im.thumbnail((160, 160))
            buf = io.BytesIO()
            im.save(buf, "JPEG", quality=70)
    except Exception:
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def process_input(task: tuple[int, str]) -> tuple[int, list[dict[str, Any]]]:
    """All results of one top-level input; never raises, so one bad file never stops a scan."""
    from vigie.media import iter_file

    seq, path = task
    assert _CTX is not None, "worker not initialised"
    out: list[dict[str, Any]] = []
    try:
        for obj in iter_file(Path(path), _CTX.limits):
            if isinstance(obj, Item):
                res = process_item(obj, _CTX)
                if _THUMBS and (res.matches or res.ai_evidence) and not res.error:
                    res.thumbnail = _thumbnail(obj)
            else:
                res = error_result(obj)
            out.append(res.to_json())
    except Exception as exc:  # a bug in a lower layer: record it against the file and go on
        out.append(ItemResult(path=path, error=f"internal: {type(exc).__name__}: {exc}").to_json())
    return seq, out


# ------------------------------------------------------------------------------------------------- main
def run_scan(
    paths: Sequence[Path],
    journal_path: Path,
    settings: Settings,
    options: ScanOptions | None = None,
    resume: bool = False,
    progress: Progress | None = None,
) -> ScanOutcome:
    """Scan ``paths`` (files, folders, archives), or continue the scan journaled at ``journal_path``."""
    from vigie.media import list_inputs

    start = time.perf_counter()
    if resume:
        journal = Journal.resume(journal_path)
        options = ScanOptions(**journal.options)
    else:
        options = options or ScanOptions()
        journal = Journal.create(journal_path, list_inputs(list(paths)), asdict(options))
    try:
        banks = _prepare_matcher(settings)
        pending = journal.pending()
        total, done = journal.counts()
        items = 0
        for seq, results in _execute(pending, settings, options):
            journal.record(seq, results)
            done += 1
            items += len(results)
            if progress:
                progress(done, total, items)
        journal.mark_finished()
        results = list(journal.results())
    finally:
        journal.close()
    clusters = cluster_results(results, radius=options.cluster_radius)
    summary = summarize(results, clusters, total)
    summary.banks = banks
    summary.resumed = resume
    summary.elapsed_s = round(time.perf_counter() - start, 3)
    summary.items_per_s = round(items / summary.elapsed_s, 2) if summary.elapsed_s else 0.0
    return ScanOutcome(summary, results, clusters)


def _prepare_matcher(settings: Settings) -> list[str]:
    """Bring the on-disk index snapshot up to date once, so workers only memory-map it."""
    from vigie.banks import BankStore
    from vigie.banks.matcher import Matcher
    from vigie.store import open_db

    settings.home.mkdir(parents=True, exist_ok=True)
    db = open_db(settings.db_url)
    banks = [b.name for b in BankStore(db).list_banks()]
    if banks:
        Matcher.open(db, settings.index_dir).save_snapshot()
    return banks


def _execute(pending: list[tuple[int, str]], settings: Settings, options: ScanOptions) -> Any:
    if not pending:
        return
    if options.workers <= 0:
        _init_worker(settings, options.analyzers, options.thumbnails)
        yield from map(process_input, pending)
        return
    ctx = mp.get_context("spawn")
    with ctx.Pool(
        options.workers,
        initializer=_init_worker,
        initargs=(settings, options.analyzers, options.thumbnails),
    ) as pool:
        yield from pool.imap_unordered(process_input, pending, chunksize=1)


def summarize(results: Sequence[dict[str, Any]], clusters: Sequence[Cluster], inputs: int) -> ScanSummary:
    return ScanSummary(
        inputs=inputs,
        items=len(results),
        errors=sum(1 for r in results if r.get("error")),
        matched_items=sum(1 for r in results if r.get("matches")),
        suppressed_items=sum(1 for r in results if r.get("suppressed") and not r.get("matches")),
        ai_evidence_items=sum(1 for r in results if r.get("ai_evidence")),
        clusters=len(clusters),
        items_in_clusters=sum(len(c.members) for c in clusters),
    )
