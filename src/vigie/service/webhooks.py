"""Webhook delivery from a persisted outbox: signed, retried with exponential backoff, dead-lettered.

Events are inserted in the same transaction as the item they describe, so an accepted item always has its
event. Delivery is at least once: receivers deduplicate by ``event_id``. Each request carries
``X-Vigie-Event-Id``, ``X-Vigie-Timestamp`` and ``X-Vigie-Signature: sha256=HEX`` where HEX is
HMAC-SHA256(secret, timestamp + "." + body); receivers should also reject stale timestamps.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from vigie.store import Database, OutboxEvent
from vigie.store.models import utcnow

MAX_ATTEMPTS = 8
BASE_DELAY_S = 2.0
MAX_DELAY_S = 3600.0


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={mac}"


def verify(secret: str, timestamp: str, body: bytes, signature: str, max_age_s: float = 300.0) -> bool:
    """What a receiving platform does: constant-time check of the signature and of the timestamp's age."""
    try:
        fresh = abs(time.time() - float(timestamp)) <= max_age_s
    except ValueError:
        return False
    return fresh and hmac.compare_digest(sign(secret, timestamp, body), signature)


def enqueue(session: Session | sa.Connection, event_type: str, payload: dict[str, Any]) -> str:
    """Add an event inside the caller's transaction (it lands or vanishes with the item)."""
    event_id = str(uuid.uuid4())
    session.execute(
        sa.insert(OutboxEvent), [{"event_id": event_id, "event_type": event_type, "payload": payload}]
    )
    return event_id


def backoff(attempts: int) -> float:
    """Seconds before the next try: exponential with full jitter, capped."""
    return random.uniform(0.5, 1.0) * min(MAX_DELAY_S, BASE_DELAY_S * 2 ** max(0, attempts - 1))


@dataclass
class DeliveryStats:
    delivered: int = 0
    retried: int = 0
    dead: int = 0


class Deliverer:
    """Claims due events and posts them; safe to run in several worker processes at once."""

    def __init__(self, db: Database, url: str, secret: str, timeout_s: float = 10.0) -> None:
        self.db, self.url, self.secret, self.timeout_s = db, url, secret, timeout_s

    def _claim(self, limit: int) -> list[int]:
        """Due event ids, leased for a while so another worker does not send them at the same time."""
        now = utcnow()
        with self.db.session() as s:
            q = (
                sa.select(OutboxEvent.id)
                .where(
                    OutboxEvent.delivered_at.is_(None),
                    OutboxEvent.dead_at.is_(None),
                    OutboxEvent.next_attempt_at <= now,
                )
                .order_by(OutboxEvent.id)
                .limit(limit)
            )
            if self.db.dialect == "postgresql":
                q = q.with_for_update(skip_locked=True)
            ids = list(s.scalars(q))
            if ids:  # lease: a crashed worker's claims come due again after the delivery timeout
                lease = now + timedelta(seconds=self.timeout_s * 3)
                s.execute(sa.update(OutboxEvent).where(OutboxEvent.id.in_(ids)).values(next_attempt_at=lease))
            return ids

    def _post(self, event: OutboxEvent) -> str | None:
        body = json.dumps(
            {"event_id": event.event_id, "type": event.event_type, "data": event.payload},
            separators=(",", ":"),
        ).encode()
        ts = str(int(time.time()))
        req = urllib.request.Request(
            self.url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "X-Vigie-Event-Id": event.event_id,
                "X-Vigie-Timestamp": ts,
                "X-Vigie-Signature": sign(self.secret, ts, body),
            },
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                return None if 200 <= resp.status < 300 else f"HTTP {resp.status}"
        except urllib.error.HTTPError as exc:
            return f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            return f"{type(exc).__name__}: {exc}"[:500]

    def run_once(self, limit: int = 100) -> DeliveryStats:
        stats = DeliveryStats()
        for event_id in self._claim(limit):
            with self.db.session() as s:
                event = s.get(OutboxEvent, event_id)
                if event is None or event.delivered_at is not None:
                    continue
                error = self._post(event)
                event.attempts += 1
                if error is None:
                    event.delivered_at, event.last_error = utcnow(), None
                    stats.delivered += 1
                elif event.attempts >= MAX_ATTEMPTS:
                    event.dead_at, event.last_error = utcnow(), error
                    stats.dead += 1
                else:
                    event.next_attempt_at = utcnow() + timedelta(seconds=backoff(event.attempts))
                    event.last_error = error
                    stats.retried += 1
        return stats


def dead_letters(db: Database, limit: int = 500) -> list[dict[str, Any]]:
    with db.session() as s:
        rows = s.scalars(
            sa.select(OutboxEvent)
            .where(OutboxEvent.dead_at.is_not(None))
            .order_by(OutboxEvent.id)
            .limit(limit)
        )
        return [
            {
                "event_id": r.event_id,
                "type": r.event_type,
                "attempts": r.attempts,
                "last_error": r.last_error,
                "dead_at": r.dead_at.isoformat() if r.dead_at else None,
            }
            for r in rows
        ]


def requeue(db: Database, event_id: str) -> bool:
    """An admin sends a dead letter back to the queue (after fixing the receiver)."""
    with db.session() as s:
        n = s.execute(
            sa.update(OutboxEvent)
            .where(OutboxEvent.event_id == event_id, OutboxEvent.dead_at.is_not(None))
            .values(dead_at=None, attempts=0, next_attempt_at=utcnow())
        ).rowcount  # type: ignore[attr-defined]  # an UPDATE gives a CursorResult
        return bool(n)
