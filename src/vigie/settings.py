"""One Settings object for all of vigie: environment variables ``VIGIE_*`` and an optional TOML file."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from vigie.errors import ConfigError


@dataclass(frozen=True)
class MediaLimits:
    """Bounds that keep a hostile file from exhausting memory or time."""

    max_bytes: int = 512 * 1024 * 1024
    max_pixels: int = 100_000_000
    max_frames: int = 20_000
    max_duration_s: float = 4 * 3600.0
    archive_max_depth: int = 3
    archive_max_members: int = 100_000
    archive_max_total_bytes: int = 8 * 1024**3
    archive_max_ratio: float = 200.0


@dataclass(frozen=True)
class Settings:
    """Where data lives and how hard vigie may work; built by :meth:`from_env`."""

    home: Path = Path("vigie-data")
    database_url: str | None = None
    limits: MediaLimits = field(default_factory=MediaLimits)
    vpdq_fps: float = 1.0
    text_review: float = 0.5
    """Text-risk score at which a text goes to review (``VIGIE_TEXT_REVIEW``, TOML ``[text] review``)."""
    text_block: float = 0.8
    """Text-risk score at which a prompt is refused (``VIGIE_TEXT_BLOCK``, TOML ``[text] block``)."""

    @property
    def db_url(self) -> str:
        """The database URL: ``VIGIE_DATABASE_URL`` or SQLite inside the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'vigie.db').resolve()}"

    @property
    def index_dir(self) -> Path:
        return self.home / "index"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        """Read ``VIGIE_CONFIG`` (TOML) first, then ``VIGIE_*`` variables, which win."""
        env = dict(os.environ if env is None else env)
        values: dict[str, Any] = {}
        limits: dict[str, Any] = {}
        cfg = env.get("VIGIE_CONFIG")
        if cfg:
            try:
                data = tomllib.loads(Path(cfg).read_text(encoding="utf-8"))
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise ConfigError(f"cannot read VIGIE_CONFIG={cfg}: {exc}") from exc
            limits.update(data.pop("limits", {}))
            text = data.pop("text", {})
            values.update(data)
            values.update({f"text_{k}": v for k, v in text.items()})
        if "VIGIE_HOME" in env:
            values["home"] = env["VIGIE_HOME"]
        if "VIGIE_DATABASE_URL" in env:
            values["database_url"] = env["VIGIE_DATABASE_URL"]
        if "VIGIE_VPDQ_FPS" in env:
            values["vpdq_fps"] = env["VIGIE_VPDQ_FPS"]
        for name in ("review", "block"):
            if f"VIGIE_TEXT_{name.upper()}" in env:
                values[f"text_{name}"] = env[f"VIGIE_TEXT_{name.upper()}"]
        for f in fields(MediaLimits):
            key = "VIGIE_LIMIT_" + f.name.upper()
            if key in env:
                limits[f.name] = env[key]
        try:
            lim = MediaLimits(**{k: type(getattr(MediaLimits(), k))(v) for k, v in limits.items()})
            out = cls(
                home=Path(values.pop("home", "vigie-data")),
                database_url=values.pop("database_url", None) or None,
                vpdq_fps=float(values.pop("vpdq_fps", 1.0)),
                text_review=float(values.pop("text_review", 0.5)),
                text_block=float(values.pop("text_block", 0.8)),
                limits=lim,
            )
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"invalid setting: {exc}") from exc
        if values:
            raise ConfigError(f"unknown settings: {', '.join(sorted(values))}")
        return out

    def with_home(self, home: Path) -> Settings:
        return replace(self, home=home)
