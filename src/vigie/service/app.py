"""The FastAPI application: hash-only lookups and bank management behind scoped API keys."""

import gc
import os
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
import anyio.to_thread
from fastapi import Depends, FastAPI, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator
from starlette.exceptions import HTTPException

from vigie import __version__
from vigie.banks import BankStore, EntryIn
from vigie.banks.matcher import Matcher
from vigie.banks.model import has_nul
from vigie.banks.store import BANK_KINDS
from vigie.errors import ConfigError, ImportFormatError, LineError, SignalError
from vigie.pipeline import verified_match_dicts
from vigie.policy import Policy, load_policy
from vigie.service import idempotency, openapi, problems
from vigie.service.forms import FormError, parse_form
from vigie.service.items import Items, Outcome
from vigie.service.keys import KeyInfo, KeyStore
from vigie.service.webhooks import dead_letters, requeue
from vigie.settings import Settings
from vigie.signals.item import sent_signals
from vigie.signals.types import SIGNAL_TYPES, signal_type
from vigie.signals.views import SentViews
from vigie.store import open_db
from vigie.store.vault import Vault

MAX_BODY_BYTES = 64 * 1024 * 1024
MAX_LOOKUP_VALUES = 1000
MAX_ENTRY_ID = 2**63 - 1
"""Entry ids are 64-bit: a larger one names no entry (and overflowed SQLite's integers: a 500)."""


def _hex(n: int) -> dict[str, Any]:
    """Documents a hash as hex in the schema; the signal types check it (and accept upper case)."""
    return {"pattern": f"^[0-9a-fA-F]{{{n}}}$"}


def _hex_values(n: int) -> Any:
    """A lookup body's list of one signal's values."""
    extra: dict[str, Any] = {"items": {"type": "string", **_hex(n)}}
    return Field(default_factory=list, max_length=MAX_LOOKUP_VALUES, json_schema_extra=extra)


KEY_CACHE_S = 2.0  # a revoked key stops working within this many seconds


class LookupIn(BaseModel):
    """Signals a platform computed itself (privacy mode: the media never leaves the platform)."""

    model_config = ConfigDict(extra="forbid")
    pdq: list[str] = _hex_values(64)
    md5: list[str] = _hex_values(32)
    sha1: list[str] = _hex_values(40)
    sha256: list[str] = _hex_values(64)
    pdq_quality: int | None = Field(default=None, ge=0, le=100, description="quality of the PDQ hashes sent")


class MatchOut(BaseModel):
    bank: str
    entry_id: str
    distance: int
    labels: dict[str, Any]
    verification: dict[str, Any] | None = Field(
        default=None,
        description="Present when the second stage matched a PDQ past the bank's threshold: a weak entry's "
        "stable bits, which the hash keeps (method, stable_bits, differing).",
    )


class LookupResult(BaseModel):
    signal: str
    value: str
    matches: list[MatchOut]


class LookupOut(BaseModel):
    results: list[LookupResult]


class BankIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64)
    kind: str = Field(default="match", json_schema_extra={"enum": list(BANK_KINDS)})
    pdq_threshold: int = Field(default=31, ge=0, le=256)
    pdq_min_quality: int = Field(default=50, ge=0, le=100)
    description: str = ""


class EntryModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    signal_type: str = Field(json_schema_extra={"enum": list(SIGNAL_TYPES)})
    value: str
    source: str | None = None
    category: str | None = None
    ai_generated: bool | None = None
    external_id: str | None = None
    note: str | None = None
    enabled: bool = True
    extra: dict[str, Any] | None = None


class EntriesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    entries: list[EntryModel] = Field(min_length=1, max_length=100_000)


class IdsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ids: list[Annotated[int, Field(ge=1, le=MAX_ENTRY_ID)]] = Field(min_length=1, max_length=100_000)


