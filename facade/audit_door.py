"""What the facade audits itself: downloads, and commands it refuses before they reach Kafka.

A command the facade accepts is audited by the storage worker that carries it out (its fact and
its audit event go out together); a command refused here never reaches a worker, so the facade
records the refusal. Rate-limited requests (429) are counted in metrics, not audited, as in the
auth service: a flood must not fill the audit buffer.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import Request, Response

from events import audit_event
from facade.audit_buffer import AuditBuffer

SOURCE = "artstore-facade"
CORRELATION_HEADER = "X-Correlation-ID"
_CORRELATION = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


@dataclass(frozen=True)
class AuditedRoute:
    """A door the facade audits: ``done`` on success (None: the worker audits it)."""

    method: str
    path: re.Pattern[str]
    done: str | None
    refused: str


ROUTES = (
    AuditedRoute(
        "GET",
        re.compile(r"^/api/v1/files/(?P<s>[^/]+)/content$"),
        "file.downloaded",
        "file.download_refused",
    ),
    AuditedRoute("POST", re.compile(r"^/api/v1/(?P<s>uploads)$"), None, "upload.refused"),
    AuditedRoute(
        "PATCH", re.compile(r"^/api/v1/files/(?P<s>[^/]+)$"), None, "file.metadata_update_refused"
    ),
    AuditedRoute(
        "DELETE", re.compile(r"^/api/v1/files/(?P<s>[^/]+)$"), None, "file.delete_refused"
    ),
    AuditedRoute(
        "POST",
        re.compile(r"^/api/v1/elements/(?P<s>[^/]+)/mode$"),
        None,
        "element.mode_change_refused",
    ),
)


def audited_route(method: str, path: str) -> tuple[AuditedRoute, str] | None:
    """The audited door a request knocks at, and its subject (file, element or ``uploads``)."""
    for route in ROUTES:
        if route.method == method and (match := route.path.match(path)):
            return route, match["s"][:200]
    return None


def correlation_of(request: Request) -> str:
    """The caller's ``X-Correlation-ID`` when it is a sane id, else a new one."""
    given = request.headers.get(CORRELATION_HEADER, "")
    return given if _CORRELATION.match(given) else str(uuid.uuid4())


async def audit_requests(
    request: Request,
    call_next: Callable[[Request], Awaitable[Response]],
    buffer: Callable[[], AuditBuffer],
    refuse_unaudited: Callable[[], Response],
) -> Response:
    """Middleware: note the correlation id, refuse a download that could not be audited,
    and queue the audit event of every audited request once its answer is known."""
    correlation = correlation_of(request)
    request.state.correlation_id = correlation
    door = audited_route(request.method, request.url.path)
    if door is not None and door[0].done is not None and not buffer().has_room():
        response = refuse_unaudited()
    else:
        response = await call_next(request)
    response.headers[CORRELATION_HEADER] = correlation
    if door is None or response.status_code == 429:
        return response
    route, subject = door
    failed = response.status_code >= 400
    action = route.refused if failed else route.done
    if action is None:
        return response
    details: dict[str, object] = {"status": response.status_code}
    if not failed and (size := response.headers.get("content-length")):
        details["bytes"] = int(size) if size.isdigit() else size
    if rng := request.headers.get("range"):
        details["range"] = rng[:100]
    buffer().add(
        audit_event(
            action,
            subject=subject,
            source=SOURCE,
            outcome="failure" if failed else "success",
            actor=getattr(request.state, "client_id", None),
            reason=getattr(request.state, "problem_detail", None) if failed else None,
            details=details,
            correlation_id=correlation,
        )
    )
    return response
