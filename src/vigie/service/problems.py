"""RFC 9457 problem+json responses, and the mapping from vigie's errors to HTTP statuses."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as db_errors
from starlette.exceptions import HTTPException

from vigie.errors import ConflictError, ImportFormatError, NotFoundError, SignalError, VigieError

MEDIA_TYPE = "application/problem+json"
DB_UNAVAILABLE = (db_errors.OperationalError, db_errors.InterfaceError, db_errors.TimeoutError)
"""The database is down, unreachable, out of connections or (SQLite) busy: the request may be retried."""
RETRY_AFTER_S = 2


def problem(status: int, title: str, detail: str = "", **extra: Any) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE)


def _status(exc: VigieError) -> tuple[int, str]:
    if isinstance(exc, NotFoundError):
        return 404, "Not Found"
    if isinstance(exc, ConflictError):
        return 409, "Conflict"
    if isinstance(exc, ImportFormatError | SignalError):
        return 422, "Unprocessable Content"
    return 400, "Bad Request"


def install(app: FastAPI) -> None:
    """Every error leaves as problem+json; nothing leaks a traceback."""

    @app.exception_handler(VigieError)
    async def _vigie(_: Request, exc: VigieError) -> JSONResponse:
        status, title = _status(exc)
        extra: dict[str, Any] = {}
        if isinstance(exc, ImportFormatError):
            extra["errors"] = [{"line": e.line, "message": e.message} for e in exc.errors[:1000]]
        return problem(status, title, str(exc).split("\n", 1)[0], **extra)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": ".".join(str(p) for p in e.get("loc", ())), "message": str(e.get("msg", ""))}
            for e in exc.errors()[:100]
        ]
        return problem(
            422, "Unprocessable Content", "the request body or parameters are invalid", errors=errors
        )

    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> JSONResponse:
        resp = problem(exc.status_code, str(exc.detail) if exc.detail else "Error", str(exc.detail or ""))
        for k, v in (exc.headers or {}).items():
            resp.headers[k] = v
        return resp

    async def _db(_: Request, exc: Exception) -> JSONResponse:
        return _unavailable()

    for cls in DB_UNAVAILABLE:
        app.add_exception_handler(cls, _db)

    @app.exception_handler(Exception)  # last resort, also for errors raised in middleware
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, DB_UNAVAILABLE):
            return _unavailable()
        return problem(500, "Internal Server Error", "an unexpected error; the server logged it")


def _unavailable() -> JSONResponse:
    """503 with Retry-After, so that a platform's client retries instead of treating the item as failed."""
    resp = problem(503, "Service Unavailable", "the database does not answer; retry shortly")
    resp.headers["Retry-After"] = str(RETRY_AFTER_S)
    return resp