class ItemContext(BaseModel):
    """What the platform knows of an item, all optional: recorded with it; captions and prompts are scored
    for text risk. The same fields and limits for an upload's form parts as for a JSON item."""

    model_config = ConfigDict(extra="forbid")
    external_id: str | None = Field(
        default=None, max_length=512, description="The platform's id of the item."
    )
    uploader_id: str | None = Field(
        default=None, max_length=512, description="The platform's id of its uploader."
    )
    url: str | None = Field(default=None, max_length=4096, description="Where the item is or will be shown.")
    caption: str | None = Field(default=None, max_length=100_000, description="Text posted with it.")
    prompt: str | None = Field(default=None, max_length=100_000, description="The prompt that generated it.")

    @field_validator("*")
    @classmethod
    def _no_nul(cls, v: Any) -> Any:
        if has_nul(v):  # PostgreSQL stores no U+0000; refused on SQLite too, so both answer alike
            raise ValueError("holds a NUL character (U+0000)")
        return v


MAX_VPDQ_FRAMES = 36_000
"""Frames one privacy-mode video may carry: ten hours at one a second."""
MAX_PDQ_VARIANTS = 256
"""Other query hashes one privacy-mode image or frame may carry: ``vigie hash --variants`` prints ~15, and
three more for each picture of a contact sheet or collage (the picture and its two band cuts, up to 8×8)."""
VariantName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
Hex64 = Annotated[str, Field(pattern=r"^[0-9a-fA-F]{64}$")]
Variants = Annotated[dict[VariantName, Hex64], Field(max_length=MAX_PDQ_VARIANTS)]
_Seconds = Annotated[float, Field(ge=0, allow_inf_nan=False)]
_Quality = Annotated[int, Field(ge=0, le=100)]
VpdqFrame = tuple[_Seconds, Hex64, _Quality] | tuple[_Seconds, Hex64, _Quality, Variants]


_PACKED_CHARS = 4 * -(-(2 + 36 * 1000) // 3)  # base64 of the most keypoints a view may carry
_Packed = Annotated[str, StringConstraints(max_length=_PACKED_CHARS, pattern=r"^[A-Za-z0-9+/]*={0,2}$")]


class MirroredKeypointsIn(BaseModel):
    """The same looks of the image's left–right mirror (ORB keypoints are not mirror-invariant)."""

    model_config = ConfigDict(extra="forbid")
    views: list[_Packed] = Field(
        min_length=1, max_length=2, description="The whole image's, then the picture inside its frame."
    )
    spread: _Packed | None = Field(None, description="The second look: keypoints spread over a grid.")


class KeypointsIn(MirroredKeypointsIn):
    """An image's keypoint views, as ``vigie hash --json --keypoints`` prints them: ORB keypoints (float16
    positions on the image scaled to 512 px, 32-byte descriptors), base64, never pixels; never stored."""

    mirrored: MirroredKeypointsIn | None = Field(
        None, description="The looks of its mirror image, for a copy mirrored to evade matching."
    )
    cells: dict[Annotated[str, StringConstraints(pattern=r"^cell_[1-8]_[1-8]$")], _Packed] | None = Field(
        None, max_length=64, description="Each picture of a contact sheet or collage, by name."
    )
    hints: list[Hex64] | None = Field(
        None, max_length=32, description="Flat band cuts (quality < 50): they pick entries to verify only."
    )


class ItemHashesIn(ItemContext):
    """An item described by signals only (the platform hashed it and never sends the media), plus context."""

    md5: str | None = Field(default=None, description="32 hex characters.", json_schema_extra=_hex(32))
    sha1: str | None = Field(default=None, description="40 hex characters.", json_schema_extra=_hex(40))
    sha256: str | None = Field(default=None, description="64 hex characters.", json_schema_extra=_hex(64))
    pdq: str | None = Field(default=None, description="64 hex characters.", json_schema_extra=_hex(64))
    pdq_quality: int | None = Field(
        default=None, ge=0, le=100, description="PDQ's own quality; under 50 the PDQ is not matched."
    )
    vpdq: list[VpdqFrame] | None = Field(
        default=None,
        max_length=MAX_VPDQ_FRAMES,
        description="A video's sampled frames as [seconds, PDQ hex, quality], about one a second: what "
        "`vigie hash --json` prints as `vpdq`, or the frames of Meta's vpdq library; with `--variants`, each "
        "frame's other query hashes follow as a 4th item ({name: PDQ hex}: mirrored, turned, inside bars). "
        "Matched against known videos as an uploaded video is (whole, clip, holding it, shared segment).",
    )
    pdq_variants: Variants | None = Field(
        default=None,
        description="The image's other query hashes by name, as `vigie hash --json --variants` prints them: "
        "its flips and rotations, the picture inside a frame or under a caption band, its band cuts, each "
        "picture of a contact sheet or collage. With `pdq`; matched as an upload's are, and a match found "
        "through one names it as its `transform`.",
    )
    keypoints: KeypointsIn | None = Field(
        default=None,
        description="Opt-in: the image's keypoint views (`vigie hash --json --keypoints`). With `pdq`; "
        "where its PDQ signals match nothing, candidates are verified by keypoints as an upload's are, "
        "and a match so found has `transform: verified` and its evidence. Positions and descriptors allow "
        "a coarse likeness of the picture: send them only where that is acceptable. Never stored.",
    )


class DecisionOut(BaseModel):
    """What to do with an item, how urgently, and the matches and findings each fired rule rested on."""

    action: Literal["allow", "review", "block"]
    priority: int
    labels: list[str]
    reasons: list[dict[str, Any]] = Field(description="One per fired rule: {rule, action, evidence: [...]}.")
    shadow: bool = Field(
        False, description="Shadow mode: decided and recorded, but the action is always allow."
    )
    shadow_action: str | None = Field(
        None, description="In shadow mode, the action the policy would have taken."
    )
    pending: list[str] = Field(
        [], description="Analyzers still to run in `vigie worker`; they update the item."
    )


class ItemOut(BaseModel):
    item_id: str
    decision: DecisionOut


class ItemRecordOut(ItemOut):
    """An item as recorded: its context, signals, matches, findings and latest decision (never its media)."""

    created_at: str
    context: dict[str, Any]
    signals: dict[str, Any]
    matches: list[dict[str, Any]]
    findings: list[dict[str, Any]]


_ITEM_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary", "description": "The media file."},
                        **{  # form parts are strings or absent, never null
                            k: {
                                **next(x for x in v["anyOf"] if x["type"] != "null"),
                                "description": v["description"],
                            }
                            for k, v in ItemContext.model_json_schema()["properties"].items()
                        },
                    },
                    "additionalProperties": False,
                }
            },
            "application/json": {"schema": ItemHashesIn.model_json_schema()},
        },
    }
}


