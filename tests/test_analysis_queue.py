"""Queued heavy analysis: an upload is answered at once, a worker adds the watermark finding later.

The media waits encrypted (AES-GCM, key outside the database) and is deleted once analysed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from test_analyzers import _png, _reference_encoder
from vigie.policy import load_policy
from vigie.service.analysis import AnalysisWorker
from vigie.service.app import create_app
from vigie.service.keys import KeyStore
from vigie.settings import Settings
from vigie.store import AnalysisJob, ItemRecord, open_db
from vigie.store.vault import Vault


def test_heavy_analysis_runs_in_a_worker_and_updates_the_item(
    db_url: str, photos: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vigie.analyzers.watermark import MARKS

    monkeypatch.setenv("VIGIE_QUEUE_ANALYSIS", "1")
    monkeypatch.delenv("VIGIE_WEBHOOK_URL", raising=False)
    settings = Settings(home=tmp_path / "home", database_url=db_url)
    app = create_app(settings)
    db = open_db(db_url)
    secret = KeyStore(db).create(["items:write"], "t")[1]
    rgb = np.asarray(Image.open(photos[3]).convert("RGB").resize((768, 512)))
    marked = _reference_encoder()(list(MARKS["Stable Diffusion XL"]), wmLen=48).encode(rgb.copy())
    data = _png(marked)
    with TestClient(app) as c:
        r = c.post(
            "/v1/items",
            files={"file": ("m.png", data, "image/png")},
            headers={"Authorization": f"Bearer {secret}"},
        )
        assert r.status_code == 201, r.text
        d = r.json()["decision"]
        assert d["pending"] == ["sd_watermark"] and d["action"] == "allow"  # answered before the heavy part
        item_id = r.json()["item_id"]
        with db.session() as s:
            [job] = s.scalars(sa.select(AnalysisJob)).all()
            assert (
                job.item_id == item_id and data[:8] not in job.payload and len(job.payload) > len(data) // 2
            )
        worker = AnalysisWorker(db, load_policy(None), Vault.from_settings(settings.home))
        assert worker.run_once().done == 1
        got = c.get(f"/v1/items/{item_id}", headers={"Authorization": f"Bearer {secret}"}).json()
    assert got["decision"]["pending"] == [] and got["decision"]["action"] == "review"
    assert "ai-generated" in got["decision"]["labels"]
    assert any(
        f["analyzer"] == "sd_watermark" and f["generator"] == "Stable Diffusion XL" for f in got["findings"]
    )
    with db.session() as s:
        assert s.scalars(sa.select(AnalysisJob)).all() == []  # the media is gone once analysed
        assert s.get(ItemRecord, item_id).action == "review"
    assert (settings.home / "secret.key").stat().st_mode & 0o077 == 0  # key readable by its owner only


def test_a_payload_that_cannot_be_opened_is_retried_then_reported(db_url: str, tmp_path: Path) -> None:
    db = open_db(db_url)
    vault = Vault(bytes(32))
    with db.session() as s:
        s.add(
            ItemRecord(
                id="i-1",
                context={},
                signals={},
                matches=[],
                findings=[],
                decision={},
                action="allow",
                priority=0,
            )
        )
        s.add(
            AnalysisJob(
                item_id="i-1",
                filename="x.png",
                media_type="image/png",
                payload=b"garbage" * 4,
                analyzers=["sd_watermark"],
            )
        )
    worker = AnalysisWorker(db, load_policy(None), vault)
    assert worker.run_once().retried == 1
    with db.session() as s:
        job = s.scalars(sa.select(AnalysisJob)).one()
        assert job.attempts == 1 and job.last_error
        job.attempts = 4
        job.next_attempt_at = job.created_at
    assert worker.run_once().failed == 1
    with db.session() as s:
        rec = s.get(ItemRecord, "i-1")
        assert rec.findings[-1]["kind"] == "analyzer_error" and s.scalars(sa.select(AnalysisJob)).all() == []
