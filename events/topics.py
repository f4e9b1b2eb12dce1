"""The one place that names ArtStore's topics, their partition counts and their configs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal


class Topic(StrEnum):
    """Logical topic names; the real name is ``<prefix>.<value>``."""

    UPLOADS_EDIT = "uploads.edit"
    UPLOADS_RW = "uploads.rw"
    FILE_COMMANDS = "file-commands"
    ELEMENT_COMMANDS = "element-commands"
    FILES = "files"
    ELEMENTS = "elements"
    AUDIT = "audit"
    DLQ = "dlq"
    RESTORES = "restores"


TopicKind = Literal["command", "fact", "dead-letter"]

_DAY_MS = 24 * 3600 * 1000

# Commands are verified against the time the broker wrote them, so a back-dated record cannot
# revive an expired token (Apache Kafka honours this; see docs/decisions.md for Tansu). They carry
# callers' tokens, so they are kept a week: long enough to replay a backlog, no longer.
_COMMAND_CONFIGS = {
    "message.timestamp.type": "LogAppendTime",
    "cleanup.policy": "delete",
    "retention.ms": str(7 * _DAY_MS),
}
# Facts are the history every projection is rebuilt from: kept for good.
_FACT_CONFIGS = {"cleanup.policy": "delete", "retention.ms": "-1"}
# An element's facts are keyed by element id; only its latest state matters to a newcomer.
_ELEMENT_CONFIGS = {"cleanup.policy": "compact", "min.compaction.lag.ms": str(_DAY_MS)}
# Restore hand-overs name staged bytes that are removed once kept: a week, as commands.
_RESTORE_CONFIGS = {"cleanup.policy": "delete", "retention.ms": str(7 * _DAY_MS)}
# Dead letters wait for an operator for a month.
_DEAD_LETTER_CONFIGS = {"cleanup.policy": "delete", "retention.ms": str(30 * _DAY_MS)}
#: Room for a record batch's framing on top of the largest event value we accept.
FRAMING_ALLOWANCE = 64 * 1024


def max_message_config(max_message_bytes: int) -> dict[str, str]:
    """The per-topic ``max.message.bytes`` for events of at most ``max_message_bytes``."""
    return {"max.message.bytes": str(max_message_bytes + FRAMING_ALLOWANCE)}


@dataclass(frozen=True)
class TopicSpec:
    """How a topic is created: partitions, kind, and broker-side configs."""

    topic: Topic
    partitions: int
    kind: TopicKind
    configs: Mapping[str, str] = field(default_factory=dict)


TOPIC_SPECS: Mapping[Topic, TopicSpec] = {
    spec.topic: spec
    for spec in (
        TopicSpec(Topic.UPLOADS_EDIT, 6, "command", _COMMAND_CONFIGS),
        TopicSpec(Topic.UPLOADS_RW, 6, "command", _COMMAND_CONFIGS),
        TopicSpec(Topic.FILE_COMMANDS, 6, "command", _COMMAND_CONFIGS),
        TopicSpec(Topic.ELEMENT_COMMANDS, 3, "command", _COMMAND_CONFIGS),
        TopicSpec(Topic.FILES, 12, "fact", _FACT_CONFIGS),
        TopicSpec(Topic.ELEMENTS, 3, "fact", _ELEMENT_CONFIGS),
        TopicSpec(Topic.AUDIT, 3, "fact", _FACT_CONFIGS),
        TopicSpec(Topic.DLQ, 3, "dead-letter", _DEAD_LETTER_CONFIGS),
        TopicSpec(Topic.RESTORES, 3, "fact", _RESTORE_CONFIGS),
    )
}


@dataclass(frozen=True)
class TopicNames:
    """Real topic names under one prefix (``artstore`` in production, unique per test)."""

    prefix: str = "artstore"

    def __post_init__(self) -> None:
        if not self.prefix or any(c not in _LEGAL for c in self.prefix):
            raise ValueError(
                f"topic prefix {self.prefix!r} must be non-empty and use only "
                "letters, digits, '.', '_' and '-'"
            )

    def name(self, topic: Topic) -> str:
        """The broker-side name of ``topic``."""
        return f"{self.prefix}.{topic.value}"

    def logical(self, name: str) -> Topic | None:
        """The logical topic behind a broker-side name, or None if it is not one of ours."""
        head = f"{self.prefix}."
        if not name.startswith(head):
            return None
        try:
            return Topic(name[len(head) :])
        except ValueError:
            return None

    def all(self) -> dict[Topic, str]:
        """Every logical topic with its broker-side name."""
        return {topic: self.name(topic) for topic in Topic}


_LEGAL = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
