"""The connection details of a running stack, as ``ARTSTORE_*`` variables."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from base.settings import Settings

#: Variables that must all be present for an environment to describe a stack.
REQUIRED_VARIABLES = (
    "ARTSTORE_KAFKA_BOOTSTRAP",
    "ARTSTORE_DATABASE_URL",
    "ARTSTORE_REDIS_URL",
    "ARTSTORE_S3_ENDPOINT",
)


def _settings_default(name: str) -> Any:
    return Settings.model_fields[name].default


#: The S3 identity and bucket the stack configures; the same as the settings' defaults, so a
#: service that only learns the endpoint still authenticates.
DEFAULT_S3_ACCESS_KEY: str = _settings_default("s3_access_key")
DEFAULT_S3_SECRET_KEY: str = _settings_default("s3_secret_key")
DEFAULT_S3_BUCKET: str = _settings_default("s3_bucket")
DEFAULT_S3_REGION: str = _settings_default("s3_region")


@dataclass(frozen=True, slots=True)
class StackEnv:
    """Where each service of the stack answers; field names match :class:`Settings`."""

    kafka_bootstrap: str
    database_url: str
    redis_url: str
    s3_endpoint: str
    s3_access_key: str = DEFAULT_S3_ACCESS_KEY
    s3_secret_key: str = DEFAULT_S3_SECRET_KEY
    s3_bucket: str = DEFAULT_S3_BUCKET
    s3_region: str = DEFAULT_S3_REGION
    s3_secure: bool = False

    def as_env(self) -> dict[str, str]:
        """``ARTSTORE_<FIELD>`` -> value, ready for ``os.environ`` or a subprocess."""
        return {
            f"ARTSTORE_{field.name.upper()}": _render(getattr(self, field.name))
            for field in fields(self)
        }

    def as_dict(self) -> dict[str, Any]:
        """Field name -> value, e.g. as keyword arguments for ``Settings``."""
        return asdict(self)

    def env_file(self, *, export: bool = False) -> str:
        """The variables as ``KEY=value`` lines (``export KEY=value`` for a shell's eval)."""
        prefix = "export " if export else ""
        return "".join(
            f"{prefix}{key}={shlex.quote(value)}\n" for key, value in self.as_env().items()
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> StackEnv | None:
        """The stack an environment describes, or None unless every required variable is set."""
        if not all(environ.get(name) for name in REQUIRED_VARIABLES):
            return None
        values: dict[str, Any] = {}
        for field in fields(cls):
            raw = environ.get(f"ARTSTORE_{field.name.upper()}")
            if raw is None:
                continue
            values[field.name] = (
                raw.lower() in {"1", "true", "yes"} if field.type == "bool" else raw
            )
        return cls(**values)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StackEnv:
        """Rebuild from :meth:`as_dict` output (as stored in ``state.json``)."""
        known = {field.name for field in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})


def _render(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
