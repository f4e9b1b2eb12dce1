"""The console's Jinja environment and its filters."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import jinja2


def size(value: int | None) -> str:
    """Bytes for people: 1.5 GB, 320 kB."""
    if value is None:
        return "—"
    amount = float(value)
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if abs(amount) < 1000 or unit == "PB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1000
    return f"{value} B"


def when(value: datetime | str | None) -> str:
    """A UTC timestamp to the second."""
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return str(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def ago(value: datetime | str | None) -> str:
    """How long ago, in seconds, minutes or hours."""
    if value is None or value == "":
        return "never"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    seconds = (datetime.now(UTC) - value).total_seconds()
    if seconds < 120:
        return f"{max(0, int(seconds))} s ago"
    if seconds < 7200:
        return f"{int(seconds // 60)} min ago"
    return f"{int(seconds // 3600)} h ago"


def template_environment(directory: Path) -> jinja2.Environment:
    """Autoescaping templates from ``directory`` with the console's filters."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(directory),
        autoescape=jinja2.select_autoescape(default=True),
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(size=size, when=when, ago=ago)
    return env