def _invalid(exc: ValidationError) -> RequestValidationError:
    """A body that fails its model, refused like any other: one {field, message} per error."""
    return RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)])


class FastJSON(JSONResponse):
    """JSON rendered by orjson when installed (several times faster on match lists), else as usual."""

    def render(self, content: Any) -> bytes:
        try:
            import orjson
        except ImportError:  # pragma: no cover
            return super().render(content)
        return orjson.dumps(content)


class TextIn(BaseModel):
    """One text to score: a prompt (with its negative prompt), caption, tag list, comment or model tags."""

    model_config = ConfigDict(extra="forbid")
    text: str = Field(max_length=1_000_000)
    kind: Literal["prompt", "negative_prompt", "caption", "tags", "comment", "model_tags"] = "prompt"
    negative: str | None = Field(default=None, max_length=1_000_000)
    lang: str | None = Field(
        default=None, min_length=2, max_length=8, description="ISO 639-1; detected if absent"
    )


class ReasonOut(BaseModel):
    rule: str
    weight: float
    terms: list[str]


class TextOut(BaseModel):
    score: float
    label: Literal["sexual_minors", "sexual_adult", "minor_nonsexual", "none"]
    action: Literal["allow", "review", "block"]
    kind: str
    lang: str
    stage: str
    producer: str
    truncated: bool
    reasons: list[ReasonOut]


@dataclass(frozen=True)
class ServiceConfig:
    """What the service reads besides Settings: checked by `vigie serve` before its workers start, so a bad
    value is one line and exit code 2 instead of a traceback in every worker, restarted over and over."""

    policy: Policy
    media_threads: int
    vault: Vault | None
    webhooks: bool

    @classmethod
    def load(cls, settings: Settings) -> "ServiceConfig":
        """Also migrates the database and makes the vault's key, once, before any worker does."""
        raw = os.environ.get("VIGIE_MEDIA_THREADS", "2").strip()
        if not raw.isdigit() or int(raw) < 1:
            raise ConfigError(f"VIGIE_MEDIA_THREADS is a number of threads, 1 or more, not {raw!r}")
        policy_path = os.environ.get("VIGIE_POLICY")
        policy = load_policy(Path(policy_path) if policy_path else None)
        queued = os.environ.get("VIGIE_QUEUE_ANALYSIS", "").lower() in ("1", "true", "yes")
        settings.home.mkdir(parents=True, exist_ok=True)
        open_db(settings.db_url).dispose()  # migrated once per process; the Service opens its own
        vault = Vault.from_settings(settings.home) if queued else None
        return cls(policy, int(raw), vault, bool(os.environ.get("VIGIE_WEBHOOK_URL")))


