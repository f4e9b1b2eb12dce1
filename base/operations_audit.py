"""Audit events of operator commands run from the CLI: replay, rebuild, dead-letter redrive.

These commands act on Kafka themselves, so they publish their audit event on the same broker
when they finish, with the operator (``operator:<user>@<host>``) as the actor. A command whose
broker is away fails before it changes anything, and says so; its audit event then has nothing
to record.
"""

from __future__ import annotations

import getpass
import socket
from typing import Any, Literal

from base.settings import Settings, broker_settings
from events import EventPublisher, Outgoing, audit_event, make_broker

SOURCE = "artstore-cli"


def operator() -> str:
    """Who runs this command: the local user and machine."""
    return f"operator:{getpass.getuser()}@{socket.gethostname()}"[:200]


async def record_operation(
    settings: Settings,
    action: str,
    *,
    subject: str,
    outcome: Literal["success", "failure"] = "success",
    reason: str | None = None,
    details: dict[str, Any] | None = None,
    correlation_id: str | None = None,
    actor: str | None = None,
) -> str:
    """Publish the audit event of an operator command; return its event id.

    ``artstore dlq redrive`` calls it once per redriven entry with ``action="dlq.redriven"``,
    ``subject`` the entry's original topic, partition and offset (``topic/partition/offset``),
    ``details`` the target topic and the new record's event id, and ``correlation_id`` the
    entry's correlation id, so the redrive joins the chain of the record it resends.
    """
    event = audit_event(
        action,
        subject=subject,
        source=SOURCE,
        outcome=outcome,
        actor=actor or operator(),
        reason=reason,
        details=details,
        correlation_id=correlation_id,
    )
    broker = make_broker(broker_settings(settings, client_id="artstore-cli-audit"))
    await broker.start()
    try:
        publisher = EventPublisher(
            broker, settings.topic_names(), max_message_bytes=settings.max_message_bytes
        )
        await publisher.publish_many([Outgoing(event)])
    finally:
        await broker.stop()
    return event.id
