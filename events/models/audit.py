"""Audit facts: authentication and administrative actions, on ``artstore.audit``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, Field, StringConstraints

from events.models.common import Strict


class AuditRecorded(Strict):
    """One auditable action: who did what to whom, and whether it worked."""

    action: Annotated[str, StringConstraints(pattern=r"^[a-z_]+(\.[a-z_]+)+$", max_length=64)]
    actor: str | None = Field(None, description="client_id or subject that acted, if known.")
    subject: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    outcome: Literal["success", "failure"]
    reason: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)
    occurred_at: AwareDatetime
