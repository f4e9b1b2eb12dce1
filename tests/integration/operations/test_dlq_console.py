"""The console's pipeline page, driven through its HTTP forms as a browser would: dead letters a
real worker wrote are counted, listed and shown (the producer's token redacted), then redriven —
a dry run, its Execute form posted, and posted again as a no-op — each upload stored once and each
letter sent audited with the operator as actor. A readonly or auditor account may not redrive
even by posting the form directly, a form without its CSRF token is refused, and every refusal
reaches the audit trail.
"""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from base.settings import Settings
from events import FileStored, Topic, UploadRequested
from storage_workers.service import StorageService
from tests.console_support import Console, credentials
from tests.dead_letter_support import (
    Outage,
    audit_events,
    outage_worker,
    redriven,
    stored_once,
    whole_topic,
)
from tests.helpers import wait_until
from tests.pipeline import Pipeline, running_pipeline
from tests.storage_support import FactLog, Producer

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.redis, pytest.mark.s3]

ELEMENT = "se-dlq-console"
REDRIVE = "/console/pipeline/dlq/redrive"
_LETTER_LINK = re.compile(r'href="/console/pipeline/dlq/(\d+/\d+)"')
_EXECUTE_FORM = re.compile(r'<form[^>]*id="dlq-execute">(.*?)</form>', re.DOTALL)
_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


@pytest.fixture(scope="module")
async def pipeline(
    settings: Settings, redis_namespace: str, topics: Settings
) -> AsyncIterator[Pipeline]:
    async with running_pipeline(settings, redis_namespace) as running:
        yield running


@pytest.fixture(scope="module")
async def element(
    pipeline: Pipeline, settings: Settings, jwks_file: Path
) -> AsyncIterator[tuple[StorageService, Outage]]:
    async with outage_worker(settings, ELEMENT, jwks_file) as running:
        yield running


@pytest.fixture(scope="module")
async def poisoned(
    element: tuple[StorageService, Outage], producer: Producer, facts: FactLog
) -> tuple[list[UploadRequested], str]:
    """Two uploads dead-lettered while the element's storage is away, and their token."""
    token = producer.token()
    uploads = [
        producer.upload(f"console poison {i}".encode(), f"c{i}.txt", retention_policy="temporary")
        for i in range(2)
    ]
    await producer.send(*uploads, token=token)
    keys = {str(u.file_id) for u in uploads}
    await wait_until(
        lambda: keys <= {r.key.decode() for r in facts.dlq}, 60, message="dead-lettered"
    )
    return uploads, token


def execute_form(page: str) -> dict[str, str]:
    """The fields of the dry run's Execute form, as the browser would post them."""
    form = _EXECUTE_FORM.search(page)
    assert form is not None, page
    return {name: html.unescape(value) for name, value in _HIDDEN.findall(form.group(1))}


async def test_readonly_and_auditor_accounts_may_not_redrive_and_are_audited(
    pipeline: Pipeline, poisoned: tuple[list[UploadRequested], str], settings: Settings
) -> None:
    reader = await pipeline.create_account(f"viewer{uuid.uuid4().hex[:6]}", role="readonly")
    async with Console(pipeline) as console:
        assert (await console.sign_in(*credentials(reader))).status_code == 303
        page = await console.http.get("/console/pipeline")
        assert page.status_code == 200
        assert "needs the scope audit:read" in page.text
        assert 'id="dlq-letters"' not in page.text
        assert (await console.http.get("/console/pipeline/dlq/0/0")).status_code == 403
        posted = await console.submit(REDRIVE, error="BackendError", execute="yes")
        assert posted.status_code == 403
    auditor = await pipeline.create_account(f"auditor{uuid.uuid4().hex[:6]}", role="auditor")
    async with Console(pipeline) as console:
        assert (await console.sign_in(*credentials(auditor))).status_code == 303
        page = await console.http.get("/console/pipeline")
        assert 'id="dlq-letters"' in page.text
        assert 'id="dlq-redrive"' not in page.text  # no form to offer
        posted = await console.submit(REDRIVE, error="BackendError", execute="yes")
        assert posted.status_code == 403
        assert "dlq:admin" in posted.text
    assert not [r for r in await whole_topic(settings, Topic.UPLOADS_EDIT) if redriven(r)]

    async def refused_by(actor: str | None) -> bool:
        return any(
            data.actor == actor and data.details.get("door") == "console"
            for _, data in await audit_events(settings, "dlq.redrive_refused")
        )

    for account in (reader, auditor):
        await wait_until(lambda a=account: refused_by(a.client_id), 60, message="audited")


