"""Which C2PA trust anchors decide "Trusted": the shipped C2PA Trust List, or one the operator installed.

Order: ``VIGIE_C2PA_TRUST_ANCHORS`` (a PEM file, for one process), else
``<VIGIE_HOME>/c2pa/trust_anchors.pem`` (installed by ``vigie c2pa-trust update``), else the list shipped in
``analyzers/data/c2pa`` (see its README for source and licence). Every file is parsed before use, so a
broken or empty file is a clear error rather than a silent "nothing is trusted".
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from importlib import resources
from pathlib import Path

from vigie.errors import ConfigError

_PEM = re.compile(rb"-----BEGIN CERTIFICATE-----\s+.*?-----END CERTIFICATE-----", re.S)
SHIPPED = "C2PA Trust List (shipped with vigie, 2026-08-14)"
USER_FILE = Path("c2pa") / "trust_anchors.pem"


@dataclass(frozen=True)
class Anchor:
    subject: str
    not_after: datetime


@dataclass(frozen=True)
class TrustAnchors:
    """A validated set of anchors, with where it came from (shown in every C2PA finding's evidence)."""

    pem: str
    source: str
    anchors: tuple[Anchor, ...]

    @property
    def label(self) -> str:
        return f"{self.source}: {len(self.anchors)} certificates"


def parse(data: bytes, origin: str) -> tuple[str, tuple[Anchor, ...]]:
    """Clean PEM text and the anchors in ``data``; ConfigError names the first block that does not parse."""
    from cryptography import x509

    blocks = _PEM.findall(data)
    if not blocks:
        raise ConfigError(f"{origin}: no PEM certificate found")
    anchors = []
    for n, block in enumerate(blocks, 1):
        try:
            cert = x509.load_pem_x509_certificate(block)
        except ValueError as exc:
            raise ConfigError(f"{origin}: certificate {n} does not parse: {exc}") from exc
        anchors.append(Anchor(cert.subject.rfc4514_string(), cert.not_valid_after_utc))
    return "\n".join(b.decode("ascii") for b in blocks) + "\n", tuple(anchors)


@lru_cache(maxsize=1)
def shipped() -> TrustAnchors:
    data = resources.files("vigie.analyzers").joinpath("data/c2pa/C2PA-TRUST-LIST.pem").read_bytes()
    return _load(data, SHIPPED)


def user_file(home: Path) -> Path:
    return home / USER_FILE


def resolve(home: Path | None = None) -> TrustAnchors:
    """The anchors in force (see the module docstring for the order)."""
    env = os.environ.get("VIGIE_C2PA_TRUST_ANCHORS")
    if env:
        return _from_file(Path(env), f"VIGIE_C2PA_TRUST_ANCHORS={env}")
    if home is None:
        from vigie.settings import Settings

        home = Settings.from_env().home
    path = user_file(home)
    if path.is_file():
        return _from_file(path, f"installed by the operator ({path})")
    return shipped()


def install(source: Path, home: Path) -> TrustAnchors:
    """Validate ``source`` and make it the anchors in force for ``home`` (atomic replace, mode 0644)."""
    try:
        data = source.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {source}: {exc}") from exc
    pem, anchors = parse(data, str(source))
    dest = user_file(home)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".tmp")
    tmp.write_text(pem, encoding="ascii")
    tmp.chmod(0o644)
    tmp.replace(dest)
    return TrustAnchors(pem, f"installed by the operator ({dest})", anchors)


def reset(home: Path) -> bool:
    """Remove the installed anchors (the shipped list is in force again); False when none were installed."""
    path = user_file(home)
    if not path.is_file():
        return False
    path.unlink()
    return True


def expired(anchors: TrustAnchors, now: datetime | None = None) -> list[Anchor]:
    now = now or datetime.now(UTC)
    return [a for a in anchors.anchors if a.not_after < now]


def _from_file(path: Path, source: str) -> TrustAnchors:
    try:
        stat = path.stat()
    except OSError as exc:
        raise ConfigError(f"C2PA trust anchors {path}: {exc}") from exc
    return _cached(str(path), stat.st_mtime_ns, stat.st_size, source)


@lru_cache(maxsize=8)
def _cached(path: str, _mtime: int, _size: int, source: str) -> TrustAnchors:
    """Parsed once per file version: ``analyze_item`` builds analyzers for every item."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"C2PA trust anchors {path}: {exc}") from exc
    return _load(data, source)


def _load(data: bytes, source: str) -> TrustAnchors:
    pem, anchors = parse(data, source)
    return TrustAnchors(pem, source, anchors)
