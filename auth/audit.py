"""Audit facts (``artstore.audit.recorded.v1``) for the outbox, and the relay's publisher."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Literal

from auth.outbox import OutboxMessage
from events import EventPublisher, OutgoingRecord, TopicNames, audit_event, encode

SOURCE = "artstore-auth"


class AuditTrail:
    """Builds the outbox record of one auditable action."""

    def __init__(
        self, topics: TopicNames, *, max_message_bytes: int, clock: Callable[[], datetime]
    ) -> None:
        self._topics = topics
        self._max = max_message_bytes
        self._clock = clock

    def record(
        self,
        action: str,
        *,
        subject: str,
        outcome: Literal["success", "failure"] = "success",
        actor: str | None = None,
        reason: str | None = None,
        details: dict[str, Any] | None = None,
        correlation_id: str | None = None,
    ) -> OutboxMessage:
        """The outbox message announcing ``action`` on ``subject`` (never a secret in details)."""
        envelope = audit_event(
            action,
            subject=subject,
            source=SOURCE,
            outcome=outcome,
            actor=actor,
            reason=reason,
            details=details,
            correlation_id=correlation_id,
            time=self._clock(),
        )
        record = encode(envelope, self._topics, max_bytes=self._max)
        return OutboxMessage(
            topic=record.topic,
            key=record.key,
            value=record.value,
            headers=tuple((k, v.encode("utf-8")) for k, v in record.headers.items()),
        )


class EventOutboxPublisher:
    """Relays outbox rows through the shared :class:`events.EventPublisher` (pipelined sends)."""

    def __init__(self, publisher: EventPublisher) -> None:
        self._publisher = publisher

    async def publish_batch(self, messages: Sequence[OutboxMessage]) -> None:
        records = []
        for m in messages:
            headers = {k: v.decode("utf-8") for k, v in m.headers}
            records.append(
                OutgoingRecord(
                    topic=m.topic,
                    key=m.key or b"",
                    value=m.value,
                    headers=headers,
                    event_type=headers.get("ce_type", ""),
                )
            )
        await self._publisher.send_records(records)
