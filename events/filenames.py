"""The name a stored file is offered and saved under: one rule for the facade, SDK and CLI.

A stored ``original_filename`` is whatever a producer sent. Offered as is (``Content-Disposition``)
or used as a local file name, it could name a path (``../x``), break a header (CR/LF) or show a
reader another name than the real one (U+202E RIGHT-TO-LEFT OVERRIDE turns ``cod.exe`` into
what looks like ``exe.doc``). So a download name keeps only the last path segment and drops
every control, format (bidirectional overrides and isolates, zero-width characters) and
line or paragraph separator character.
"""

from __future__ import annotations

import unicodedata

#: Unicode categories never kept: controls (Cc), format characters such as U+202E and U+200B
#: (Cf), line and paragraph separators (Zl, Zp), surrogates (Cs) and unassigned (Cn).
_DROPPED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Cn"})


def download_filename(original: object, fallback: str) -> str:
    """The last segment of ``original`` without control, bidirectional or separator
    characters; ``fallback`` when nothing usable is left (empty, ``.``, ``..``)."""
    last = str(original or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in last if unicodedata.category(c) not in _DROPPED_CATEGORIES).strip()
    return fallback if name in ("", ".", "..") else name
