"""``/api/v1/webhooks``: an account's signed notifications (docs/lifecycle.md).

Any account that may read or write files (scope ``files:read`` or ``files:write``) manages its
own webhooks and nobody else's: another account's webhook id is answered 404, as an unknown one
is. Registrations and deletions are audited with their change (``webhook.registered``,
``webhook.deleted``, through the notifications' outbox); what is refused here is audited at the
facade's door (``webhook.register_refused``, ``webhook.delete_refused``).
"""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from base.openapi import body, merged, problems
from facade import queries
from facade.audit_door import correlation_of, note_subject
from facade.problems import BadRequest, Conflict, NotFound, PayloadTooLarge, Unavailable
from facade.routes_read import json_response, runtime_of
from facade.security import Caller, Forbidden, requires
from notifications import (
    AccountDeleted,
    NotificationKind,
    Registrations,
    SealingUnavailable,
    TooManyWebhooks,
    UnsafeTarget,
    parse_target,
)
from notifications.targets import MAX_URL_LENGTH, Target

router = APIRouter(prefix="/api/v1", tags=["webhooks"], responses=problems(400, 401, 403, 429, 503))
Account = Annotated[Caller, Depends(requires("files:read", "files:write", any_of=True))]
JSON = body(200, "application/json")
MAX_BODY_BYTES = 16 * 1024