class Service:
    """Everything the endpoints share; the matcher follows bank changes from any replica."""

    def __init__(self, settings: Settings, refresh_interval: float) -> None:
        config = ServiceConfig.load(settings)
        self.db = open_db(settings.db_url)
        self.banks = BankStore(self.db)
        self.keys = KeyStore(self.db, cache_s=KEY_CACHE_S)
        self.matcher = Matcher.open(self.db, None)
        self.refresh_interval = refresh_interval
        self._refreshed = time.monotonic()
        self._lock = threading.Lock()
        self._media_threads = config.media_threads
        self._media_limiter: anyio.CapacityLimiter | None = None
        self.requests: Counter[tuple[str, str, int]] = Counter()
        self.items = Items(
            self.db, config.policy, settings.limits, webhooks=config.webhooks, vault=config.vault
        )

    def media_threads(self) -> anyio.CapacityLimiter:
        """Threads that hash uploads: a few per process, so CPU-bound work queues in arrival order instead
        of 40 threads contending for one interpreter lock (which stretched the tail of upload latency)."""
        if self._media_limiter is None:
            self._media_limiter = anyio.CapacityLimiter(self._media_threads)
        return self._media_limiter

    def fresh_matcher(self) -> Matcher:
        """The matcher, caught up when other replicas may have changed banks since the last look."""
        now = time.monotonic()
        if now - self._refreshed >= self.refresh_interval and self._lock.acquire(blocking=False):
            try:
                self.matcher.refresh()
                self._refreshed = now
            finally:
                self._lock.release()
        return self.matcher

    def changed(self) -> None:
        """A bank write in this process is visible to matching at once."""
        with self._lock:
            self.matcher.refresh()
            self._refreshed = time.monotonic()


class LimitsAndMetrics:
    """Plain ASGI middleware (cheaper than BaseHTTPMiddleware): refuse oversized bodies, count responses."""

    def __init__(self, app: Any, svc: Service) -> None:
        self.app, self.svc = app, svc

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length", b"")
        if length and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            resp = problems.problem(413, "Content Too Large", f"bodies are limited to {MAX_BODY_BYTES} bytes")
            await resp(scope, receive, send)
            self.svc.requests[(scope["method"], "unmatched", 413)] += 1
            return
        status = 500

        async def send_and_count(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_count)
        finally:
            route = scope.get("route")
            self.svc.requests[(scope["method"], getattr(route, "path", "unmatched"), status)] += 1


def _stable_lookups(matcher: Matcher, hexes: list[str], quality: int | None) -> list[list[dict[str, Any]]]:
    """Matches a weak entry's stable bits verify for each looked-up PDQ, in the lookup's answer shape (the
    verifier returns at once where no entry is weak)."""
    keep = ("bank", "entry_id", "distance", "labels", "verification")
    found = (verified_match_dicts(matcher, sent_signals(h, quality, {}), None, []) for h in hexes)
    return [[{k: m[k] for k in keep} for m in ms] for ms in found]


