"""The worker side of items: heavy analyzers run on queued items, which then get an updated decision.

Jobs are claimed like webhook events (``SKIP LOCKED`` on PostgreSQL, a lease everywhere), so several
workers share the queue and a killed worker's job comes back after its lease. The media is decrypted only
in memory and the job row (with its sealed payload) is deleted in the transaction that records the result.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa

from vigie.analyzers import analyze_item, default_analyzers
from vigie.media import Item
from vigie.policy import Policy
from vigie.service.webhooks import backoff, enqueue
from vigie.store import AnalysisJob, Database, ItemRecord
from vigie.store.models import utcnow
from vigie.store.vault import Vault

MAX_ATTEMPTS = 5
LEASE_S = 120.0


@dataclass
class AnalysisStats:
    done: int = 0
    retried: int = 0
    failed: int = 0


class AnalysisWorker:
    """Runs queued heavy analysis; safe to run in several processes at once."""

    def __init__(self, db: Database, policy: Policy, vault: Vault, webhooks: bool = False) -> None:
        self.db, self.policy, self.vault, self.webhooks = db, policy, vault, webhooks
        self.analyzers = {a.name: a for a in default_analyzers()}

    def _claim(self, limit: int) -> list[int]:
        now = utcnow()
        with self.db.session() as s:
            q = (
                sa.select(AnalysisJob.id)
                .where(AnalysisJob.next_attempt_at <= now)
                .order_by(AnalysisJob.id)
                .limit(limit)
            )
            if self.db.dialect == "postgresql":
                q = q.with_for_update(skip_locked=True)
            ids = list(s.scalars(q))
            if ids:
                lease = now + timedelta(seconds=LEASE_S)
                s.execute(sa.update(AnalysisJob).where(AnalysisJob.id.in_(ids)).values(next_attempt_at=lease))
            return ids

    def run_once(self, limit: int = 20) -> AnalysisStats:
        stats = AnalysisStats()
        for job_id in self._claim(limit):
            with self.db.session() as s:
                job = s.get(AnalysisJob, job_id)
                if job is None:
                    continue
                try:
                    data = self.vault.open(job.payload, job.item_id)
                    item = Item(job.filename, data, job.media_type)
                    wanted = [self.analyzers[n] for n in job.analyzers if n in self.analyzers]
                    found = [f.to_dict() for f in analyze_item(item, wanted)]
                except Exception as exc:  # a bad key or a broken payload: retried, then reported on the item
                    job.attempts += 1
                    job.last_error = f"{type(exc).__name__}: {exc}"[:500]
                    if job.attempts < MAX_ATTEMPTS:
                        job.next_attempt_at = utcnow() + timedelta(seconds=backoff(job.attempts))
                        stats.retried += 1
                        continue
                    found = [{"analyzer": "worker", "kind": "analyzer_error", "confidence": 0.0,
                              "summary": f"queued analysis failed: {job.last_error}"}]  # fmt: skip
                    stats.failed += 1
                else:
                    stats.done += 1
                record = s.get(ItemRecord, job.item_id)
                if record is not None:
                    findings = [*(record.findings or []), *found]
                    decision = self.policy.decide(record.matches or [], findings).to_json()
                    decision["pending"] = []
                    record.findings, record.decision = findings, decision
                    record.action, record.priority = decision["action"], decision["priority"]
                    if self.webhooks:
                        ext = (record.context or {}).get("external_id")
                        enqueue(
                            s,
                            "item.updated",
                            {"item_id": record.id, "external_id": ext, "decision": decision},
                        )
                s.delete(job)
        return stats
