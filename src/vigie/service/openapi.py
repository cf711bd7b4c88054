"""The OpenAPI document as the service behaves: its error answers, API keys and scopes, Idempotency-Key.

FastAPI documents the success answer and a JSON validation error; vigie answers every error as
problem+json, needs a key with one scope per endpoint and replays writes by ``Idempotency-Key``. Clients
generated from the document, and schemathesis in CI, read what is added here.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from vigie.service.idempotency import WRITE_METHODS
from vigie.service.problems import MEDIA_TYPE

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details; refused bodies list their errors.",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "description": "One per refused field ({field, message}) or import line ({line, message}).",
            "items": {"type": "object"},
        },
    },
}
WHY = {
    400: "The body could not be parsed, or the Idempotency-Key is empty or too long.",
    401: "No API key, or an unknown or revoked one.",
    403: "The key lacks this endpoint's scope.",
    404: "No such bank, item or event.",
    409: "Already exists, or the Idempotency-Key was used with other bytes or is still running.",
    413: "The body is over the size limit.",
    415: "The body is neither multipart/form-data nor application/json.",
    422: "The body or parameters are invalid; `errors` says where.",
    503: "The database does not answer; retry after `Retry-After` seconds.",
}
IDEMPOTENCY_KEY: dict[str, Any] = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "A retried write with the same key and bytes gets the first 2xx answer again.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}


def _statuses(route: APIRoute, method: str, scope: str | None) -> list[int]:
    """The error statuses one operation can answer with."""
    out = []
    if scope is not None:
        out += [401, 403, 503]
    if method in WRITE_METHODS:
        out += [400, 409]  # 400: an empty or over-long Idempotency-Key
    if method == "POST":
        out += [400, 413, 422]
    if "{" in route.path:
        out.append(404)
    if route.path == "/v1/items" and method == "POST":
        out.append(415)
    if route.path == "/readyz":
        out.append(503)
    return sorted(set(out))


def _scope(route: APIRoute) -> str | None:
    """The scope the route's key check asks for (see ``create_app``'s ``require``)."""
    for dep in route.dependant.dependencies:
        scope = getattr(dep.call, "scope", None)
        if isinstance(scope, str):
            return scope
    return None


def _hoist_defs(doc: dict[str, Any]) -> None:
    """Move the ``$defs`` of schemas written in by hand (a model's ``model_json_schema()`` in a request
    body, e.g. POST /v1/items' JSON) into the document's components, and point their refs there: a
    ``#/$defs/…`` ref resolves against the document's root, where it names nothing."""
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            for name, sub in (node.pop("$defs", None) or {}).items():
                schemas.setdefault(name, walk(sub))
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                node["$ref"] = "#/components/schemas/" + ref.removeprefix("#/$defs/")
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
        return node

    walk(doc["paths"])


def install(app: FastAPI) -> None:
    """Serve the completed document at /openapi.json (built once, on first request)."""

    def build() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        doc = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = doc.setdefault("components", {})
        components.setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
        components["securitySchemes"] = {
            "apiKey": {"type": "http", "scheme": "bearer", "description": "`Authorization: Bearer KEY`"}
        }
        for route in app.routes:
            if not isinstance(route, APIRoute) or not route.include_in_schema:
                continue
            scope = _scope(route)
            for method in route.methods or ():
                op = doc["paths"].get(route.path_format, {}).get(method.lower())
                if op is None:
                    continue
                responses = op.setdefault("responses", {})
                fastapi_422 = {422} if "422" in responses else set()  # parameters FastAPI validates
                for status in sorted({*_statuses(route, method, scope), *fastapi_422}):
                    responses[str(status)] = {
                        "description": WHY[status],
                        "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
                    }
                if scope is not None:
                    op["security"] = [{"apiKey": []}]
                    also = " (or `admin`)" if scope != "admin" else ""
                    needs = f"Needs a key with the `{scope}` scope{also}."
                    op["description"] = f"{op.get('description', '')}\n\n{needs}".strip()
                if method in WRITE_METHODS:
                    op.setdefault("parameters", []).append(IDEMPOTENCY_KEY)
        for replaced in ("HTTPValidationError", "ValidationError"):  # every 422 is a Problem now
            components["schemas"].pop(replaced, None)
        _hoist_defs(doc)
        app.openapi_schema = doc
        return doc

    app.openapi = build  # type: ignore[method-assign]
