"""The facade's and the auth service's OpenAPI documents, as checked into ``schemas/openapi/``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def openapi_documents() -> dict[str, dict[str, Any]]:
    """``{"facade": ..., "auth": ...}``, built from the apps (no service is started)."""
    from auth.app import create_app as create_auth_app
    from auth.settings import AuthSettings
    from base.settings import Settings
    from facade import FacadeSettings
    from facade import create_app as create_facade_app

    settings = Settings(_env_file=None)
    return {
        "facade": create_facade_app(settings, FacadeSettings(_env_file=None)).openapi(),
        "auth": create_auth_app(settings, AuthSettings(_env_file=None)).openapi(),
    }


def rendered_openapi() -> dict[str, str]:
    """Relative path under ``schemas/`` -> stable text of each document."""
    return {
        f"openapi/{name}.json": json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        for name, doc in openapi_documents().items()
    }


def export_openapi(directory: Path) -> list[Path]:
    """Write the documents under ``directory``; returns their paths."""
    written = []
    for rel, text in rendered_openapi().items():
        path = directory / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
