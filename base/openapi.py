"""OpenAPI documents that declare every status code and content type an operation answers with.

FastAPI documents the success response and a 422 for request validation. The facade answers
every error as RFC 9457 ``application/problem+json`` (400 for validation) and the auth service
as RFC 6749 §5.2 JSON: each route declares what it returns with :func:`problems` or
:func:`oauth_errors`, and :func:`without_default_422` drops what FastAPI adds but an app never
sends. The documents are checked into ``schemas/openapi/`` (``artstore schemas export``).
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI

PROBLEM_JSON = "application/problem+json"

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details.",
    "properties": {
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "parameter": {"type": "string"},
    },
    "required": ["title", "status", "detail"],
}

OAUTH_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 6749 §5.2 error response.",
    "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}},
    "required": ["error"],
}

DETAIL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"detail": {}},
    "required": ["detail"],
}

Responses = dict[int | str, dict[str, Any]]


def _described(status: int, media_type: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "description": HTTPStatus(status).phrase,
        "content": {media_type: {"schema": schema}},
    }


def problems(*statuses: int) -> Responses:
    """Problem-details responses for ``statuses`` (the facade's errors)."""
    return {status: _described(status, PROBLEM_JSON, PROBLEM_SCHEMA) for status in statuses}


def oauth_errors(*statuses: int) -> Responses:
    """RFC 6749 error responses for ``statuses`` (the auth service's token endpoints)."""
    return {
        status: _described(status, "application/json", OAUTH_ERROR_SCHEMA) for status in statuses
    }


def details(*statuses: int) -> Responses:
    """``{"detail": ...}`` JSON responses for ``statuses`` (the accounts API's refusals)."""
    return {status: _described(status, "application/json", DETAIL_SCHEMA) for status in statuses}


def empty(*statuses: int) -> Responses:
    """Responses without a body (304, or a 200 that only acknowledges)."""
    return {status: {"description": HTTPStatus(status).phrase} for status in statuses}


def body(status: int, *media_types: str, schema: dict[str, Any] | None = None) -> Responses:
    """A response of ``status`` in any of ``media_types``."""
    content = {media: {"schema": schema or {}} for media in media_types}
    return {status: {"description": HTTPStatus(status).phrase, "content": content}}


def merged(*parts: Responses) -> Responses:
    """One ``responses=`` mapping from several."""
    out: Responses = {}
    for part in parts:
        out.update(part)
    return out


def without_default_422(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """An ``app.openapi`` that leaves out the 422 FastAPI documents for routes whose
    validation errors the app answers otherwise (declared as 400)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = FastAPI.openapi(app)
        for path in document.get("paths", {}).values():
            for operation in path.values():
                responses = operation.get("responses", {})
                if "422" in responses and "400" in responses:
                    del responses["422"]
        schemas = document.get("components", {}).get("schemas", {})
        if not any(
            "422" in op.get("responses", {})
            for p in document["paths"].values()
            for op in p.values()
        ):
            schemas.pop("HTTPValidationError", None)
            schemas.pop("ValidationError", None)
        app.openapi_schema = document
        return document

    return openapi
