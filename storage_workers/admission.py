"""From a Kafka record to a command we may act on: strict decoding, age and token checks."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from aiokafka.structs import ConsumerRecord

from auth import (
    HttpJwksSource,
    InsufficientScope,
    JwksSource,
    SignatureCache,
    StaticJwksSource,
    TokenError,
    TokenVerifier,
    VerificationUnavailable,
)
from events import EventDecodeError, ReceivedEvent, RejectionReason, Topic, decode_record, spec_for
from storage_workers.config import WorkerConfig
from storage_workers.handlers import Caller


class TransientFailure(Exception):
    """Retrying later may succeed (keys unreachable, storage down)."""


@dataclass(frozen=True, slots=True)
class Admitted:
    """A valid command from a caller allowed to send it."""

    event: ReceivedEvent
    caller: Caller

    @property
    def command(self) -> Any:
        """The typed payload."""
        return self.event.data


@dataclass(frozen=True, slots=True)
class Refused:
    """A command that can never succeed, with enough to answer it with a fact."""

    reason: RejectionReason
    detail: str
    subject: str | None
    """file_id or element_id when it could be read, else None (then: DLQ)."""
    event: ReceivedEvent | None = None


async def catch_up_revocations(verifier: TokenVerifier) -> None:
    """Make every revocation made before now count for the records about to be admitted (they
    were all written before now); :class:`TransientFailure` if the deny-list is unreachable."""
    try:
        await verifier.catch_up()
    except VerificationUnavailable as exc:
        raise TransientFailure(exc.description) from exc


def record_time(record: ConsumerRecord[Any, Any]) -> datetime:
    """When the broker (or producer) stamped the record."""
    return datetime.fromtimestamp(record.timestamp / 1000, UTC)


async def admit(
    record: ConsumerRecord[Any, Any],
    *,
    topic: Topic,
    verifier: TokenVerifier,
    max_bytes: int,
    max_age: timedelta,
    replay: bool,
    now: datetime,
    signatures: SignatureCache | None = None,
) -> Admitted | Refused:
    """Decode, check age and token; raise :class:`TransientFailure` if the keys are unreachable.

    ``signatures`` is shared by the records of one batch, so a token they all carry has its
    signature verified once; its validity is still checked at each record's timestamp.
    """
    try:
        event = decode_record(record, max_bytes=max_bytes, topic=topic)
    except EventDecodeError as exc:
        return Refused(RejectionReason.INVALID_PAYLOAD, str(exc), _subject_of(record.value))
    subject = event.key
    written_at = record_time(record)
    if not replay and now - written_at > max_age:
        return Refused(
            RejectionReason.COMMAND_TOO_OLD,
            f"command written at {written_at.isoformat()} is older than {max_age}; "
            "replay it on purpose to apply it",
            subject,
            event,
        )
    if event.token is None:
        return Refused(RejectionReason.INVALID_TOKEN, "command has no bearer token", subject, event)
    scope = spec_for(event.data).scope
    try:
        token = await verifier.verify(
            event.token,
            required_scopes={scope} if scope else (),
            at=written_at,
            signatures=signatures,
        )
    except VerificationUnavailable as exc:
        raise TransientFailure(exc.description) from exc
    except InsufficientScope as exc:
        return Refused(RejectionReason.INSUFFICIENT_SCOPE, exc.description, subject, event)
    except TokenError as exc:
        return Refused(RejectionReason.INVALID_TOKEN, exc.description, subject, event)
    return Admitted(event, Caller(token.client_id, token.name or token.client_id, token.role))


def _subject_of(value: bytes | None) -> str | None:
    """The file or element id of an undecodable command, when one can be read at all."""
    try:
        doc = json.loads(value or b"")
        data = doc.get("data") if isinstance(doc, dict) else None
        if isinstance(data, dict):
            if isinstance(data.get("file_id"), str):
                return str(UUID(data["file_id"]))
            if isinstance(data.get("element_id"), str):
                return str(data["element_id"])
    except (ValueError, TypeError, RecursionError):
        return None
    return None


def make_verifier(config: WorkerConfig) -> TokenVerifier:
    """The project's one token verifier, with keys from a JWKS URL or file."""
    keys: JwksSource
    if config.jwks_file is not None:
        keys = StaticJwksSource(json.loads(config.jwks_file.read_text()))
    elif config.jwks_url is not None:
        keys = HttpJwksSource(config.jwks_url)
    else:
        raise ValueError("set ARTSTORE_STORAGE_JWKS_URL (or _JWKS_FILE) to verify commands")
    return TokenVerifier(keys, issuer=config.token_issuer, audience=config.token_audience)
