"""Shared fixtures: benign stand-in photos, and database URLs for SQLite and (when set up) PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PHOTOS = REPO.parent / "shared" / "data" / "photos"


@pytest.fixture(scope="session")
def photos() -> list[Path]:
    """The benign photos that play "known material" in tests (../shared/data/photos)."""
    found = sorted(PHOTOS.glob("*.jpg"))
    if not found:
        pytest.skip(f"no shared photos at {PHOTOS}")
    return found


_NUMBA_ENV = {k: v for k, v in os.environ.items() if k.startswith("NUMBA_")}


@pytest.fixture(autouse=True)
def _numba_environment_unchanged() -> Iterator[None]:
    """numba re-reads NUMBA_* variables whenever it compiles, and refuses a new thread count once its threads
    run. With a warm cache nothing compiles, so a test that sets one (say, by importing a bench script) only
    breaks a later test on a fresh checkout. Fail the test that set it instead."""
    yield
    now = {k: v for k, v in os.environ.items() if k.startswith("NUMBA_")}
    assert now == _NUMBA_ENV, f"a test changed numba's environment: {_NUMBA_ENV} -> {now}"


def _postgres_url() -> str | None:
    return os.environ.get("VIGIE_TEST_POSTGRES_URL")


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database per test: a SQLite file, or a new PostgreSQL database on the CI server.

    In CI (``CI=true``) a missing PostgreSQL is an error, never a silent skip.
    """
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'vigie.db'}"
        return
    base = _postgres_url()
    if not base:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but VIGIE_TEST_POSTGRES_URL is not set")
        pytest.skip("VIGIE_TEST_POSTGRES_URL not set")
    import sqlalchemy as sa

    name = f"vigie_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = base.rsplit("/", 1)[0] + "/" + name
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
