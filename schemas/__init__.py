"""Generated JSON Schemas of every event, the AsyncAPI document, and the attr.json schemas.

``events/*.schema.json`` and ``asyncapi.json`` are written by ``artstore schemas export`` and
checked against the code by the tests; ``attr/`` holds the sidecar formats, which are frozen
storage contracts and therefore written by hand.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

DIRECTORY = Path(__file__).resolve().parent


@cache
def attr_schema(version: str) -> dict[str, Any]:
    """The JSON Schema of attr.json ``version`` ("1" or "2")."""
    if version not in ("1", "2"):
        raise ValueError(f"attr.json has versions 1 and 2, not {version!r}")
    text = (DIRECTORY / "attr" / f"attr-v{version}.schema.json").read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded
