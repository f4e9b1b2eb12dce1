"""Row changes arranged as the store's statements take them. Pure; no database here.

A plan is built before its transaction opens (while the previous batch is still being written),
so the transaction itself only ships prepared columns and records to PostgreSQL.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from consumers.changes import (
    AppendAudit,
    ApplyElementFact,
    Change,
    FileRow,
    MarkFileDeleted,
    NoteFileProblem,
    RecordFixityFinding,
    RecordFixityPass,
    RestoreStep,
    UploadStatus,
    UpsertFile,
)
from consumers.handlers import rounds

FILE_COLUMNS = list(FileRow._fields)
UPLOAD_COLUMNS = [
    "file_id",
    "status",
    "status_rank",
    *(f.name for f in fields(UploadStatus) if f.name not in ("file_id", "status", "rank")),
]
AUDIT_COLUMNS = [f.name for f in fields(AppendAudit)]
RESTORE_COLUMNS = [
    "restore_id",
    "file_id",
    "status",
    "status_rank",
    *(
        f.name
        for f in fields(RestoreStep)
        if f.name not in ("restore_id", "file_id", "status", "rank")
    ),
]
PROBLEM_COLUMNS = ("fixity", "fixity_failure", "last_rejection")
FINDING_COLUMNS = [f.name for f in fields(RecordFixityFinding)]
PASS_COLUMNS = [f.name for f in fields(RecordFixityPass)]

_JSON_POSITIONS = [
    i
    for i, name in enumerate(FILE_COLUMNS)
    if name in ("metadata", "custom_attributes", "legal_hold")
]

Columns = list[list[Any]]


@dataclass
class Round:
    """Changes of which no two touch the same row, as one statement's columns per table."""

    number: int
    has_files: bool = False
    deletions: Columns | None = None
    problems: dict[str, Columns] = field(default_factory=dict)
    uploads: Columns | None = None
    audits: Columns | None = None
    restores: Columns | None = None


@dataclass
class WritePlan:
    """Everything one transaction writes, ready to send."""

    file_records: list[tuple[Any, ...]] = field(default_factory=list)
    """File rows for the session table, each prefixed with its round number."""
    rounds: list[Round] = field(default_factory=list)
    element_facts: list[ApplyElementFact] = field(default_factory=list)
    findings: Columns | None = None
    passes: Columns | None = None
    """Written after the rounds: a pass marks its sound files checked (see the store)."""
    changed_files: bool = False


def plan_writes(changes: Sequence[Change]) -> WritePlan:
    """Arrange ``changes`` into rounds (see :func:`consumers.handlers.rounds`) and columns."""
    plan = WritePlan()
    others: list[Change] = []
    findings: list[RecordFixityFinding] = []
    passes: dict[str, RecordFixityPass] = {}
    for change in changes:
        if type(change) is ApplyElementFact:
            plan.element_facts.append(change)
        elif type(change) is RecordFixityFinding:
            findings.append(change)
        elif type(change) is RecordFixityPass:
            passes.setdefault(change.pass_id, change)
        else:
            others.append(change)
    if findings:
        unique = list({f.event_id: f for f in findings}.values())
        plan.findings = _columns(unique, FINDING_COLUMNS)
    if passes:
        rows = list(passes.values())
        plan.passes = _columns(rows, PASS_COLUMNS)
        plan.changed_files = True
    for number, batch in enumerate(rounds(others)):
        kinds: dict[type, list[Any]] = defaultdict(list)
        for change in batch:
            kinds[type(change)].append(change)
        step = Round(number)
        upserts: list[UpsertFile] = kinds[UpsertFile]
        deletions: list[MarkFileDeleted] = kinds[MarkFileDeleted]
        problems: list[NoteFileProblem] = kinds[NoteFileProblem]
        uploads: list[UploadStatus] = kinds[UploadStatus]
        audits: list[AppendAudit] = kinds[AppendAudit]
        restores: list[RestoreStep] = kinds[RestoreStep]
        if upserts:
            step.has_files = True
            plan.file_records.extend(_file_record(number, u.row) for u in upserts)
        if deletions:
            step.deletions = _columns(deletions, ("file_id", "deleted_at", "deleted_by", "reason"))
        for column in PROBLEM_COLUMNS:
            notes = [p for p in problems if p.column == column]
            if notes:
                step.problems[column] = _columns(notes, ("file_id", "at", "details"))
        if uploads:
            step.uploads = [
                [u.file_id for u in uploads],
                [u.status for u in uploads],
                [u.rank for u in uploads],
                *_columns(uploads, UPLOAD_COLUMNS[3:]),
            ]
        if audits:
            step.audits = _columns(audits, AUDIT_COLUMNS)
        if restores:
            step.restores = [
                [r.restore_id for r in restores],
                [r.file_id for r in restores],
                [r.status for r in restores],
                [r.rank for r in restores],
                *_columns(restores, RESTORE_COLUMNS[4:]),
            ]
        plan.rounds.append(step)
        plan.changed_files = plan.changed_files or bool(upserts or deletions or problems or uploads)
    return plan


def _columns(rows: Sequence[Any], names: Sequence[str]) -> Columns:
    return [[getattr(row, name) for row in rows] for name in names]


def _file_record(number: int, row: FileRow) -> tuple[Any, ...]:
    values: list[Any] = [number, *row]
    for i in _JSON_POSITIONS:
        if values[i + 1] is not None:  # a JSON null would not be SQL NULL
            values[i + 1] = json.dumps(values[i + 1])
    return tuple(values)
