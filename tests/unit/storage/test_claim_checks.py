"""Claim-check confinement: what a caller's claim check may name, and what the worker removes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from events import FileStagedObject, S3StagedObject
from storage_workers.claim_checks import ConfinedClaim, InvalidClaimCheck, StagingArea, confine
from storage_workers.staging import Staging

OWNER = "sa_dev_ingest_0a1b2c3d"
AREA = StagingArea(s3_bucket="artstore", s3_prefix="staging/", local=True)


@pytest.mark.parametrize(
    "staged",
    [
        S3StagedObject(bucket="artstore", key=f"staging/{OWNER}/2026/01/01/f"),
        FileStagedObject(path=f"{OWNER}/2026/01/01/f"),
    ],
)
def test_a_claim_in_the_callers_namespace_is_confined(
    staged: S3StagedObject | FileStagedObject,
) -> None:
    assert confine(staged, OWNER, AREA) == ConfinedClaim(owner=OWNER, staged=staged)


@pytest.mark.parametrize(
    "staged",
    [
        S3StagedObject(bucket="tansu", key=f"staging/{OWNER}/f"),
        S3StagedObject(bucket="artstore", key="elements/se-s3/2026/01/01/00/f"),
        S3StagedObject(bucket="artstore", key="staging/sa_dev_other_00000000/f"),
        S3StagedObject(bucket="artstore", key=f"staging/{OWNER}x/f"),
        S3StagedObject(bucket="artstore", key=f"staging/{OWNER}/../sa_dev_other_00000000/f"),
        S3StagedObject(bucket="artstore", key=f"staging/{OWNER}//f"),
        S3StagedObject(bucket="artstore", key=f"staging/{OWNER}/"),
        FileStagedObject(path="sa_dev_other_00000000/f"),
        FileStagedObject(path=f"{OWNER}/../sa_dev_other_00000000/f"),
        FileStagedObject(path=f"/{OWNER}/f"),
        FileStagedObject(path=OWNER),
        FileStagedObject(path=f"{OWNER}/./f"),
    ],
    ids=lambda s: s.model_dump_json(),
)
def test_anything_else_is_refused_without_naming_it(
    staged: S3StagedObject | FileStagedObject,
) -> None:
    with pytest.raises(InvalidClaimCheck) as refused:
        confine(staged, OWNER, AREA)
    named = staged.key if isinstance(staged, S3StagedObject) else staged.path
    expected = f"staging/{OWNER}/"
    assert named in (expected, OWNER) or named not in str(refused.value)
    assert expected in str(refused.value)


def test_a_client_id_that_cannot_be_a_namespace_stages_nothing() -> None:
    with pytest.raises(InvalidClaimCheck):
        confine(FileStagedObject(path="../f"), "..", AREA)


def test_no_s3_staging_refuses_every_s3_claim() -> None:
    area = StagingArea(s3_bucket=None, local=True)
    with pytest.raises(InvalidClaimCheck):
        confine(S3StagedObject(bucket="artstore", key=f"staging/{OWNER}/f"), OWNER, area)


def test_release_removes_only_confined_regular_files(tmp_path: Path) -> None:
    staging_dir = tmp_path / "staging"
    outside = tmp_path / "artstore.env"
    outside.write_text("secret")
    theirs = staging_dir / "sa_dev_other_00000000" / "f"
    theirs.parent.mkdir(parents=True)
    theirs.write_text("theirs")
    mine = staging_dir / OWNER / "f"
    mine.parent.mkdir(parents=True)
    mine.write_text("mine")
    link = staging_dir / OWNER / "link"
    link.symlink_to(outside)
    (staging_dir / OWNER / "dir").symlink_to(tmp_path, target_is_directory=True)
    staging = Staging(directory=staging_dir)

    def claim(owner: str, path: str) -> str:
        return ConfinedClaim(owner=owner, staged=FileStagedObject(path=path)).model_dump_json()

    staging.remove_all(
        [
            claim(OWNER, f"{OWNER}/f"),
            claim(OWNER, f"{OWNER}/link"),
            claim(OWNER, f"{OWNER}/dir/artstore.env"),
            claim(OWNER, "sa_dev_other_00000000/f"),
            FileStagedObject(path="sa_dev_other_00000000/f").model_dump_json(),  # no owner
        ]
    )
    assert not mine.exists()
    assert os.path.islink(link)
    assert outside.read_text() == "secret"
    assert theirs.read_text() == "theirs"
