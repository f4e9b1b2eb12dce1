"""Versions and legal holds from the ``artstore`` command, as a user runs it, against the
pipeline (auth service, facade, projector, an rw element)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from base.settings import Settings
from tests.e2e.client.test_cli import artstore
from tests.helpers import wait_until
from tests.pipeline import Pipeline, running_pipeline

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture(scope="module")
async def pipeline(settings: Settings, redis_namespace: str) -> AsyncIterator[Pipeline]:
    async with running_pipeline(settings, redis_namespace) as running:
        yield running


async def upload(pipeline: Pipeline, path: Path, *args: str) -> str:
    done = await artstore(pipeline, "upload", str(path), "--json", *args, cwd=path.parent)
    assert done.code == 0, done.stderr + done.stdout
    (outcome,) = json.loads(done.stdout)
    assert outcome["outcome"] == "stored", outcome
    return str(outcome["file_id"])


async def test_versions_and_a_legal_hold_from_the_command_line(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:12]
    draft = tmp_path / "contract.txt"
    draft.write_text("draft terms\n")
    first = await upload(pipeline, draft, "--tag", tag)
    draft.write_text("signed terms\n")
    second = await upload(pipeline, draft, "--tag", tag, "--version-of", first)

    listed = await artstore(pipeline, "versions", first, "--json", cwd=tmp_path)
    assert listed.code == 0, listed.stderr
    body = json.loads(listed.stdout)
    assert [(v["document_version"], v["file_id"]) for v in body["versions"]] == [
        (1, first),
        (2, second),
    ]
    table = await artstore(pipeline, "versions", second, cwd=tmp_path)
    assert "latest" in table.stdout

    async def latest_only() -> bool:
        found = await artstore(pipeline, "search", "--tag", tag, "--json", cwd=tmp_path)
        return [i["file_id"] for i in json.loads(found.stdout)["items"]] == [second]

    await wait_until(latest_only, 60, interval=0.5, message="search shows the latest version")
    every = await artstore(
        pipeline, "search", "--tag", tag, "--all-versions", "--json", cwd=tmp_path
    )
    assert sorted(i["file_id"] for i in json.loads(every.stdout)["items"]) == sorted(
        [first, second]
    )

    held = await artstore(pipeline, "hold", "place", second, "--reason", "case 9", cwd=tmp_path)
    assert held.code == 0, held.stderr + held.stdout

    async def shown() -> bool:
        meta = await artstore(pipeline, "meta", second, cwd=tmp_path)
        return (json.loads(meta.stdout).get("legal_hold") or {}).get("reason") == "case 9"

    await wait_until(shown, 60, interval=0.5, message="the hold in the file's metadata")
    refused = await artstore(pipeline, "rm", second, "--yes", cwd=tmp_path)
    assert refused.code == 2, "a refused command is an error"
    said = refused.stderr + refused.stdout
    assert "legal_hold" in said
    assert "case 9" in said

    released = await artstore(
        pipeline, "hold", "release", second, "--reason", "settled", cwd=tmp_path
    )
    assert released.code == 0, released.stderr + released.stdout


async def test_a_version_of_an_unknown_or_malformed_id_is_refused(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    path = tmp_path / "orphan.txt"
    path.write_text("orphan\n")
    unknown = await artstore(
        pipeline, "upload", str(path), "--version-of", str(uuid.uuid4()), cwd=tmp_path
    )
    assert unknown.code == 1
    assert "unknown_document" in unknown.stderr + unknown.stdout
    malformed = await artstore(pipeline, "upload", str(path), "--version-of", "nope", cwd=tmp_path)
    assert malformed.code != 0
    assert "not a file id" in malformed.stderr + malformed.stdout
