"""`vigie serve` and `vigie keys …`: thin command wrappers over the service and the key store."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from vigie.errors import ConfigError
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
    port: Annotated[int, typer.Option(help="TCP port.", min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(help="Server processes.")] = 1,
    access_log: Annotated[
        bool, typer.Option("--access-log/--no-access-log", help="Log every request.")
    ] = False,
) -> None:
    """Run the HTTP API (OpenAPI at /docs and /openapi.json)."""
    import os

    import uvicorn

    # one process per core serves requests; per-request OpenMP threads would only spin against each other
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from vigie.service.app import ServiceConfig
    from vigie.settings import Settings

    ServiceConfig.load(Settings.from_env())  # a bad setting stops here, before the workers start

    uvicorn.run(
        "vigie.service.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        access_log=access_log,  # a log line per request costs more than a lookup at full load
        timeout_graceful_shutdown=10,  # in-flight requests get 10 s after SIGTERM; idle keep-alives none
    )


def worker(
    once: Annotated[bool, typer.Option("--once", help="Do what is due, then exit.")] = False,
    poll: Annotated[float, typer.Option(help="Seconds between polls when idle.")] = 1.0,
) -> None:
    """Run queued heavy analysis (VIGIE_QUEUE_ANALYSIS) and deliver decisions to VIGIE_WEBHOOK_URL."""
    import os
    import signal
    from pathlib import Path

    from vigie.policy import load_policy
    from vigie.service.analysis import AnalysisWorker
    from vigie.service.webhooks import Deliverer
    from vigie.store import open_db
    from vigie.store.vault import Vault

    url, secret = os.environ.get("VIGIE_WEBHOOK_URL"), os.environ.get("VIGIE_WEBHOOK_SECRET")
    if url and not secret:
        raise ConfigError("VIGIE_WEBHOOK_URL needs VIGIE_WEBHOOK_SECRET to sign deliveries")
    s = Settings.from_env()
    db = open_db(s.db_url)
    deliverer = Deliverer(db, url, secret) if url and secret else None
    policy_path = os.environ.get("VIGIE_POLICY")
    analysis = AnalysisWorker(
        db,
        load_policy(Path(policy_path) if policy_path else None),
        Vault.from_settings(s.home),
        bool(deliverer),
    )
    stop = False

    def _stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    if once:
        a = analysis.run_once()
        d = deliverer.run_once() if deliverer else None
        print(f"analysed {a.done}, retrying {a.retried}, failed {a.failed}", end="")
        print(f"; delivered {d.delivered}, retrying {d.retried}, dead {d.dead}" if d else "")
        return
    run_until(lambda: stop, analysis.run_once, deliverer.run_once if deliverer else None, poll)


def run_until(
    stopped: Callable[[], bool],
    analyse: Callable[[], Any],
    deliver: Callable[[], Any] | None,
    poll: float,
    max_wait: float = 30.0,
) -> None:
    """The worker's loop: work while there is work, poll when idle, and ride out a database that does not
    answer (restarted, failed over, out of connections) by waiting, doubling up to ``max_wait``, instead of
    exiting with a traceback; a SIGTERM is honoured within a fifth of a second even while waiting."""
    import sys
    import time

    from vigie.service.problems import DB_UNAVAILABLE

    def wait(seconds: float) -> None:
        end = time.monotonic() + seconds
        while not stopped() and time.monotonic() < end:
            time.sleep(min(0.2, max(0.0, end - time.monotonic())))

    backoff = poll
    while not stopped():
        try:
            a = analyse()
            d = deliver() if deliver else None
        except DB_UNAVAILABLE as exc:
            why = type(getattr(exc, "orig", None) or exc).__name__
            print(
                f"vigie worker: the database does not answer ({why}); retrying in {backoff:.1f} s",
                file=sys.stderr,
            )
            wait(backoff)
            backoff = min(max(backoff, 0.1) * 2, max_wait)
            continue
        backoff = poll
        if not (a.done or a.retried or (d and (d.delivered or d.retried or d.dead))):
            wait(poll)


@keys_app.command("create")
def keys_create(
    scope: Annotated[
        list[str], typer.Option("--scope", help="items:write, lookup, banks:write, admin or metrics.")
    ],
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
