"""A valid sample payload for every event type, so tests can cover the whole contract."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel

from events import (
    ArchiveProgress,
    ArchiveState,
    AuditRecorded,
    CapacityStatus,
    ChangeMode,
    DeleteFile,
    DeletionReason,
    ElementArchived,
    ElementFull,
    ElementHeartbeat,
    ElementRegistered,
    ExpiryHeld,
    FileCommandRejected,
    FileDeleted,
    FileRecord,
    FileRestored,
    FileStored,
    FixityChecked,
    FixityFailed,
    FixityFailedV1,
    FixityFindingKind,
    FixityOutcome,
    FixityRecovered,
    LegalHold,
    LegalHoldChanged,
    LocalBackend,
    MetadataUpdated,
    Mode,
    ModeChanged,
    ModeChangeRejected,
    PlaceLegalHold,
    PremisEvent,
    RejectionReason,
    ReleaseLegalHold,
    RestoreExpired,
    RestoreExpiring,
    RestoreFailed,
    RestoreFailureReason,
    RestoreRequested,
    RestoreStaged,
    RestoreStarted,
    RetentionPolicy,
    S3StagedObject,
    UpdateMetadata,
    UploadRejected,
    UploadRequested,
)
from storage_workers.naming import storage_filename, storage_path
from storage_workers.sidecar import Sidecar

NOW = datetime(2026, 11, 25, 12, 30, tzinfo=UTC)
RESTORE_ID = uuid.UUID("7d0b7a52-3f0e-4c55-9a55-1f1f0b9e2c11")
FILE_ID = uuid.UUID("0b7a52d0-3f0e-4c55-9a55-2c111f1f0b9e")
CONTENT = "Привет, архив! — hello, archive".encode()
CHECKSUM = hashlib.sha256(CONTENT).hexdigest()


def file_record(file_id: uuid.UUID | None = None, **changes: object) -> FileRecord:
    """A stored file as the sidecar would describe it."""
    fid = file_id or uuid.uuid4()
    name = f"Отчёт_svc-ingest_20261125T123000_{fid}.pdf"
    values: dict[str, object] = {
        "file_id": fid,
        "element_id": "se-01",
        "original_filename": "Отчёт.pdf",
        "storage_filename": name,
        "storage_path": f"2026/11/25/12/{name}",
        "file_size": len(CONTENT),
        "content_type": "application/pdf",
        "checksum": CHECKSUM,
        "created_at": NOW,
        "updated_at": NOW,
        "created_by_id": "sa_dev_ingest_0a1b2c3d",
        "created_by_username": "svc-ingest",
        "description": "Quarterly report",
        "version": 1,
        "retention_policy": RetentionPolicy.PERMANENT,
        "tags": ["finance", "q4"],
        "metadata": {"legacy": {"box": 12}},
        "custom_attributes": {"department": "accounting", "pages": 12},
    }
    values.update(changes)
    return FileRecord.model_validate(values)


def stored_sidecar(
    content: bytes,
    *,
    element_id: str,
    filename: str = "doc.txt",
    stored_at: datetime | None = None,
    **changes: object,
) -> Sidecar:
    """The sidecar a worker writes for ``content`` stored at ``stored_at`` (default: now)."""
    at = stored_at or datetime.now(UTC)
    file_id = uuid.uuid4()
    name = storage_filename(filename, "tester", at, file_id)
    values: dict[str, object] = {
        "file_id": file_id,
        "original_filename": filename,
        "storage_filename": name,
        "file_size": len(content),
        "content_type": "text/plain",
        "checksum": hashlib.sha256(content).hexdigest(),
        "created_at": at,
        "updated_at": at,
        "created_by_id": "svc",
        "created_by_username": "tester",
        "storage_path": storage_path(at, name),
        "element_id": element_id,
        "retention_policy": RetentionPolicy.PERMANENT,
    }
    values.update(changes)
    return Sidecar.model_validate(values)


def _upload() -> UploadRequested:
    return UploadRequested(
        file_id=uuid.uuid4(),
        original_filename="Отчёт за квартал.pdf",
        content_type="application/pdf",
        file_size=len(CONTENT),
        checksum=CHECKSUM,
        staged=S3StagedObject(bucket="artstore-staging", key="2026/11/25/report.pdf"),
        retention_policy=RetentionPolicy.TEMPORARY,
        ttl_days=7,
        description="Quarterly report",
        tags=["finance"],
        custom_attributes={"department": "accounting"},
    )


SAMPLES: dict[type[BaseModel], Callable[[], BaseModel]] = {
    UploadRequested: _upload,
    UpdateMetadata: lambda: UpdateMetadata(
        file_id=uuid.uuid4(), element_id="se-01", tags=["audited"], expected_version=1
    ),
    DeleteFile: lambda: DeleteFile(file_id=uuid.uuid4(), element_id="se-01", reason="duplicate"),
    ChangeMode: lambda: ChangeMode(element_id="se-02", target_mode=Mode.RO, reason="full"),
    FileStored: lambda: FileStored(file=file_record()),
    MetadataUpdated: lambda: MetadataUpdated(
        file=file_record(version=2, updated_at=NOW + timedelta(hours=1)),
        updated_by="sa_dev_editor_0a1b2c3d",
    ),
    FileDeleted: lambda: FileDeleted(
        file_id=uuid.uuid4(),
        element_id="se-01",
        storage_path="2026/11/25/12/x.pdf",
        reason=DeletionReason.TTL_EXPIRED,
        deleted_by="se-01",
        deleted_at=NOW,
    ),
    UploadRejected: lambda: UploadRejected(
        file_id=uuid.uuid4(),
        element_id="se-01",
        reason=RejectionReason.CHECKSUM_MISMATCH,
        detail="declared sha256 abc..., staged bytes hash to def...",
        rejected_at=NOW,
    ),
    FileCommandRejected: lambda: FileCommandRejected(
        file_id=uuid.uuid4(),
        element_id="se-02",
        command="delete_file",
        reason=RejectionReason.ELEMENT_MODE,
        detail="element se-02 is rw: files cannot be deleted",
        rejected_at=NOW,
    ),
    FixityFailedV1: lambda: FixityFailedV1(
        file_id=uuid.uuid4(),
        element_id="se-01",
        storage_path="2026/11/25/12/x.pdf",
        expected_checksum=CHECKSUM,
        actual_checksum=None,
        detail="data file is missing",
        detected_at=NOW,
    ),
    FixityFailed: lambda: fixity_failed(uuid.uuid4(), "2026/11/25/12/x.pdf"),
    FixityRecovered: lambda: FixityRecovered(
        element_id="se-01",
        file_id=uuid.uuid4(),
        storage_path="2026/11/25/12/x.pdf",
        checksum=CHECKSUM,
        size=12,
        previous_kind=FixityFindingKind.CHECKSUM_MISMATCH,
        checked_at=NOW,
        pass_id="p-1",
        premis=premis(FixityOutcome.PASS, "sound again"),
    ),
    FixityChecked: lambda: FixityChecked(
        element_id="se-01",
        pass_id="p-1",
        scope="element",
        complete=True,
        started_at=NOW,
        finished_at=NOW,
        checked=3,
        sound=1,
        failed=1,
        unreadable=1,
        bytes_checked=100,
        sidecars_checked=3,
        findings={FixityFindingKind.DATA_MISSING: 1},
        premis=premis(FixityOutcome.FAIL, "1 of 3 files failed"),
    ),
    ElementRegistered: lambda: ElementRegistered(
        element_id="se-01",
        mode=Mode.EDIT,
        backend=LocalBackend(root="/srv/artstore/se-01"),
        priority=10,
        capacity_bytes=10**12,
        free_bytes=9 * 10**11,
        worker="host-a:4242",
        started_at=NOW,
    ),
    ElementHeartbeat: lambda: ElementHeartbeat(
        element_id="se-01",
        mode=Mode.RW,
        capacity_bytes=10**12,
        used_bytes=10**11,
        free_bytes=9 * 10**11,
        file_count=1234,
        status=CapacityStatus.OK,
        accepting_uploads=True,
        sent_at=NOW,
        archive=ArchiveProgress(
            state=ArchiveState.ARCHIVING,
            in_place=False,
            files_online=12,
            files_cold=1222,
            started_at=NOW,
        ),
    ),
    RestoreRequested: lambda: RestoreRequested(
        restore_id=RESTORE_ID,
        file_id=FILE_ID,
        element_id="se-03",
        requested_by="sa_dev_reader_0a1b2c3d",
        requested_at=NOW,
    ),
    RestoreStarted: lambda: RestoreStarted(
        restore_id=RESTORE_ID,
        file_id=FILE_ID,
        requested_by="sa_dev_reader_0a1b2c3d",
        element_id="se-03",
        started_at=NOW,
    ),
    FileRestored: lambda: FileRestored(
        restore_id=RESTORE_ID,
        file_id=FILE_ID,
        requested_by="sa_dev_reader_0a1b2c3d",
        element_id="se-03",
        restore_element_id="se-restore",
        storage_path=f".artstore/restored/{RESTORE_ID}",
        checksum="a" * 64,
        restored_at=NOW,
        expires_at=NOW + timedelta(days=30),
    ),
    RestoreExpiring: lambda: RestoreExpiring(
        restore_id=RESTORE_ID,
        file_id=FILE_ID,
        requested_by="sa_dev_reader_0a1b2c3d",
        element_id="se-03",
        restore_element_id="se-restore",
        expires_at=NOW + timedelta(days=3),
        warned_at=NOW,
    ),
    RestoreExpired: lambda: RestoreExpired(
        restore_id=RESTORE_ID,
        file_id=FILE_ID,
        requested_by="sa_dev_reader_0a1b2c3d",
        element_id="se-03",
        restore_element_id="se-restore",
        expired_at=NOW,
    ),
    RestoreFailed: lambda: RestoreFailed(
        restore_id=RESTORE_ID,
        file_id=FILE_ID,
        requested_by="sa_dev_reader_0a1b2c3d",
        element_id="se-03",
        reason=RestoreFailureReason.COLD_COPY_MISSING,
        detail="the content is missing from the cold tier",
        failed_at=NOW,
    ),
    RestoreStaged: lambda: RestoreStaged(
        restore_id=RESTORE_ID,
        file_id=FILE_ID,
        requested_by="sa_dev_reader_0a1b2c3d",
        element_id="se-03",
        restore_element_id="se-restore",
        staged=S3StagedObject(bucket="artstore", key=f"staging/artstore-restores/{RESTORE_ID}"),
        file_size=10,
        checksum="a" * 64,
        original_filename="ledger.txt",
        content_type="text/plain",
        staged_at=NOW,
    ),
    ElementArchived: lambda: ElementArchived(
        element_id="se-03",
        files_cold=1234,
        bytes_cold=10**11,
        started_at=NOW - timedelta(hours=5),
        finished_at=NOW,
    ),
    ModeChanged: lambda: ModeChanged(
        element_id="se-02",
        from_mode=Mode.RW,
        to_mode=Mode.RO,
        changed_by="sa_dev_admin_0a1b2c3d",
        reason="full",
        changed_at=NOW,
    ),
    ModeChangeRejected: lambda: ModeChangeRejected(
        element_id="se-02",
        current_mode=Mode.RW,
        requested_mode=Mode.AR,
        allowed=[Mode.RO],
        reason="no skipping: rw -> ro -> ar",
        rejected_at=NOW,
    ),
    ElementFull: lambda: ElementFull(
        element_id="se-02", free_bytes=10**9, floor_bytes=2 * 10**10, detected_at=NOW
    ),
    PlaceLegalHold: lambda: PlaceLegalHold(
        file_id=uuid.uuid4(), element_id="se-01", reason="litigation 2026-17"
    ),
    ReleaseLegalHold: lambda: ReleaseLegalHold(
        file_id=uuid.uuid4(), element_id="se-01", reason="case closed"
    ),
    LegalHoldChanged: lambda: LegalHoldChanged(
        file=file_record(
            version=2,
            legal_hold=LegalHold(
                reason="litigation", placed_by="sa_dev_admin_0a1b2c3d", placed_at=NOW
            ),
        ),
        held=True,
        reason="litigation",
        changed_by="sa_dev_admin_0a1b2c3d",
    ),
    ExpiryHeld: lambda: ExpiryHeld(
        file_id=uuid.uuid4(),
        element_id="se-01",
        expiry=DeletionReason.TTL_EXPIRED,
        due_at=NOW,
        hold=LegalHold(reason="litigation", placed_by="sa_dev_admin_0a1b2c3d", placed_at=NOW),
        noticed_at=NOW,
    ),
    AuditRecorded: lambda: AuditRecorded(
        action="token.issued",
        actor="sa_dev_ingest_0a1b2c3d",
        subject="sa_dev_ingest_0a1b2c3d",
        outcome="success",
        details={"scope": "files:write"},
        occurred_at=NOW,
    ),
}


def sample(model: type[BaseModel]) -> BaseModel:
    """A fresh valid payload of ``model``."""
    return SAMPLES[model]()


def premis(outcome: FixityOutcome, detail: str) -> PremisEvent:
    """PREMIS fields of a fixity fact made by a test."""
    return PremisEvent(
        event_date_time=NOW, agent="test auditor", outcome=outcome, outcome_detail=detail
    )


def fixity_failed(
    file_id: uuid.UUID | None,
    storage_path: str,
    *,
    element_id: str = "se-01",
    kind: FixityFindingKind = FixityFindingKind.DATA_MISSING,
    detected_at: datetime | None = None,
    pass_id: str = "p-1",
) -> FixityFailed:
    """A FixityFailed finding."""
    return FixityFailed(
        element_id=element_id,
        file_id=file_id,
        storage_path=storage_path,
        kind=kind,
        expected_checksum=CHECKSUM,
        expected_size=12,
        detail="data file is missing",
        detected_at=detected_at or NOW,
        pass_id=pass_id,
        premis=premis(FixityOutcome.FAIL, "data file is missing"),
    )
