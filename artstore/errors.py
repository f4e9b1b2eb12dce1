"""Turning the failures a user can fix into one clear sentence instead of a traceback."""

from __future__ import annotations

from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError
from pydantic import ValidationError

from base.settings import MissingEnvFile
from producers import ArtStoreError, MissingConfigFile

_START_STACK = (
    "start the local stack with `artstore stack up` (or `make stack-up`), "
    "or point ARTSTORE_KAFKA_BOOTSTRAP at a broker"
)


def explain(exc: BaseException) -> str | None:
    """A message naming the problem and what to do, or None if it is a bug, not a user error."""
    if isinstance(exc, ValidationError):
        problems = []
        for err in exc.errors():
            field = ".".join(str(part) for part in err["loc"])
            variable = f"ARTSTORE_{field.upper()}" if field else "(settings)"
            problems.append(f"{variable}: {err['msg']}")
        return "invalid configuration: " + "; ".join(problems)
    if isinstance(exc, ArtStoreError):
        return str(exc)
    if isinstance(exc, MissingEnvFile | MissingConfigFile):
        return str(exc)
    if isinstance(exc, KafkaConnectionError | KafkaTimeoutError):
        return f"cannot reach Kafka ({exc}): {_START_STACK}"
    if isinstance(exc, ConnectionRefusedError | TimeoutError):
        return f"a service did not answer ({exc}): {_START_STACK}"
    from storage_workers.rebuild import ElementNotFound
    from storage_workers.writer_claim import ElementHasAWriter

    if isinstance(exc, ElementNotFound | ElementHasAWriter):
        return str(exc)
    return None
