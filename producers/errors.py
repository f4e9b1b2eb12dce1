"""Typed errors of the SDK: each carries the server's reason and what to do about it."""

from __future__ import annotations

from typing import Any


class ArtStoreError(Exception):
    """Base of every SDK error: ``reason`` is a stable machine word, ``detail`` the text."""

    default_reason = "error"

    def __init__(
        self, detail: str, *, reason: str | None = None, status: int | None = None
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.reason = reason or self.default_reason
        self.status = status

    def __str__(self) -> str:
        return self.detail


class Rejected(ArtStoreError):
    """The archive refused the request for good (an upload rejected by its element, a command
    refused for the element's mode...). ``reason`` is one of docs/rejections.md's values."""

    default_reason = "rejected"

    def __init__(self, reason: str, detail: str, *, status: int | None = None) -> None:
        super().__init__(detail, reason=reason, status=status)

    def __str__(self) -> str:
        return f"rejected ({self.reason}): {self.detail}"


class NotFound(ArtStoreError):
    """No such file, upload, element or account (or it was deleted: ``reason='gone'``)."""

    default_reason = "not_found"


class Unauthorized(ArtStoreError):
    """Bad credentials, an expired or revoked token (401) or missing scope (403)."""

    default_reason = "unauthorized"


class RateLimited(ArtStoreError):
    """Too many requests for this client; retry after ``retry_after`` seconds."""

    default_reason = "rate_limited"

    def __init__(self, detail: str, *, retry_after: float, status: int = 429) -> None:
        super().__init__(f"{detail} (retry after {retry_after:g} s)", status=status)
        self.retry_after = retry_after


class Timeout(ArtStoreError, TimeoutError):
    """An outcome did not arrive in time; the operation may still complete later."""

    default_reason = "timeout"


class BadRequest(ArtStoreError):
    """The server refused the request's parameters (400); the detail names the parameter."""

    default_reason = "bad_request"


class InvalidUpload(BadRequest):
    """An upload's arguments break the contract; ``field`` names the argument (e.g.
    ``ttl_days``), ``None`` when the rule involves several."""

    default_reason = "invalid_upload"

    def __init__(self, detail: str, *, field: str | None) -> None:
        super().__init__(detail)
        self.field = field


class Unavailable(ArtStoreError):
    """A service did not answer or answered 5xx; retrying later may help."""

    default_reason = "unavailable"


class BrokerUnavailable(Unavailable):
    """The broker did not take upload commands within the publish deadline. They may still
    arrive; ``file_ids`` names them, and publishing the same uploads again is safe (an upload
    with the same file_id and bytes is stored once). Their staged bytes are kept for that."""

    default_reason = "broker_unavailable"

    def __init__(self, detail: str, *, file_ids: list[str]) -> None:
        super().__init__(detail)
        self.file_ids = file_ids


class ChecksumMismatch(ArtStoreError):
    """Downloaded bytes do not hash to the file's sha256; the partial download was removed."""

    default_reason = "checksum_mismatch"


class ConfigurationError(ArtStoreError):
    """The client is missing a setting it needs for this call (e.g. no client secret)."""

    default_reason = "configuration"


def _retry_after(headers: Any) -> float:
    raw = headers.get("retry-after") if headers is not None else None
    try:
        return max(0.0, float(raw)) if raw is not None else 1.0
    except ValueError:
        return 1.0


def _validation_detail(detail: Any) -> str | None:
    """FastAPI's 422 list of problems as "field: message; ..." (None if it is not one)."""
    if not isinstance(detail, list) or not all(isinstance(d, dict) for d in detail):
        return None
    problems = []
    for problem in detail:
        where = [str(p) for p in problem.get("loc", []) if p not in ("body", "query", "path")]
        message = str(problem.get("msg", "invalid"))
        problems.append(f"{'.'.join(where)}: {message}" if where else message)
    return "; ".join(problems) or None


def error_from_response(status: int, body: Any, headers: Any, *, what: str) -> ArtStoreError:
    """The typed error of an HTTP error response from the auth service or the facade.

    Auth answers RFC 6749 §5.2 bodies (``error``, ``error_description``); the facade answers
    RFC 9457 problem details (``title``, ``detail``, sometimes ``reason``).
    """
    body = body if isinstance(body, dict) else {}
    detail = _validation_detail(body.get("detail")) or str(
        body.get("detail") or body.get("error_description") or body.get("title") or f"HTTP {status}"
    )
    reason = body.get("reason") or body.get("error")
    detail = f"{what}: {detail}"
    if status == 429:
        return RateLimited(detail, retry_after=_retry_after(headers))
    if status in (401, 403):
        return Unauthorized(detail, reason=str(reason or "unauthorized"), status=status)
    if status == 404:
        return NotFound(detail, status=status)
    if status == 410:
        return NotFound(detail, reason="gone", status=status)
    if status == 409:
        return Rejected(str(reason or "conflict"), detail, status=status)
    if status in (400, 413, 416, 422):
        return BadRequest(detail, reason=str(reason or "bad_request"), status=status)
    if status >= 500:
        return Unavailable(detail, status=status)
    return ArtStoreError(detail, reason=str(reason or "error"), status=status)
