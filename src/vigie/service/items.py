"""Items: hash, match, analyse and decide one submission, record the outcome, answer with the decision."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from vigie.analyzers import default_analyzers
from vigie.analyzers.prompt_risk import context_findings
from vigie.banks.matcher import Matcher
from vigie.errors import NotFoundError
from vigie.media import Item, sniff
from vigie.pipeline import PipelineContext, process_item
from vigie.policy import Policy
from vigie.service.webhooks import enqueue
from vigie.settings import MediaLimits
from vigie.signals.types import signal_type
from vigie.store import Database, ItemRecord

CONTEXT_FIELDS = ("external_id", "uploader_id", "url", "caption", "prompt")


@dataclass
class Outcome:
    item_id: str
    decision: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"item_id": self.item_id, "decision": self.decision}


class Items:
    """The synchronous part of the item flow: hashing, matching, provenance, policy."""

    def __init__(self, db: Database, policy: Policy, limits: MediaLimits, webhooks: bool = False) -> None:
        self.db = db
        self.policy = policy
        self.limits = limits
        self.webhooks = webhooks
        self.analyzers = default_analyzers()

    def submit_media(self, matcher: Matcher, data: bytes, filename: str, context: dict[str, Any]) -> Outcome:
        item = Item(filename or "upload", data, sniff(data))
        res = process_item(
            item, PipelineContext(limits=self.limits, matcher=matcher, analyzers=self.analyzers)
        )
        signals = {
            k: getattr(res, k) for k in ("md5", "sha1", "sha256", "pdq", "pdq_quality", "media_type", "size")
        }
        if res.error:
            signals["error"] = res.error
        return self._record(context, signals, res.matches, res.findings)

    def submit_hashes(self, matcher: Matcher, hashes: dict[str, Any], context: dict[str, Any]) -> Outcome:
        """Privacy mode: the platform sends signals only (SignalError for malformed values)."""
        clean = {k: signal_type(k).normalize(v) for k, v in hashes.items() if k != "pdq_quality" and v}
        clean["pdq_quality"] = hashes.get("pdq_quality")
        found = matcher.match(**clean)
        matches = [{**m.to_json(), "bank_kind": m.bank_kind} for m in found.matches]
        return self._record(context, clean, matches, [])

    def _record(
        self, context: dict[str, Any], signals: dict[str, Any], matches: list[Any], findings: list[Any]
    ) -> Outcome:
        findings = [*findings, *(f.to_dict() for f in context_findings(context))]
        decision = self.policy.decide(matches, findings).to_json()
        item_id = str(uuid.uuid4())
        with self.db.session() as s:
            s.add(
                ItemRecord(
                    id=item_id,
                    external_id=context.get("external_id"),
                    uploader_id=context.get("uploader_id"),
                    context=context,
                    signals=signals,
                    matches=matches,
                    findings=findings,
                    decision=decision,
                    action=decision["action"],
                    priority=decision["priority"],
                )
            )
            if self.webhooks:  # same transaction: an accepted item always has its event
                payload = {
                    "item_id": item_id,
                    "external_id": context.get("external_id"),
                    "decision": decision,
                }
                enqueue(s, "item.decided", payload)
        return Outcome(item_id, decision)

    def get(self, item_id: str) -> dict[str, Any]:
        with self.db.session() as s:
            r = s.get(ItemRecord, item_id)
            if r is None:
                raise NotFoundError(f"no item {item_id}")
            return {
                "item_id": r.id,
                "created_at": r.created_at.isoformat(),
                "context": r.context,
                "signals": r.signals,
                "matches": r.matches,
                "findings": r.findings,
                "decision": r.decision,
            }
