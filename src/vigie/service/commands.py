"""`vigie serve` and `vigie keys …`: thin command wrappers over the service and the key store."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from vigie.settings import Settings

keys_app = typer.Typer(help="Create, list and revoke API keys for the service.", no_args_is_help=True)


def _keys():  # type: ignore[no-untyped-def]
    from vigie.service.keys import KeyStore
    from vigie.store import open_db

    s = Settings.from_env()
    s.home.mkdir(parents=True, exist_ok=True)
    return KeyStore(open_db(s.db_url))


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(help="Server processes.")] = 1,
) -> None:
    """Run the HTTP API (OpenAPI at /docs and /openapi.json)."""
    import os

    import uvicorn

    # one process per core serves requests; per-request OpenMP threads would only spin against each other
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

    uvicorn.run(
        "vigie.service.app:create_app", factory=True, host=host, port=port, workers=workers, log_level="info"
    )


def worker(
    once: Annotated[bool, typer.Option("--once", help="Deliver what is due, then exit.")] = False,
    poll: Annotated[float, typer.Option(help="Seconds between polls when idle.")] = 1.0,
) -> None:
    """Deliver decisions to VIGIE_WEBHOOK_URL from the outbox (signed with VIGIE_WEBHOOK_SECRET)."""
    import os
    import signal
    import time

    from vigie.errors import ConfigError
    from vigie.service.webhooks import Deliverer
    from vigie.store import open_db

    url, secret = os.environ.get("VIGIE_WEBHOOK_URL"), os.environ.get("VIGIE_WEBHOOK_SECRET")
    if not url or not secret:
        raise ConfigError("set VIGIE_WEBHOOK_URL and VIGIE_WEBHOOK_SECRET for the worker")
    s = Settings.from_env()
    deliverer = Deliverer(open_db(s.db_url), url, secret)
    stop = False

    def _stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    while not stop:
        stats = deliverer.run_once()
        if once:
            print(f"delivered {stats.delivered}, retrying {stats.retried}, dead {stats.dead}")
            return
        if not (stats.delivered or stats.retried or stats.dead):
            time.sleep(poll)


@keys_app.command("create")
def keys_create(
    scope: Annotated[list[str], typer.Option("--scope", help="items:write, lookup, banks:write or admin.")],
    name: Annotated[str, typer.Option(help="What the key is for.")] = "",
) -> None:
    """Create a key; the secret is printed once, on the last line."""
    info, secret = _keys().create(scope, name)
    Console(stderr=True).print(f"key {info.id} ({', '.join(info.scopes)}) created; store the secret now:")
    print(secret)


@keys_app.command("list")
def keys_list() -> None:
    """List keys (never their secrets)."""
    table = Table("id", "name", "prefix", "scopes", "created", "revoked")
    for k in _keys().list():
        table.add_row(
            str(k.id), k.name, k.prefix + "…", ", ".join(k.scopes), k.created_at.isoformat(), str(k.revoked)
        )
    Console().print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: int) -> None:
    """Revoke a key at once."""
    _keys().revoke(key_id)
    print(f"revoked key {key_id}")