def create_app(settings: Settings | None = None, refresh_interval: float = 2.0) -> FastAPI:
    """The service app; ``refresh_interval`` bounds how stale another replica's bank changes can be."""
    svc = Service(settings or Settings.from_env(), refresh_interval)
    app = FastAPI(
        title="vigie",
        version=__version__,
        description="Hash matching for trust-and-safety teams. Every match is a lead for a human reviewer.",
        max_body_size=MAX_BODY_BYTES,  # counts streamed bodies too: a chunked upload has no Content-Length
        lifespan=_lifespan,
    )
    app.state.svc = svc
    app.add_middleware(idempotency.IdempotencyMiddleware, db=svc.db, verify_key=svc.keys.verify)
    problems.install(app)
    openapi.install(app)

    app.add_middleware(LimitsAndMetrics, svc=svc)

    def require(scope: str) -> Callable[[Request], Any]:
        async def check(request: Request) -> KeyInfo:
            auth = request.headers.get("authorization", "")
            scheme, _, token = auth.partition(" ")
            if scheme.lower() != "bearer" or not token:
                raise HTTPException(401, "missing API key", headers={"WWW-Authenticate": "Bearer"})
            key = svc.keys.verify(token.strip())
            if key is None:
                raise HTTPException(401, "unknown or revoked API key", headers={"WWW-Authenticate": "Bearer"})
            if not key.allows(scope):
                raise HTTPException(403, f"this key lacks the '{scope}' scope")
            return key

        check.scope = scope  # type: ignore[attr-defined]  # read by vigie.service.openapi
        return check

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"])
    def readyz() -> Response:
        try:
            svc.banks.list_banks()
        except Exception:
            return problems.problem(503, "Service Unavailable", "the database does not answer")
        return Response('{"status":"ready"}', media_type="application/json")

    @app.get("/metrics", tags=["ops"], response_class=PlainTextResponse)
    def metrics(_: Annotated[KeyInfo, Depends(require("metrics"))]) -> str:
        """Prometheus text; a scraper sends a key with the ``metrics`` scope (bank sizes are not public)."""
        lines = ["# TYPE vigie_http_requests_total counter"]
        for (method, path, status), n in sorted(svc.requests.items()):
            lines.append(
                f'vigie_http_requests_total{{method="{method}",path="{path}",status="{status}"}} {n}'
            )
        lines += ["# TYPE vigie_index_entries gauge", f"vigie_index_entries {len(svc.matcher.pdq)}"]
        return "\n".join(lines) + "\n"

    @app.post("/v1/lookup", response_model=LookupOut, tags=["matching"])
    async def lookup(body: LookupIn, _: Annotated[KeyInfo, Depends(require("lookup"))]) -> Response:
        """Match hashes computed by the platform against every bank (per-bank thresholds, allow banks)."""
        queries: list[tuple[str, str]] = []
        errors: list[LineError] = []
        for st in ("md5", "sha1", "sha256", "pdq"):
            for i, v in enumerate(getattr(body, st)):
                try:
                    queries.append((st, signal_type(st).normalize(v)))
                except SignalError as exc:
                    errors.append(LineError(i, f"{st}[{i}]: {exc}"))
        if errors:
            raise ImportFormatError(errors, "lookup")
        matcher = svc.fresh_matcher()
        found = matcher.match_many(
            [{st: v, "pdq_quality": body.pdq_quality if st == "pdq" else None} for st, v in queries]
        )
        # the hot path: serialised straight to JSON (the shape is LookupOut's, documented in OpenAPI)
        results = [
            {
                "signal": st,
                "value": v,
                "matches": [
                    {"bank": m.bank, "entry_id": m.entry_id, "distance": m.distance, "labels": m.labels}
                    for m in res.matches
                ],
            }
            for (st, v), res in zip(queries, found, strict=True)
        ]
        # entries whose PDQ is weak match a hash that keeps their stable bits (banks/verify.py): checked
        # off the event loop, and only where such entries exist (the first lookup may read the media set)
        unmatched = [
            (r, v) for r, (st, v), res in zip(results, queries, found, strict=True)
            if st == "pdq" and not res.matches and not res.suppressed
        ]  # fmt: skip
        if unmatched and matcher.verifiable.known_weak() is not False:
            hexes = [v for _r, v in unmatched]
            verified = await run_in_threadpool(_stable_lookups, matcher, hexes, body.pdq_quality)
            for (r, _v), ms in zip(unmatched, verified, strict=True):
                r["matches"] = ms
        return FastJSON({"results": results})

    @app.post("/v1/text", response_model=TextOut, tags=["text"])
    async def text_risk(body: TextIn, _: Annotated[KeyInfo, Depends(require("lookup"))]) -> dict[str, Any]:
        """Score a text for sexualisation of minors (textrisk); nothing is stored."""
        from vigie.analyzers.prompt_risk import _engine

        a = await run_in_threadpool(_engine().assess, body.text, body.kind, body.negative, body.lang)
        return a.to_json()

    @app.post("/v1/items", status_code=201, tags=["items"], response_model=ItemOut, openapi_extra=_ITEM_BODY)
    async def submit_item(
        request: Request, key: Annotated[KeyInfo, Depends(require("items:write"))]
    ) -> Response:
        """An upload (multipart ``file`` plus context fields) or JSON signals only; answers the decision.

        With an ``Idempotency-Key`` header a retried request gets the first answer, never a second item.

        Hashing, matching, provenance and the policy run before the answer; the media is never stored.
        """
        idem = request.headers.get("idempotency-key")
        claim = None
        if idem is not None:
            req_hash = idempotency.request_hash("POST", "/v1/items", await request.body())
            hit = idempotency.lookup(svc.db, key.id, idem, req_hash)
            if hit is not None:
                return idempotency.replayed(hit)
            claim = idempotency.Claim(key.id, idem, req_hash)
        try:
            outcome = await _submit(request, claim)
        except idempotency.Duplicate as twin:  # a concurrent twin committed first: its answer, no second item
            hit = idempotency.lookup(svc.db, key.id, twin.claim.idem_key, twin.claim.request_hash)
            if hit is None:  # pragma: no cover - the key was taken, so its answer is there
                raise
            return idempotency.replayed(hit)
        return FastJSON(outcome.to_json(), status_code=201)

    async def _submit(request: Request, claim: idempotency.Claim | None) -> Outcome:
        """Parse, check and record one item (the route's work, apart from its Idempotency-Key)."""
        ctype = request.headers.get("content-type", "")
        matcher = svc.fresh_matcher()
        if ctype.startswith("multipart/form-data"):
            try:
                form = parse_form(await request.body(), ctype)
            except FormError as exc:
                raise HTTPException(400, str(exc)) from None
            upload = form.files.get("file")
            if upload is None or len(form.files) > 1:
                raise HTTPException(422, "multipart body needs one file part, named 'file'")
            try:
                context = ItemContext.model_validate(form.fields).model_dump(exclude_none=True)
            except ValidationError as exc:
                raise _invalid(exc) from None
            outcome = await anyio.to_thread.run_sync(
                svc.items.submit_media,
                matcher,
                upload.data,
                upload.filename or "upload",
                context,
                claim,
                limiter=svc.media_threads(),
            )
        elif ctype.startswith("application/json"):
            try:
                body = ItemHashesIn.model_validate_json(await request.body())
            except ValidationError as exc:
                raise _invalid(exc) from None
            hashes = body.model_dump(
                include={"md5", "sha1", "sha256", "pdq", "pdq_quality", "vpdq", "pdq_variants", "keypoints"},
                exclude_none=True,
            )
            if not any(hashes.get(k) for k in ("md5", "sha1", "sha256", "pdq", "vpdq")):
                raise HTTPException(
                    422, "give at least one of md5, sha1, sha256, pdq, vpdq (or upload the file)"
                )
            for extra in ("pdq_variants", "keypoints"):
                if hashes.get(extra) and not hashes.get("pdq"):
                    raise HTTPException(422, f"{extra} describe an image: send its pdq with them")
            frames = hashes.get("vpdq") or []
            named = [hashes.get("pdq_variants") or {}, *(f[3] for f in frames if len(f) > 3)]
            if any("verified" in n for n in named):  # a match's transform: keypoint evidence
                raise HTTPException(422, "'verified' names keypoint evidence, not a variant")
            sent = hashes.pop("keypoints", None)
            views = SentViews.parse(sent) if sent else None  # SignalError: a 422 naming the bad view
            context = body.model_dump(include=set(ItemContext.model_fields), exclude_none=True)
            args = (matcher, hashes, context, claim, views)
            if views is None:
                outcome = await run_in_threadpool(svc.items.submit_hashes, *args)
            else:  # keypoint verification is as heavy as an upload's: it waits with them
                outcome = await anyio.to_thread.run_sync(
                    svc.items.submit_hashes, *args, limiter=svc.media_threads()
                )
        else:
            raise HTTPException(415, "send multipart/form-data (upload) or application/json (signals only)")
        return outcome

    @app.get("/v1/items/{item_id}", tags=["items"], response_model=ItemRecordOut)
    def get_item(item_id: str, _: Annotated[KeyInfo, Depends(require("items:write"))]) -> dict[str, Any]:
        return svc.items.get(item_id)

    @app.get("/v1/admin/webhooks/dead", tags=["admin"])
    def webhook_dead_letters(_: Annotated[KeyInfo, Depends(require("admin"))]) -> list[dict[str, Any]]:
        """Decisions whose delivery failed every retry; requeue them once the receiver is fixed."""
        return dead_letters(svc.db)

    @app.post("/v1/admin/webhooks/{event_id}/requeue", tags=["admin"])
    def webhook_requeue(event_id: str, _: Annotated[KeyInfo, Depends(require("admin"))]) -> dict[str, bool]:
        if not requeue(svc.db, event_id):
            raise HTTPException(404, f"no dead letter {event_id}")
        return {"requeued": True}

    @app.get("/v1/banks", tags=["banks"])
    def list_banks(_: Annotated[KeyInfo, Depends(require("banks:write"))]) -> list[dict[str, Any]]:
        return [b.to_json() for b in svc.banks.list_banks()]

    @app.post("/v1/banks", status_code=201, tags=["banks"])
    def create_bank(body: BankIn, _: Annotated[KeyInfo, Depends(require("banks:write"))]) -> dict[str, Any]:
        return svc.banks.create_bank(**body.model_dump()).to_json()

    @app.delete("/v1/banks/{name}", tags=["banks"])
    def remove_bank(name: str, _: Annotated[KeyInfo, Depends(require("banks:write"))]) -> dict[str, int]:
        n = svc.banks.remove_bank(name)
        svc.changed()
        return {"removed_entries": n}

    @app.post("/v1/banks/{name}/entries", status_code=201, tags=["banks"])
    def add_entries(
        name: str, body: EntriesIn, _: Annotated[KeyInfo, Depends(require("banks:write"))]
    ) -> dict[str, int]:
        n = svc.banks.add_entries(name, [EntryIn(**e.model_dump()) for e in body.entries], "request body")
        svc.changed()
        return {"added": n}

    @app.post("/v1/banks/{name}/entries/remove", tags=["banks"])
    def remove_entries(
        name: str, body: IdsIn, _: Annotated[KeyInfo, Depends(require("banks:write"))]
    ) -> dict[str, int]:
        n = svc.banks.remove_entries(name, body.ids)
        svc.changed()
        return {"removed": n}

    @app.post(
        "/v1/banks/{name}/import",
        status_code=201,
        tags=["banks"],
        openapi_extra={
            "requestBody": {
                "required": True,
                "description": "A whole import file in the format named by ?format= (UTF-8).",
                "content": {
                    "text/plain": {"schema": {"type": "string"}},  # csv, te, hashlist
                    "application/json": {"schema": {"type": "object"}},  # vics
                },
            }
        },
    )
    async def import_entries(
        name: str,
        request: Request,
        _: Annotated[KeyInfo, Depends(require("banks:write"))],
        fmt: Annotated[str, Query(alias="format", pattern="^(csv|te|vics|hashlist)$")] = "te",
    ) -> dict[str, int]:
        """The request body is a whole import file; it lands in one transaction or not at all."""
        import io

        from vigie.banks.formats import get_format

        parse, _w = get_format(fmt)
        try:
            text = (await request.body()).decode("utf-8-sig", errors="strict")
        except UnicodeDecodeError as exc:
            raise ImportFormatError([LineError(0, f"not UTF-8 text: {exc}")], "request body") from None
        svc.banks.get_bank(name)
        n = svc.banks.add_entries(name, parse(io.StringIO(text), "request body"), "request body")
        svc.changed()
        return {"imported": n}

    return app


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """At a served process's start: what start-up built (modules, the app, its routes and models) lives as
    long as the process, so it is kept out of the collector's full passes, each of which would otherwise
    walk those ~150k objects (35 ms measured, 0.6 ms once frozen) while every request on the process
    waits. Only a served process does this (tests that build many apps in one interpreter do not)."""
    gc.freeze()
    yield
