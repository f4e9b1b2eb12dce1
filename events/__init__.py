"""The event contract: envelope, typed commands and facts, registry, topics, codec, broker.

Every other package depends on this one; it depends on none of them.
"""

from events.admin import TopicCreationFailed, TopicsReport, create_topics
from events.audit import audit_event, audit_of_fact
from events.broker import BrokerSettings, EventPublisher, Outgoing, make_broker
from events.codec import AUTHORIZATION, OutgoingRecord, ReceivedEvent, decode, encode
from events.consuming import decode_record, parse_any_record, raw_body, records_of
from events.dead_letters import DeadLetterHeaders, Failure, dead_letter, read_headers
from events.envelope import Envelope
from events.errors import DecodeFailure, EventDecodeError, EventTooLarge
from events.filenames import download_filename
from events.models.audit import AuditRecorded
from events.models.cold import ArchiveProgress, ArchiveState, ElementArchived
from events.models.commands import ChangeMode, DeleteFile, UpdateMetadata, UploadRequested
from events.models.common import (
    STAGING_PREFIX,
    ElementBackend,
    FileStagedObject,
    LocalBackend,
    Mode,
    RetentionPolicy,
    S3Backend,
    S3StagedObject,
    StagedObject,
    staged_key,
)
from events.models.elements import (
    CapacityStatus,
    ElementFull,
    ElementHeartbeat,
    ElementRegistered,
    ModeChanged,
    ModeChangeRejected,
)
from events.models.files import (
    DeletionReason,
    FileCommandRejected,
    FileDeleted,
    FileRecord,
    FileStored,
    FixityFailedV1,
    MetadataUpdated,
    RejectionReason,
    UploadRejected,
)
from events.models.fixity import (
    MAX_UNREADABLE_LISTED,
    FixityChecked,
    FixityFailed,
    FixityFindingKind,
    FixityOutcome,
    FixityPassSummary,
    FixityRecovered,
    PremisEvent,
    UnreadableFile,
)
from events.registry import BY_TYPE, SPECS, EventSpec, UnknownEventModel, new_event, spec_for
from events.roles import Role
from events.topics import TOPIC_SPECS, Topic, TopicNames, TopicSpec

__all__ = [
    "AUTHORIZATION",
    "BY_TYPE",
    "MAX_UNREADABLE_LISTED",
    "SPECS",
    "STAGING_PREFIX",
    "TOPIC_SPECS",
    "ArchiveProgress",
    "ArchiveState",
    "AuditRecorded",
    "BrokerSettings",
    "CapacityStatus",
    "ChangeMode",
    "DeadLetterHeaders",
    "DecodeFailure",
    "DeleteFile",
    "DeletionReason",
    "ElementArchived",
    "ElementBackend",
    "ElementFull",
    "ElementHeartbeat",
    "ElementRegistered",
    "Envelope",
    "EventDecodeError",
    "EventPublisher",
    "EventSpec",
    "EventTooLarge",
    "Failure",
    "FileCommandRejected",
    "FileDeleted",
    "FileRecord",
    "FileStagedObject",
    "FileStored",
    "FixityChecked",
    "FixityFailed",
    "FixityFailedV1",
    "FixityFindingKind",
    "FixityOutcome",
    "FixityPassSummary",
    "FixityRecovered",
    "LocalBackend",
    "MetadataUpdated",
    "Mode",
    "ModeChangeRejected",
    "ModeChanged",
    "Outgoing",
    "OutgoingRecord",
    "PremisEvent",
    "ReceivedEvent",
    "RejectionReason",
    "RetentionPolicy",
    "Role",
    "S3Backend",
    "S3StagedObject",
    "StagedObject",
    "Topic",
    "TopicCreationFailed",
    "TopicNames",
    "TopicSpec",
    "TopicsReport",
    "UnknownEventModel",
    "UnreadableFile",
    "UpdateMetadata",
    "UploadRejected",
    "UploadRequested",
    "audit_event",
    "audit_of_fact",
    "create_topics",
    "dead_letter",
    "decode",
    "decode_record",
    "download_filename",
    "encode",
    "make_broker",
    "new_event",
    "parse_any_record",
    "raw_body",
    "read_headers",
    "records_of",
    "spec_for",
    "staged_key",
]
