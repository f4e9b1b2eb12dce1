"""The ``artstore`` client commands as a user runs them: subprocesses against the pipeline."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from base.settings import Settings
from tests.pipeline import Pipeline, running_pipeline

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.postgres, pytest.mark.redis]

TAG = "cli-e2e"


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str


async def artstore(pipeline: Pipeline, *args: str, cwd: Path, **env: str) -> Run:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from artstore.cli import main; main()",
        *args,
        cwd=cwd,
        env=pipeline.cli_env(**env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return Run(process.returncode, out.decode(), err.decode())


@pytest.fixture(scope="module")
async def pipeline(settings: Settings, redis_namespace: str) -> AsyncIterator[Pipeline]:
    async with running_pipeline(settings, redis_namespace) as running:
        yield running


@pytest.fixture(scope="module")
def documents(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("documents")
    (root / "contracts").mkdir()
    (root / "contracts" / "supplier-agreement.txt").write_text("supplier agreement terms\n" * 500)
    (root / "invoice-2026-001.txt").write_text("invoice for archival services\n" * 300)
    (root / "scan.bin").write_bytes(os.urandom(2 * 1024 * 1024))
    return root


async def test_upload_a_directory_search_and_download_with_checksum(
    pipeline: Pipeline, documents: Path, tmp_path: Path
) -> None:
    uploaded = await artstore(
        pipeline, "upload", str(documents), "--tag", TAG, "--attr", "batch=7", cwd=tmp_path
    )
    assert uploaded.code == 0, uploaded.stderr + uploaded.stdout
    assert "3 file(s)" in uploaded.stderr
    assert "/s" in uploaded.stderr  # the transfer speed column
    assert uploaded.stdout.count("stored") == 3
    assert "supplier-agreement.txt" in uploaded.stdout

    found = await artstore(pipeline, "search", "--tag", TAG, "--json", cwd=tmp_path)
    assert found.code == 0, found.stderr
    items = {item["original_filename"]: item for item in json.loads(found.stdout)["items"]}
    assert set(items) == {"supplier-agreement.txt", "invoice-2026-001.txt", "scan.bin"}
    table = await artstore(pipeline, "search", "supplier", cwd=tmp_path)
    assert "supplier-agreement.txt" in table.stdout

    scan = items["scan.bin"]
    fetched = await artstore(
        pipeline, "download", scan["file_id"], "-o", str(tmp_path / "copy.bin"), cwd=tmp_path
    )
    assert fetched.code == 0, fetched.stderr
    assert "verified" in fetched.stdout
    original = (documents / "scan.bin").read_bytes()
    copy = (tmp_path / "copy.bin").read_bytes()
    assert hashlib.sha256(copy).hexdigest() == hashlib.sha256(original).hexdigest()

    meta = await artstore(pipeline, "meta", scan["file_id"], cwd=tmp_path)
    assert json.loads(meta.stdout)["custom_attributes"] == {"batch": 7}


async def test_accounts_create_list_and_suspend_over_the_auth_api(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    name = f"ingest-{uuid.uuid4().hex[:6]}"
    created = await artstore(pipeline, "accounts", "create", name, "--role", "user", cwd=tmp_path)
    assert created.code == 0, created.stderr
    secret = created.stdout.split("client_secret=")[1].split()[0]
    client_id = created.stdout.split("client_id=")[1].split()[0]

    listed = await artstore(pipeline, "accounts", "list", "--json", cwd=tmp_path)
    assert name in listed.stdout
    assert secret not in listed.stdout
    assert pipeline.admin_secret not in listed.stdout + created.stdout

    as_new = {"ARTSTORE_CLIENT_CLIENT_ID": client_id, "ARTSTORE_CLIENT_CLIENT_SECRET": secret}
    works = await artstore(pipeline, "search", "--tag", TAG, cwd=tmp_path, **as_new)
    assert works.code == 0, works.stderr

    suspended = await artstore(pipeline, "accounts", "suspend", name, cwd=tmp_path)
    assert "suspended" in suspended.stdout
    refused = await artstore(pipeline, "search", "--tag", TAG, cwd=tmp_path, **as_new)
    assert refused.code == 2
    assert "token request refused" in refused.stderr
    assert "Traceback" not in refused.stderr


async def test_upload_json_gives_ids_and_outcomes_and_keeps_relative_paths(
    pipeline: Pipeline, documents: Path, tmp_path: Path
) -> None:
    uploaded = await artstore(
        pipeline, "upload", str(documents), "--tag", "json-e2e", "--json", cwd=tmp_path
    )
    assert uploaded.code == 0, uploaded.stderr
    assert "file(s)" not in uploaded.stderr  # no progress bars around JSON
    results = {item["file"]: item for item in json.loads(uploaded.stdout)}
    nested = f"{documents.name}/contracts/supplier-agreement.txt"
    assert set(results) == {
        nested,
        f"{documents.name}/invoice-2026-001.txt",
        f"{documents.name}/scan.bin",
    }
    assert {item["outcome"] for item in results.values()} == {"stored"}
    file_id = results[nested]["file_id"]
    assert str(uuid.UUID(file_id)) == file_id
    meta = await artstore(pipeline, "meta", file_id, cwd=tmp_path)
    assert json.loads(meta.stdout)["metadata"] == {"relative_path": nested}

    table = await artstore(pipeline, "search", "--tag", "json-e2e", cwd=tmp_path, COLUMNS="80")
    assert table.code == 0, table.stderr
    for item in results.values():
        assert item["file_id"] in table.stdout  # whole, on one line, however narrow


async def test_download_refuses_to_overwrite_an_existing_file_without_force(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    source = tmp_path / "fresh.txt"
    source.write_text("fresh content\n")
    uploaded = await artstore(pipeline, "upload", str(source), "--json", cwd=tmp_path)
    (result,) = json.loads(uploaded.stdout)
    existing = tmp_path / "existing.txt"
    existing.write_text("keep me\n")

    refused = await artstore(
        pipeline, "download", result["file_id"], "-o", str(existing), cwd=tmp_path
    )
    assert refused.code == 2
    assert refused.stderr.strip().splitlines() == [
        f"error: {existing} already exists; pass --force to overwrite it"
    ]
    assert existing.read_text() == "keep me\n"

    forced = await artstore(
        pipeline, "download", result["file_id"], "-o", str(existing), "--force", cwd=tmp_path
    )
    assert forced.code == 0, forced.stderr
    assert existing.read_text() == "fresh content\n"


async def test_download_of_an_unknown_file_fails_before_drawing_a_progress_bar(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    unknown = str(uuid.uuid4())
    refused = await artstore(pipeline, "download", unknown, cwd=tmp_path)
    assert refused.code == 2
    assert refused.stderr.strip().splitlines() == [
        f"error: metadata of {unknown}: no file {unknown} is known to the index"
    ]


async def test_an_out_of_range_ttl_names_the_flag_before_anything_is_drawn(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    source = tmp_path / "short-lived.txt"
    source.write_text("temporary\n")
    refused = await artstore(
        pipeline,
        "upload",
        str(source),
        "--retention",
        "temporary",
        "--ttl-days",
        "999",
        cwd=tmp_path,
    )
    assert refused.code == 2
    assert refused.stderr.strip().splitlines() == [
        "error: --ttl-days: Input should be less than or equal to 365 (got 999)"
    ]


async def test_an_unknown_role_is_refused_naming_the_roles(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    refused = await artstore(
        pipeline, "accounts", "create", "bob", "--role", "superuser", cwd=tmp_path
    )
    assert refused.code == 2
    assert refused.stderr.strip().splitlines() == [
        "error: role must be one of admin, user, auditor, readonly"
    ]


async def test_read_only_element_makes_an_upload_fail_with_its_reason(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    moved = await artstore(
        pipeline,
        "elements",
        "mode",
        pipeline.element_id,
        "ro",
        "--reason",
        "quarter closed",
        cwd=tmp_path,
    )
    assert moved.code == 0, moved.stderr
    assert f"element {pipeline.element_id} is now ro" in moved.stdout
    listed = await artstore(pipeline, "elements", "list", "--json", cwd=tmp_path)
    modes = {e["element_id"]: e["mode"] for e in json.loads(listed.stdout)}
    assert modes[pipeline.element_id] == "ro"

    late = tmp_path / "late.txt"
    late.write_text("too late for this quarter\n")
    refused = await artstore(pipeline, "upload", str(late), cwd=tmp_path)
    assert refused.code == 1
    assert "rejected" in refused.stdout
    assert "element_mode" in refused.stdout
    assert "did not succeed" in refused.stderr


async def test_a_refused_mode_change_is_one_sentence_naming_the_transitions_and_the_flag(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    element = pipeline.element_id

    async def mode(*args: str) -> Run:
        return await artstore(
            pipeline, "elements", "mode", element, *args, "--reason", "test", cwd=tmp_path
        )

    listed = await artstore(pipeline, "elements", "list", "--json", cwd=tmp_path)
    if {e["element_id"]: e["mode"] for e in json.loads(listed.stdout)}[element] == "rw":
        assert (await mode("ro")).code == 0

    unconfirmed = await mode("rw")
    assert unconfirmed.code == 1
    assert unconfirmed.stderr.strip().splitlines() == [
        f"element {element} is ro; moving it to rw needs --confirm"
    ]
    confirmed = await mode("rw", "--confirm")
    assert confirmed.code == 0, confirmed.stderr
    skipping = await mode("ar")
    assert skipping.code == 1
    assert skipping.stderr.strip().splitlines() == [
        f"element {element} cannot move from rw to ar; allowed from rw: ro"
    ]


@pytest.mark.parametrize(
    "command",
    [["status"], ["meta"], ["download"], ["rm", "--yes"]],
    ids=["status", "meta", "download", "rm"],
)
async def test_a_malformed_file_id_is_refused_in_one_line_with_exit_2(
    pipeline: Pipeline, tmp_path: Path, command: list[str]
) -> None:
    refused = await artstore(pipeline, *command, "not-a-uuid", cwd=tmp_path)
    assert refused.code == 2
    assert refused.stderr.strip().splitlines() == [
        "error: 'not-a-uuid' is not a file id (a UUID such as 3f2b9c4e-8a1d-4c6e-9f0a-1b2c3d4e5f60)"
    ]


async def test_errors_are_not_wrapped_when_stderr_is_not_a_terminal(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    refused = await artstore(pipeline, "meta", "x" * 90, cwd=tmp_path, COLUMNS="80")
    assert refused.code == 2
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1, refused.stderr
    assert len(lines[0]) > 80
