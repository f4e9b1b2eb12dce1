"""What the facade audits itself: downloads, the console's changes, and what it refuses at its
doors before anything reaches Kafka or the auth service.

A command the facade accepts is audited by the storage worker that carries it out (its fact and
its audit event go out together); an account change the console passes on is audited by the auth
service, refusal included. What is refused here never reaches them, so the facade records the
refusal. Rate-limited requests (429) are counted in metrics, not audited, as in the auth service:
a flood must not fill the audit journal.

Routes tell this middleware what only they know through ``request.state``: ``client_id`` (the
verified caller), ``problem_detail`` (why it was refused), and, through the helpers below, a
subject, a refusal answered without an error status, or a refusal another service records.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import Request, Response

from events import audit_event
from facade.audit_relay import DROPPED, AuditRelay

SOURCE = "artstore-facade"
CORRELATION_HEADER = "X-Correlation-ID"
_CORRELATION = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


@dataclass(frozen=True)
class AuditedRoute:
    """A door the facade audits: ``done`` on success (None: the service that carries the change
    out audits it); ``subject_field``, a form field naming the subject (console forms)."""

    method: str
    path: re.Pattern[str]
    done: str | None
    refused: str
    subject_field: str | None = None


def _door(
    method: str, path: str, done: str | None, refused: str, subject_field: str | None = None
) -> AuditedRoute:
    return AuditedRoute(method, re.compile(path), done, refused, subject_field)


_FILE = r"(?P<s>[^/]+)"
_ACCOUNT = r"^/console/accounts/(?P<s>[^/]+)"
_DOWNLOAD = ("file.downloaded", "file.download_refused")
_RESTORE = ("file.restore_requested", "file.restore_refused")
_LETTER = r"(?P<s>[^/]+/[^/]+)"
ROUTES = (
    _door("GET", rf"^/api/v1/files/{_FILE}/content$", *_DOWNLOAD),
    _door("POST", r"^/api/v1/(?P<s>uploads)$", None, "upload.refused"),
    _door(
        "POST",
        rf"^/api/v1/files/{_FILE}/restore$",
        "file.restore_requested",
        "file.restore_refused",
    ),
    _door("PATCH", rf"^/api/v1/files/{_FILE}$", None, "file.metadata_update_refused"),
    _door("DELETE", rf"^/api/v1/files/{_FILE}$", None, "file.delete_refused"),
    _door("POST", rf"^/api/v1/files/{_FILE}/legal-hold$", None, "file.legal_hold_refused"),
    _door(
        "DELETE",
        rf"^/api/v1/files/{_FILE}/legal-hold$",
        None,
        "file.legal_hold_release_refused",
    ),
    _door("POST", r"^/api/v1/elements/(?P<s>[^/]+)/mode$", None, "element.mode_change_refused"),
    _door("GET", r"^/api/v1/(?P<s>dlq)$", None, "dlq.read_refused"),
    _door("GET", rf"^/api/v1/dlq/{_LETTER}$", None, "dlq.read_refused"),
    _door("POST", r"^/api/v1/(?P<s>dlq)/redrive$", None, "dlq.redrive_refused"),
    _door("POST", r"^/api/v1/(?P<s>webhooks)$", None, "webhook.register_refused"),
    _door("DELETE", r"^/api/v1/webhooks/(?P<s>[^/]+)$", None, "webhook.delete_refused"),
    _door("GET", rf"^/console/files/{_FILE}/content$", *_DOWNLOAD),
    _door(
        "POST", r"^/console/signin$", "console.signed_in", "console.sign_in_refused", "client_id"
    ),
    _door("POST", r"^/console/signout$", "console.signed_out", "console.sign_out_refused"),
    _door("POST", r"^/console/elements/mode$", None, "element.mode_change_refused", "element_id"),
    _door("GET", rf"^/console/pipeline/dlq/{_LETTER}$", None, "dlq.read_refused"),
    _door("POST", r"^/console/pipeline/(?P<s>dlq)/redrive$", None, "dlq.redrive_refused"),
    _door("POST", r"^/console/(?P<s>accounts)$", None, "account.create_refused", "name"),
    _door("POST", _ACCOUNT + r"/rotate-secret$", None, "account.secret_rotation_refused"),
    _door("POST", _ACCOUNT + r"/suspend$", None, "account.suspend_refused"),
    _door("POST", _ACCOUNT + r"/activate$", None, "account.activate_refused"),
    _door("POST", _ACCOUNT + r"/[^/]+$", None, "account.change_refused"),
)


def audited_route(method: str, path: str) -> tuple[AuditedRoute, str | None] | None:
    """The audited door a request knocks at, and the subject its path names, if any."""
    for route in ROUTES:
        if route.method == method and (match := route.path.match(path)):
            return route, match.groupdict().get("s")
    return None


def note_subject(request: Request, subject: str) -> None:
    """Name the subject of the audited request (when neither its path nor its form does)."""
    request.state.audit_subject = subject


def note_refusal(request: Request, detail: str) -> None:
    """The request is refused, though its answer is no error (a page, a redirect)."""
    request.state.refused = True
    request.state.problem_detail = detail


def note_audited_elsewhere(request: Request) -> None:
    """The service that refused the request has recorded the refusal: not again here."""
    request.state.audited_elsewhere = True


def correlation_of(request: Request) -> str:
    """The caller's ``X-Correlation-ID`` when it is a sane id, else a new one."""
    given = request.headers.get(CORRELATION_HEADER, "")
    return given if _CORRELATION.match(given) else str(uuid.uuid4())


