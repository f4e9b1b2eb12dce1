"""File and element commands: metadata updates, deletes and mode changes for this element."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import events
from events import (
    ChangeMode,
    DeleteFile,
    DeletionReason,
    Failure,
    FileCommandRejected,
    FileDeleted,
    LegalHoldChanged,
    MetadataUpdated,
    ModeChanged,
    ModeChangeRejected,
    Outgoing,
    OutgoingRecord,
    PlaceLegalHold,
    RejectionReason,
    ReleaseLegalHold,
    RestoreFailureReason,
    RestoreRequested,
    Topic,
    UpdateMetadata,
)
from storage_workers import element as element_file
from storage_workers import restores
from storage_workers.admission import Admitted, Refused, catch_up_revocations
from storage_workers.durability import Change, SidecarRewrite
from storage_workers.handlers import (
    AlreadyDone,
    Reject,
    Remove,
    Rewrite,
    SwitchMode,
    decide_delete,
    decide_mode_change,
    decide_update,
)
from storage_workers.journal import tombstone_key
from storage_workers.legal_holds import decide_hold
from storage_workers.sidecar import Sidecar

if TYPE_CHECKING:
    from storage_workers.worker import Acknowledge, Announce, ElementWorker, Record


async def process_file_command(
    worker: ElementWorker, record: Record, *, announce: Announce, acknowledge: Acknowledge
) -> None:
    """An UpdateMetadata or DeleteFile addressed to this element (others are skipped)."""
    async with worker.lock:
        await catch_up_revocations(worker.verifier)
        admitted = await worker.admit(record, Topic.FILE_COMMANDS)
        extra: list[Outgoing] = []
        dead: list[OutgoingRecord] = []
        changes: list[Change] = []
        if isinstance(admitted, Refused):
            event = admitted.event
            if event is None:
                dead.append(
                    worker.dead_letter(record, Failure.of(admitted.reason.value, admitted.detail))
                )
            elif event.data.element_id == worker.element_id:
                extra.append(
                    _command_rejected(worker, event.data, admitted.reason, admitted.detail, event)
                )
        elif admitted.command.element_id == worker.element_id:
            command = admitted.command
            corr = admitted.event.envelope.correlation_id
            if isinstance(command, UpdateMetadata):
                current = await worker.read_sidecar(command.file_id)
                decision = decide_update(
                    command,
                    element=worker.view(),
                    current=current,
                    command_id=admitted.event.envelope.id,
                    caller=admitted.caller,
                    now=worker.clock(),
                )
                if isinstance(decision, Rewrite):
                    changes.append(
                        Change(
                            SidecarRewrite(decision.sidecar, decision.encoded),
                            worker.fact(
                                MetadataUpdated(
                                    file=decision.sidecar.to_record(),
                                    updated_by=admitted.caller.client_id,
                                ),
                                corr,
                            ),
                        )
                    )
                elif isinstance(decision, AlreadyDone) and current is not None:
                    extra.append(
                        worker.fact(
                            MetadataUpdated(
                                file=current.to_record(), updated_by=admitted.caller.client_id
                            ),
                            corr,
                        )
                    )
                elif isinstance(decision, Reject):
                    extra.append(
                        _command_rejected(
                            worker,
                            command,
                            decision.reason,
                            decision.detail,
                            admitted.event,
                            admitted.caller.client_id,
                        )
                    )
            elif isinstance(command, PlaceLegalHold | ReleaseLegalHold):
                current = await worker.read_sidecar(command.file_id)
                held = decide_hold(
                    command,
                    element=worker.view(),
                    current=current,
                    command_id=admitted.event.envelope.id,
                    caller=admitted.caller,
                    now=worker.clock(),
                )
                if isinstance(held, Rewrite):
                    changes.append(
                        Change(
                            SidecarRewrite(held.sidecar, held.encoded),
                            _hold_changed(worker, command, held.sidecar, admitted, corr),
                        )
                    )
                elif isinstance(held, AlreadyDone) and current is not None:
                    # Done by a commit that failed after its sidecar landed: the catalogue
                    # learns it now.
                    worker.record_hold(current)
                    extra.append(_hold_changed(worker, command, current, admitted, corr))
                elif isinstance(held, Reject):
                    extra.append(
                        _command_rejected(
                            worker,
                            command,
                            held.reason,
                            held.detail,
                            admitted.event,
                            admitted.caller.client_id,
                        )
                    )
            else:
                assert isinstance(command, DeleteFile)
                deleted = str(command.file_id) in worker.deleted
                entry = worker.catalogue.get(command.file_id)
                sidecar = await worker.read_sidecar(command.file_id) if entry else None
                verdict = decide_delete(
                    command,
                    element=worker.view(),
                    current=entry,
                    uploaded_by=sidecar.created_by_id if sidecar else None,
                    deleted=deleted,
                    caller=admitted.caller,
                    hold=sidecar.legal_hold if sidecar else None,
                )
                if isinstance(verdict, Remove):
                    changes.append(
                        worker.removal(
                            command.file_id,
                            verdict.storage_path,
                            DeletionReason.REQUESTED,
                            admitted.caller.client_id,
                            corr,
                        )
                    )
                elif isinstance(verdict, AlreadyDone):
                    tomb = await asyncio.to_thread(
                        worker.backend.read_bytes, tombstone_key(str(command.file_id))
                    )
                    extra.append(worker.fact(FileDeleted.model_validate_json(tomb), corr))
                else:
                    extra.append(
                        _command_rejected(
                            worker,
                            command,
                            verdict.reason,
                            verdict.detail,
                            admitted.event,
                            admitted.caller.client_id,
                        )
                    )
        await worker.commit(changes, extra, dead, [record], announce, acknowledge)


async def process_element_command(
    worker: ElementWorker, record: Record, *, announce: Announce, acknowledge: Acknowledge
) -> None:
    """A ChangeMode for this element (element.json first, then ModeChanged), or a
    RestoreRequested for one of its files (:mod:`~storage_workers.restores`)."""
    async with worker.lock:
        await catch_up_revocations(worker.verifier)
        admitted = await worker.admit(record, Topic.ELEMENT_COMMANDS)
        facts: list[Outgoing] = []
        dead: list[OutgoingRecord] = []
        if isinstance(admitted, Refused):
            event = admitted.event
            if event is None:
                dead.append(
                    worker.dead_letter(record, Failure.of(admitted.reason.value, admitted.detail))
                )
            elif event.data.element_id == worker.element_id and isinstance(
                event.data, RestoreRequested
            ):
                facts.append(
                    restores.failed(
                        worker,
                        event.data,
                        RestoreFailureReason.REFUSED,
                        admitted.detail,
                        event.envelope.correlation_id,
                    )
                )
            elif event.data.element_id == worker.element_id:
                facts.append(
                    _mode_refused(
                        worker, event.data, admitted.detail, [], event.envelope.correlation_id
                    )
                )
        elif admitted.command.element_id == worker.element_id and isinstance(
            admitted.command, RestoreRequested
        ):
            await restores.process_restore_request(worker, admitted, announce=announce)
        elif admitted.command.element_id == worker.element_id:
            command: ChangeMode = admitted.command
            corr = admitted.event.envelope.correlation_id
            decision = decide_mode_change(command, current=worker.state.mode)
            if isinstance(decision, SwitchMode):
                now = worker.clock()
                before = worker.state.mode
                new_state = worker.state.with_mode(
                    decision.target,
                    by=admitted.caller.client_id,
                    reason=command.reason,
                    at=now,
                    cold_tier=worker.cold is not None,
                )
                await asyncio.to_thread(element_file.save, worker.backend, new_state)
                worker.state = new_state
                facts.append(
                    worker.fact(
                        ModeChanged(
                            element_id=worker.element_id,
                            from_mode=before,
                            to_mode=decision.target,
                            changed_by=admitted.caller.client_id,
                            reason=command.reason,
                            changed_at=now,
                        ),
                        corr,
                    )
                )
            else:
                facts.append(
                    _mode_refused(
                        worker,
                        command,
                        decision.reason,
                        decision.allowed,
                        corr,
                        admitted.caller.client_id,
                    )
                )
        if facts or dead:
            await announce(facts, dead)
        await acknowledge([record])


_COMMAND_NAMES: dict[type, str] = {
    UpdateMetadata: "update_metadata",
    DeleteFile: "delete_file",
    PlaceLegalHold: "place_legal_hold",
    ReleaseLegalHold: "release_legal_hold",
}


def _hold_changed(
    worker: ElementWorker,
    command: PlaceLegalHold | ReleaseLegalHold,
    sidecar: Sidecar,
    admitted: Admitted,
    corr: str,
) -> Outgoing:
    return worker.fact(
        LegalHoldChanged(
            file=sidecar.to_record(),
            held=isinstance(command, PlaceLegalHold),
            reason=command.reason,
            changed_by=admitted.caller.client_id,
        ),
        corr,
    )


def _command_rejected(
    worker: ElementWorker,
    command: UpdateMetadata | DeleteFile | PlaceLegalHold | ReleaseLegalHold,
    reason: RejectionReason,
    detail: str,
    event: events.ReceivedEvent,
    actor: str | None = None,
) -> Outgoing:
    worker.metrics.rejected.labels(worker.element_id, reason.value).inc()
    return worker.fact(
        FileCommandRejected(
            file_id=command.file_id,
            element_id=worker.element_id,
            command=_COMMAND_NAMES[type(command)],
            reason=reason,
            detail=detail[:2000],
            rejected_at=worker.clock(),
        ),
        event.envelope.correlation_id,
        actor,
    )


def _mode_refused(
    worker: ElementWorker,
    command: ChangeMode,
    reason: str,
    allowed: list[events.Mode],
    corr: str,
    actor: str | None = None,
) -> Outgoing:
    return worker.fact(
        ModeChangeRejected(
            element_id=worker.element_id,
            current_mode=worker.state.mode,
            requested_mode=command.target_mode,
            allowed=allowed,
            reason=reason,
            rejected_at=worker.clock(),
        ),
        corr,
        actor,
    )