class WebhookRegistration(BaseModel):
    """What an account asks for: where to send, which kinds, and a note for itself."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=MAX_URL_LENGTH)
    kinds: list[NotificationKind] = Field(min_length=1, max_length=len(NotificationKind))
    description: str = Field("", max_length=500)

    @field_validator("description")
    @classmethod
    def _printable(cls, value: str) -> str:
        # PostgreSQL text cannot hold NUL; other control characters have no place in a note.
        if any((ord(c) < 0x20 and c not in "\t\n") or ord(c) == 0x7F for c in value):
            raise ValueError("the description must not contain control characters")
        return value


_REGISTRATION_SCHEMA = {
    "type": "object",
    "required": ["url", "kinds"],
    "additionalProperties": False,
    "properties": {
        "url": {"type": "string", "minLength": 1, "maxLength": MAX_URL_LENGTH},
        "kinds": {
            "type": "array",
            "minItems": 1,
            "maxItems": len(NotificationKind),
            "items": {"type": "string", "enum": [k.value for k in NotificationKind]},
        },
        "description": {"type": "string", "maxLength": 500, "default": ""},
    },
}


def _webhooks(request: Request, *, sealing: bool = False) -> Registrations:
    """The registrations; with ``sealing``, 503 unless new secrets can be sealed."""
    registrations: Registrations | None = runtime_of(request).webhooks
    if registrations is None or (sealing and not registrations.box.ready):
        raise Unavailable(
            "webhooks are not configured on this deployment "
            "(ARTSTORE_NOTIFICATIONS_SECRET_KEYS is unset)"
        )
    return registrations


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"a webhook registration is at most {MAX_BODY_BYTES} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise PayloadTooLarge(f"a webhook registration is at most {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _parse(raw: bytes) -> WebhookRegistration:
    try:
        return WebhookRegistration.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise BadRequest(where, first["msg"]) from None


_LOOPBACK = (ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1"))


def _check_target(request: Request, url: str) -> Target:
    """The URL's shape, and its address when it names one (or ``localhost``). Other names are
    not resolved here (no lookup on the request path, no DNS traffic for arbitrary names):
    the dispatcher checks what they resolve to before every attempt."""
    policy = runtime_of(request).notification_policy
    try:
        target = parse_target(url)
        host = target.host.lower()
        if target.literal is not None:
            policy.check([target.literal])
        elif host == "localhost" or host.endswith(".localhost"):
            policy.check(list(_LOOPBACK))
    except UnsafeTarget as exc:
        raise BadRequest("url", str(exc)) from None
    return target


@router.post(
    "/webhooks",
    status_code=201,
    summary="Register a webhook for this account's events (scope files:read or files:write)",
    description=(
        "Body: `url` (http or https, no credentials, a public address unless the operator "
        "allowed its network), `kinds` (any of "
        + ", ".join(f"`{k.value}`" for k in NotificationKind)
        + "), `description`. The answer holds the signing `secret`, shown this once. Each "
        "delivery is a POST signed with it (`X-ArtStore-Signature`, see docs/sdk.md)."
    ),
    responses=merged(body(201, "application/json"), problems(409, 413)),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _REGISTRATION_SCHEMA}},
        }
    },
)
async def register_webhook(request: Request, caller: Account) -> Response:
    registrations = _webhooks(request, sealing=True)
    wanted = _parse(await _read_body(request))
    target = _check_target(request, wanted.url)
    try:
        registered = await registrations.register(
            caller.claims.client_id,
            target,
            sorted(set(wanted.kinds)),
            wanted.description,
            limit=runtime_of(request).notifications.max_webhooks_per_account,
            correlation_id=correlation_of(request),
        )
    except TooManyWebhooks as exc:
        raise Conflict(str(exc), reason="too_many_webhooks") from None
    except AccountDeleted as exc:
        # Its token was issued before the deletion and is good until it expires.
        raise Forbidden(str(exc), reason="account_deleted") from None
    except SealingUnavailable as exc:
        raise Unavailable(str(exc)) from None
    note_subject(request, registered.webhook["webhook_id"])
    document = {**registered.webhook, "secret": registered.secret}
    location = f"/api/v1/webhooks/{registered.webhook['webhook_id']}"
    return json_response(queries.dumps(document), 201, headers={"Location": location})


@router.get(
    "/webhooks",
    summary="This account's webhooks (scope files:read or files:write)",
    responses=JSON,
)
async def list_webhooks(request: Request, caller: Account) -> Response:
    items = await _webhooks(request).of_account(caller.claims.client_id)
    return json_response(queries.dumps({"items": items}))


@router.get(
    "/webhooks/{webhook_id}",
    summary="One of this account's webhooks (its secret is never shown again)",
    responses=merged(JSON, problems(404)),
)
async def get_webhook(webhook_id: UUID, request: Request, caller: Account) -> Response:
    found = await _webhooks(request).get(caller.claims.client_id, webhook_id)
    if found is None:
        raise NotFound(f"this account has no webhook {webhook_id}")
    return json_response(queries.dumps(found))


@router.delete(
    "/webhooks/{webhook_id}",
    status_code=204,
    summary="Delete one of this account's webhooks; its pending deliveries are cancelled",
    responses=problems(404),
)
async def delete_webhook(webhook_id: UUID, request: Request, caller: Account) -> Response:
    deleted = await _webhooks(request).delete(
        caller.claims.client_id, webhook_id, correlation_id=correlation_of(request)
    )
    if not deleted:
        raise NotFound(f"this account has no webhook {webhook_id}")
    return Response(status_code=204)


@router.get(
    "/webhooks/{webhook_id}/deliveries",
    summary="A webhook's delivery log, the latest first, every attempt included",
    description=(
        "Each delivery: `status` (`pending`, `delivered`, `failed`, `cancelled`), `attempts`, "
        "`next_attempt_at` while pending, and `log`: per attempt its time, duration, the "
        "receiver's status code or the error. `before` (a `created_at`) pages back."
    ),
    responses=merged(JSON, problems(404)),
)
async def list_deliveries(
    webhook_id: UUID,
    request: Request,
    caller: Account,
    status: Literal["pending", "delivered", "failed", "cancelled"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    before: datetime | None = None,
) -> Response:
    if before is not None:
        if before.tzinfo is None:
            raise BadRequest("before", "give a time zone (e.g. 2027-01-10T12:00:00Z)")
        try:
            before = before.astimezone(UTC)
        except OverflowError:
            raise BadRequest("before", "the time is out of range once taken to UTC") from None
    found = await _webhooks(request).deliveries(
        caller.claims.client_id, webhook_id, status=status, limit=limit, before=before
    )
    if found is None:
        raise NotFound(f"this account has no webhook {webhook_id}")
    return json_response(queries.dumps({"items": found}))