def _subject(request: Request, route: AuditedRoute, from_path: str | None) -> str:
    state = request.state
    explicit = getattr(state, "audit_subject", None)
    if explicit:
        return str(explicit)
    if route.subject_field is not None:
        field = getattr(state, "form_fields", {}).get(route.subject_field, "").strip()
        if field:
            return str(field)
    return from_path or getattr(state, "client_id", None) or "console"


async def audit_requests(
    request: Request,
    call_next: Callable[[Request], Awaitable[Response]],
    relay: Callable[[], AuditRelay],
    refuse_unaudited: Callable[[], Response],
) -> Response:
    """Middleware: note the correlation id, refuse a download that could not be audited, and
    journal the audit event of every audited request before it is answered."""
    correlation = correlation_of(request)
    request.state.correlation_id = correlation
    door = audited_route(request.method, request.url.path)
    if door is not None and door[0].done is not None and not relay().has_room():
        response = refuse_unaudited()
    else:
        response = await call_next(request)
    response.headers[CORRELATION_HEADER] = correlation
    state = request.state
    if door is None or response.status_code == 429 or getattr(state, "audited_elsewhere", False):
        return response
    route, from_path = door
    failed = response.status_code >= 400 or getattr(state, "refused", False)
    action = route.refused if failed else route.done
    if action is None:
        return response
    details: dict[str, object] = {"status": response.status_code}
    if request.url.path.startswith("/console/"):
        details["door"] = "console"
    if not failed and (size := response.headers.get("content-length")):
        details["bytes"] = int(size) if size.isdigit() else size
    if rng := request.headers.get("range"):
        details["range"] = rng[:100]
    details.update(getattr(state, "audit_details", {}))
    recorded = await relay().record(
        audit_event(
            action,
            subject=_subject(request, route, from_path)[:200],
            source=SOURCE,
            outcome="failure" if failed else "success",
            actor=getattr(state, "client_id", None),
            reason=getattr(state, "problem_detail", None) if failed else None,
            details=details,
            correlation_id=correlation,
        )
    )
    if recorded:
        return response
    if failed:
        DROPPED.inc()
        return response
    # Not on disk, so not served: no download goes unaudited.
    return refuse_unaudited()
