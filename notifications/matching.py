"""Facts to deliveries: which facts notify, which webhooks hear of them, and what is sent.

Pure: the dispatcher hands in decoded facts and the owners' webhooks; nothing here waits.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from events import BY_TYPE, Envelope
from notifications.queue import NewDelivery, Subscriber
from notifications.routing import ROUTES, Route, delivery_id


@dataclass(frozen=True, slots=True)
class Notable:
    """A fact that notifies its owner's webhooks of ``route.kind``."""

    route: Route
    owner: str
    envelope: Envelope[Any]


def route_of_type(event_type: str | None) -> Route | None:
    """The route of a registered event type (from the ``ce_type`` header), or None."""
    spec = BY_TYPE.get(event_type) if event_type else None
    return None if spec is None else ROUTES.get(spec.model.__name__)


def notable(envelope: Envelope[Any]) -> Notable | None:
    """The notification a decoded fact makes, or None (no route, or nobody owns it)."""
    route = ROUTES.get(type(envelope.data).__name__)
    if route is None:
        return None
    owner = route.owner_of(envelope.data)
    return None if owner is None else Notable(route, owner, envelope)


def body_of(delivery: str, webhook: str, kind: str, envelope: Envelope[Any]) -> bytes:
    """The JSON a receiver gets: what happened, to what, when, and the fact's own data."""
    document = {
        "delivery_id": delivery,
        "webhook_id": webhook,
        "kind": kind,
        "event_id": envelope.id,
        "event_type": envelope.type,
        "subject": envelope.subject,
        "occurred_at": envelope.time.isoformat(),
        "correlation_id": envelope.correlation_id,
        "data": envelope.data.model_dump(mode="json"),
    }
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def deliveries_for(
    notables: Iterable[Notable], subscribers: Sequence[Subscriber]
) -> list[NewDelivery]:
    """One delivery per fact and webhook of its owner subscribed to its kind, registered no
    later than the fact happened (a new webhook does not hear of the past)."""
    by_owner: dict[str, list[Subscriber]] = {}
    for subscriber in subscribers:
        by_owner.setdefault(subscriber.client_id, []).append(subscriber)
    out: list[NewDelivery] = []
    seen: set[str] = set()
    for n in notables:
        once = n.route.once(n.envelope.data, n.envelope.id)
        for s in by_owner.get(n.owner, ()):
            if n.route.kind.value not in s.kinds or n.envelope.time < s.created_at:
                continue
            did = delivery_id(s.webhook_id, once)
            if str(did) in seen:
                continue
            seen.add(str(did))
            out.append(
                NewDelivery(
                    did,
                    s.webhook_id,
                    n.route.kind.value,
                    n.envelope.id,
                    n.envelope.type,
                    n.envelope.subject,
                    body_of(str(did), str(s.webhook_id), n.route.kind.value, n.envelope),
                )
            )
    return out
