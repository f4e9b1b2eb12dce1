"""The facade's and the auth service's OpenAPI documents are checked in and match the code."""

from __future__ import annotations

from pathlib import Path

import pytest

import schemas
from artstore.openapi_export import openapi_documents, rendered_openapi

SCHEMAS = Path(schemas.__file__).resolve().parent
GENERATED = rendered_openapi()


@pytest.mark.parametrize("rel", sorted(GENERATED))
def test_the_committed_openapi_document_matches_the_code(rel: str) -> None:
    committed = (SCHEMAS / rel).read_text(encoding="utf-8")
    assert committed == GENERATED[rel], f"schemas/{rel} is stale: run `artstore schemas export`"


def test_every_facade_error_is_declared_as_problem_json() -> None:
    facade = openapi_documents()["facade"]
    for path, operations in facade["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")):
                    assert list(response["content"]) == ["application/problem+json"], (
                        method,
                        path,
                        status,
                    )
            assert "422" not in operation["responses"], (method, path)  # it answers 400
