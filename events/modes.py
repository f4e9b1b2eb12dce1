"""What each mode allows, how an element may move between modes, and which class of elements
an upload goes to (SPEC §3). Pure: the storage workers, the facade and the SDK all decide with
these."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from events.models.common import Mode, RetentionPolicy
from events.topics import Topic


def upload_mode(policy: RetentionPolicy) -> Mode:
    """The class of elements an upload with ``policy`` goes to: temporary files to edit
    elements (they may be deleted), permanent ones to rw elements."""
    return Mode.EDIT if policy is RetentionPolicy.TEMPORARY else Mode.RW


UPLOAD_TOPIC: dict[Mode, Topic] = {Mode.EDIT: Topic.UPLOADS_EDIT, Mode.RW: Topic.UPLOADS_RW}
"""The upload topic of each class of elements that takes uploads."""


def upload_topic(mode: Mode) -> Topic:
    """The upload topic of the class of an element in ``mode`` (ro and ar belong to rw)."""
    return UPLOAD_TOPIC[mode if mode in UPLOAD_TOPIC else Mode.RW]


class Operation(StrEnum):
    """Things a client can ask of an element."""

    UPLOAD = "upload"
    UPDATE_METADATA = "update_metadata"
    DELETE = "delete"
    READ_CONTENT = "read_content"
    READ_METADATA = "read_metadata"


MATRIX: dict[Mode, frozenset[Operation]] = {
    Mode.EDIT: frozenset(Operation),
    Mode.RW: frozenset(Operation) - {Operation.DELETE},
    Mode.RO: frozenset({Operation.READ_CONTENT, Operation.READ_METADATA}),
    Mode.AR: frozenset({Operation.READ_METADATA}),
}


def allows(mode: Mode, operation: Operation) -> bool:
    """True when an element in ``mode`` permits ``operation``."""
    return operation in MATRIX[mode]


def mode_allows(mode: Mode | str | None, operation: Operation) -> bool:
    """:func:`allows` for a mode as the index holds it (its value); an element whose mode is
    not known yet (None) is not refused here: its worker has the last word."""
    return mode is None or allows(Mode(mode), operation)


def retention_expires_in(mode: Mode) -> bool:
    """Whether an element in ``mode`` deletes a permanent file whose ``retain_until`` has
    passed. rw does: retention expiry is the element's own deletion, like TTL expiry on edit,
    not a client's delete (which rw refuses). ro and ar are frozen (their sidecars and content
    never change), so a file there whose retention is over stays until an operator moves the
    element back to rw. docs/lifecycle.md, "Retention and legal hold"."""
    return mode in (Mode.EDIT, Mode.RW)


def modes_allowing(operation: Operation) -> list[Mode]:
    """Every mode that permits ``operation``, for error messages."""
    return [mode for mode in Mode if allows(mode, operation)]


class ElementModeError(Exception):
    """The element's mode forbids the operation."""

    def __init__(self, element_id: str, mode: Mode, operation: Operation) -> None:
        allowed = ", ".join(m.value for m in modes_allowing(operation))
        detail = (
            "content is offline (archived)"
            if mode is Mode.AR and operation is Operation.READ_CONTENT
            else f"{operation.value} needs mode {allowed}"
        )
        super().__init__(f"element {element_id} is in mode {mode.value}: {detail}")
        self.element_id = element_id
        self.mode = mode
        self.operation = operation


def require(element_id: str, mode: Mode, operation: Operation) -> None:
    """Raise :class:`ElementModeError` unless ``mode`` permits ``operation``."""
    if not allows(mode, operation):
        raise ElementModeError(element_id, mode, operation)


_FORWARD: dict[Mode, frozenset[Mode]] = {
    Mode.EDIT: frozenset(),
    Mode.RW: frozenset({Mode.RO}),
    Mode.RO: frozenset({Mode.AR, Mode.RW}),
    Mode.AR: frozenset(),
}
_NEEDS_CONFIRMATION = frozenset({(Mode.RO, Mode.RW)})


def allowed_transitions(current: Mode) -> list[Mode]:
    """Modes an element in ``current`` may move to (ro -> rw with confirmation)."""
    return sorted(_FORWARD[current], key=list(Mode).index)


@dataclass(frozen=True, slots=True)
class TransitionRefused:
    """Why a mode change is illegal, and what would be legal."""

    reason: str
    allowed: list[Mode]


def check_transition(current: Mode, target: Mode, *, confirm: bool) -> TransitionRefused | None:
    """None when ``current -> target`` is legal; otherwise why not."""
    allowed = allowed_transitions(current)
    if current is target:
        return TransitionRefused(f"the element is already in mode {current.value}", allowed)
    if current is Mode.EDIT:
        return TransitionRefused("edit elements never change mode", allowed)
    if target not in _FORWARD[current]:
        legal = ", ".join(m.value for m in allowed) or "none"
        return TransitionRefused(
            f"{current.value} -> {target.value} is not allowed (no skipping, forward only); "
            f"allowed from {current.value}: {legal}",
            allowed,
        )
    if (current, target) in _NEEDS_CONFIRMATION and not confirm:
        return TransitionRefused(
            f"{current.value} -> {target.value} needs an explicit confirmation (confirm=true)",
            allowed,
        )
    return None
