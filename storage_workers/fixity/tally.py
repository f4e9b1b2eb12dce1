"""A pass's running count, and the facts it announces. Pure: no storage, no broker."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from events import (
    MAX_UNREADABLE_LISTED,
    FixityChecked,
    FixityFailed,
    FixityFindingKind,
    FixityOutcome,
    FixityRecovered,
    PremisEvent,
    UnreadableFile,
)
from storage_workers.fixity.checks import Verdict


class Tally(BaseModel):
    """Counts of a pass so far (kept in the element's fixity state, so a pass resumes)."""

    model_config = ConfigDict(extra="ignore")

    sound: int = 0
    failed: int = 0
    unreadable: int = 0
    bytes_checked: int = 0
    sidecars_checked: int = 0
    content_offline: int = 0
    findings: dict[FixityFindingKind, int] = Field(default_factory=dict)
    unreadable_files: list[UnreadableFile] = Field(default_factory=list)

    @property
    def checked(self) -> int:
        """Always the sum of the outcomes."""
        return self.sound + self.failed + self.unreadable

    def add_all(self, verdicts: Iterable[Verdict]) -> None:
        """Count checked items: the sound ones in plain integers, one assignment per count (a
        validated model's attribute costs more than the count itself)."""
        sound = bytes_checked = sidecars = offline = 0
        for verdict in verdicts:
            if verdict.outcome is FixityOutcome.PASS:
                sound += 1
                bytes_checked += verdict.bytes_read
                sidecars += int(verdict.sidecar_checked)
                offline += int(verdict.content_offline)
            else:
                self.add(verdict)
        self.sound += sound
        self.bytes_checked += bytes_checked
        self.sidecars_checked += sidecars
        self.content_offline += offline

    def add(self, verdict: Verdict) -> None:
        """Count one checked item (a file gone meanwhile is not counted)."""
        if verdict.outcome is None:
            return
        self.bytes_checked += verdict.bytes_read
        self.sidecars_checked += int(verdict.sidecar_checked)
        self.content_offline += int(verdict.content_offline)
        if verdict.outcome is FixityOutcome.PASS:
            self.sound += 1
        elif verdict.outcome is FixityOutcome.FAIL:
            self.failed += 1
            counts = Counter(self.findings)
            counts.update(f.kind for f in verdict.findings)
            self.findings = dict(counts)
        else:
            self.unreadable += 1
            if len(self.unreadable_files) < MAX_UNREADABLE_LISTED:
                self.unreadable_files.append(
                    UnreadableFile(
                        file_id=verdict.file_id, storage_path=verdict.key, detail=verdict.detail
                    )
                )


class Announcer:
    """Builds the facts of one element's passes, with their PREMIS fields."""

    def __init__(self, element_id: str, agent: str) -> None:
        self.element_id = element_id
        self.agent = agent

    def premis(self, at: datetime, outcome: FixityOutcome, detail: str) -> PremisEvent:
        """PREMIS fields of a check made by this auditor."""
        return PremisEvent(
            event_date_time=at, agent=self.agent, outcome=outcome, outcome_detail=detail[:2000]
        )

    def failures(
        self, verdict: Verdict, *, at: datetime, pass_id: str | None
    ) -> list[FixityFailed]:
        """One FixityFailed per finding of a failed item."""
        return [
            FixityFailed(
                element_id=self.element_id,
                file_id=verdict.file_id,
                storage_path=verdict.key,
                kind=finding.kind,
                expected_checksum=finding.expected_checksum,
                observed_checksum=finding.observed_checksum,
                expected_size=finding.expected_size,
                observed_size=finding.observed_size,
                attempts=finding.attempts,
                detail=finding.detail[:2000],
                detected_at=at,
                pass_id=pass_id,
                premis=self.premis(at, FixityOutcome.FAIL, f"{finding.kind}: {finding.detail}"),
            )
            for finding in verdict.findings
        ]

    def recovered(
        self, verdict: Verdict, previous: FixityFindingKind | None, *, at: datetime, pass_id: str
    ) -> FixityRecovered | None:
        """The fact of a file that failed before and is sound now."""
        if verdict.file_id is None or verdict.checksum is None or verdict.size is None:
            return None
        return FixityRecovered(
            element_id=self.element_id,
            file_id=verdict.file_id,
            storage_path=verdict.key,
            checksum=verdict.checksum,
            size=verdict.size,
            previous_kind=previous,
            checked_at=at,
            pass_id=pass_id,
            premis=self.premis(at, FixityOutcome.PASS, f"{verdict.key} is sound again"),
        )

    def checked(
        self,
        tally: Tally,
        *,
        pass_id: str,
        started_at: datetime,
        finished_at: datetime,
        file_id: UUID | None = None,
        complete: bool = True,
    ) -> FixityChecked:
        """The fact closing a pass."""
        outcome = FixityOutcome.PASS
        if tally.failed:
            outcome = FixityOutcome.FAIL
        elif tally.unreadable:
            outcome = FixityOutcome.UNREADABLE
        detail = (
            f"{tally.checked} checked: {tally.sound} sound, {tally.failed} failed, "
            f"{tally.unreadable} unreadable; {tally.bytes_checked} bytes read"
        )
        return FixityChecked(
            element_id=self.element_id,
            pass_id=pass_id,
            scope="file" if file_id is not None else "element",
            file_id=file_id,
            complete=complete,
            started_at=started_at,
            finished_at=finished_at,
            checked=tally.checked,
            sound=tally.sound,
            failed=tally.failed,
            unreadable=tally.unreadable,
            bytes_checked=tally.bytes_checked,
            sidecars_checked=tally.sidecars_checked,
            content_offline=tally.content_offline,
            findings=tally.findings,
            unreadable_files=tally.unreadable_files,
            premis=self.premis(finished_at, outcome, detail),
        )


def previous_failures(failed: Mapping[str, FixityFindingKind], verdict: Verdict) -> bool:
    """True when ``verdict`` is a sound check of a file that had failed."""
    return verdict.outcome is FixityOutcome.PASS and verdict.key in failed
