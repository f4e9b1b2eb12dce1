"""The contract's rules that every package decides with: where an upload goes, what a mode
allows as the index holds it, how upload statuses replace each other."""

from __future__ import annotations

import pytest

from events import Mode, RetentionPolicy, Topic
from events.modes import Operation, allows, mode_allows, upload_mode, upload_topic
from events.registry import spec_for
from events.uploads import OUTCOME_FAILED, RECORDED_STATES, UploadState
from tests.factories import _upload


def test_temporary_uploads_go_to_edit_elements_and_permanent_ones_to_rw() -> None:
    assert upload_mode(RetentionPolicy.TEMPORARY) is Mode.EDIT
    assert upload_mode(RetentionPolicy.PERMANENT) is Mode.RW


@pytest.mark.parametrize(
    ("mode", "topic"),
    [
        (Mode.EDIT, Topic.UPLOADS_EDIT),
        (Mode.RW, Topic.UPLOADS_RW),
        (Mode.RO, Topic.UPLOADS_RW),
        (Mode.AR, Topic.UPLOADS_RW),
    ],
)
def test_an_element_belongs_to_the_upload_topic_of_its_class(mode: Mode, topic: Topic) -> None:
    assert upload_topic(mode) is topic


@pytest.mark.parametrize("policy", list(RetentionPolicy))
def test_an_upload_command_is_routed_to_the_topic_of_its_class(policy: RetentionPolicy) -> None:
    ttl_days = 7 if policy is RetentionPolicy.TEMPORARY else None
    command = _upload().model_copy(update={"retention_policy": policy, "ttl_days": ttl_days})
    assert spec_for(command).route(command) is upload_topic(upload_mode(policy))


@pytest.mark.parametrize("mode", list(Mode))
@pytest.mark.parametrize("operation", list(Operation))
def test_a_mode_as_the_index_holds_it_allows_what_the_mode_allows(
    mode: Mode, operation: Operation
) -> None:
    assert mode_allows(mode.value, operation) is allows(mode, operation)


def test_an_element_of_unknown_mode_is_left_to_its_worker() -> None:
    assert all(mode_allows(None, operation) for operation in Operation)


def test_upload_statuses_climb_queued_failed_rejected_stored() -> None:
    ranks = [state.rank for state in RECORDED_STATES]
    assert ranks == sorted(ranks)
    assert len(set(ranks)) == len(ranks)
    assert RECORDED_STATES[0] is UploadState.QUEUED
    assert RECORDED_STATES[-1] is UploadState.STORED
    assert UploadState.DELETED not in RECORDED_STATES
    assert {UploadState.REJECTED, UploadState.FAILED} == OUTCOME_FAILED