async def test_an_operator_lists_shows_and_redrives_dead_letters_through_the_forms(
    pipeline: Pipeline,
    poisoned: tuple[list[UploadRequested], str],
    element: tuple[StorageService, Outage],
    facts: FactLog,
    settings: Settings,
) -> None:
    uploads, token = poisoned
    admin = pipeline.admin_client_id
    async with Console(pipeline) as console:
        assert (await console.sign_in(admin, pipeline.admin_secret)).status_code == 303
        page = await console.http.get("/console/pipeline", params={"error": "BackendError"})
        assert page.status_code == 200
        counts = page.text[page.text.index('id="dlq-counts"') :]
        assert "retries_exhausted" in counts
        assert f"{settings.topic_prefix}.storage.uploads.edit" in counts
        letters = set(_LETTER_LINK.findall(page.text))
        assert len(letters) == 2

        shown = await console.http.get(f"/console/pipeline/dlq/{sorted(letters)[0]}")
        assert shown.status_code == 200
        assert "Bearer [redacted]" in shown.text
        assert token not in shown.text
        assert any(str(u.file_id) in shown.text for u in uploads)
        assert f'name="ids" value="{sorted(letters)[0]}"' in shown.text
        one = await console.submit(REDRIVE, ids=sorted(letters)[0])  # the letter page's form
        assert "1 would be sent" in one.text
        assert (await console.http.get("/console/pipeline/dlq/0/x")).status_code == 404
        bad_filter = await console.http.get("/console/pipeline", params={"since": "garbage"})
        assert bad_filter.status_code == 400

        forged = await console.http.post(REDRIVE, data={"error": "BackendError"})
        assert forged.status_code == 403
        assert "CSRF" in forged.text

        _, outage = element
        outage.away = False  # the fault is mended
        dry = await console.submit(REDRIVE, error="BackendError")
        assert dry.status_code == 200
        assert "2 would be sent" in dry.text
        assert not [r for r in await whole_topic(settings, Topic.UPLOADS_EDIT) if redriven(r)]
        execute = execute_form(dry.text)
        assert set(execute.pop("ids").split()) == letters  # exactly what the dry run showed
        assert execute == {"csrf_token": console.csrf, "error": "BackendError", "execute": "yes"}
        execute["ids"] = " ".join(sorted(letters))
        first = await console.http.post(REDRIVE, data=execute)
        assert first.status_code == 200
        assert "Sent 2; 0 already redriven" in first.text
        second = await console.http.post(REDRIVE, data=execute)
        assert "Sent 0; 2 already redriven" in second.text

    for upload in uploads:
        await facts.wait(FileStored, file__file_id=upload.file_id)
        assert stored_once(settings.data_dir / ELEMENT, upload.file_id)
        assert len(facts.of(FileStored, file__file_id=upload.file_id)) == 1
    resent = [r for r in await whole_topic(settings, Topic.UPLOADS_EDIT) if redriven(r)]
    assert sorted(r.key.decode() for r in resent) == sorted(str(u.file_id) for u in uploads)
    audited = await audit_events(settings, "dlq.redriven")
    assert len(audited) == 2
    assert {(source, data.actor) for source, data in audited} == {("artstore-facade", admin)}

    async def csrf_refusal() -> bool:
        return any(
            data.actor == admin and data.reason is not None and "CSRF" in data.reason
            for _, data in await audit_events(settings, "dlq.redrive_refused")
        )

    await wait_until(csrf_refusal, 60, message="the forged form's refusal audited")
