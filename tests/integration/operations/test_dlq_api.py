"""``/api/v1/dlq``: dead letters a real worker wrote, listed with their counts and pages, shown
with the producer's token redacted, and — once the fault is mended — redriven: a dry run that
sends nothing, then executed by two callers at once (each letter sent by one of them) and once
more as a no-op; each upload stored once, each letter sent audited once. Missing scopes are
refused and audited; hostile parameters answer 4xx problem+json.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from base.settings import Settings
from consumers import migrate
from events import FileStored, Topic, UploadRequested
from storage_workers.service import StorageService
from tests.dead_letter_support import (
    Outage,
    audit_events,
    outage_worker,
    redriven,
    stored_once,
    whole_topic,
)
from tests.helpers import wait_until
from tests.integration.query.support import FacadeHarness, facade_harness
from tests.storage_support import FactLog, Producer

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.redis]

ELEMENT = "se-dlq-api"
OPERATOR = "sa_test_operator_00000000"
READER = "sa_test_reader_00000000"
AUDITOR = "sa_test_auditor_00000000"
PROBLEM = "application/problem+json"
API_KEY = "k3y-that-must-not-show"


@dataclass
class Poison:
    """What was dead-lettered: three uploads the element could not store, one undecodable
    command (by both consumers that read it: the element's worker and the projector), and the
    producer's token every one of them carries."""

    uploads: list[UploadRequested]
    token: str

    @property
    def file_ids(self) -> set[str]:
        return {str(u.file_id) for u in self.uploads}


@pytest.fixture(scope="module")
async def facade(topics: Settings, redis_namespace: str) -> AsyncIterator[FacadeHarness]:
    await migrate(topics.database_url)
    async with facade_harness(topics, redis_namespace, staging="local") as harness:
        yield harness


@pytest.fixture(scope="module")
async def element(
    settings: Settings, jwks_file: Any, topics: Settings
) -> AsyncIterator[tuple[StorageService, Outage]]:
    async with outage_worker(settings, ELEMENT, jwks_file) as running:
        yield running


@pytest.fixture(scope="module")
async def poison(
    element: tuple[StorageService, Outage], producer: Producer, facts: FactLog
) -> Poison:
    _, outage = element
    token = producer.token()
    outage.away = False  # the element refuses it for what it is, not for its storage
    await producer.send_raw(
        Topic.UPLOADS_EDIT,
        b"not-a-file-id",
        b"{not json",
        {"authorization": f"Bearer {token}", "x-api-key": API_KEY},
    )
    await wait_until(
        lambda: [r.key for r in facts.dlq] == [b"not-a-file-id"] * 2, 60, message="refused"
    )
    outage.away = True
    uploads = [
        producer.upload(f"poison {i}".encode(), f"p{i}.txt", retention_policy="temporary")
        for i in range(3)
    ]
    await producer.send(*uploads, token=token)
    keys = sorted([str(u.file_id) for u in uploads] + ["not-a-file-id"] * 2)
    await wait_until(
        lambda: sorted(r.key.decode() for r in facts.dlq) == keys, 60, message="dead-lettered"
    )
    return Poison(uploads, token)


def storage_group(settings: Settings) -> str:
    return f"{settings.topic_prefix}.storage.uploads.edit"


async def listed(facade: FacadeHarness, query: str = "") -> dict[str, Any]:
    response = await facade.get(f"/api/v1/dlq{query}", "audit:read")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_dead_letters_are_listed_latest_first_with_counts_and_pages(
    facade: FacadeHarness, poison: Poison, settings: Settings, redis_namespace: str
) -> None:
    everything = await listed(facade)
    uploads_topic = settings.topic_names().name(Topic.UPLOADS_EDIT)
    assert everything["total"] == 5
    assert everything["dead_letter_topic"] == settings.topic_names().name(Topic.DLQ)
    group = storage_group(settings)
    counts = everything["counts"]
    assert counts == sorted(counts, key=lambda c: (c["source_topic"], c["group"], c["reason"]))
    assert {c["source_topic"] for c in counts} == {uploads_topic}
    by_group = {(c["group"], c["reason"]): c["count"] for c in counts}
    assert by_group[(group, "retries_exhausted")] == 3
    assert by_group[(group, "invalid_payload")] == 1
    projector = [n for (g, _), n in by_group.items() if g == f"{redis_namespace}projection"]
    assert projector == [1]
    assert sum(by_group.values()) == 5
    times = [item["written_at"] for item in everything["items"]]
    assert times == sorted(times, reverse=True)
    assert all(item["links"]["self"] == f"/api/v1/dlq/{item['id']}" for item in everything["items"])

    failed = await listed(facade, "?error=BackendError")
    assert failed["total"] == 3
    assert {i["attempts"] for i in failed["items"]} == {2}
    assert (await listed(facade, "?group=nobody"))["total"] == 0
    assert (await listed(facade, f"?group={group}&source_topic=uploads.edit"))["total"] == 4
    assert (await listed(facade, f"?source_topic={uploads_topic}"))["total"] == 5
    assert (await listed(facade, "?since=2999-01-01T00:00:00Z"))["total"] == 0
    assert (await listed(facade, "?until=2000-01-01T00:00:00"))["total"] == 0

    first = await listed(facade, "?error=BackendError&limit=2")
    assert (len(first["items"]), first["next_offset"]) == (2, 2)
    rest = await listed(facade, "?error=BackendError&limit=2&offset=2")
    assert (len(rest["items"]), rest["next_offset"], rest["total"]) == (1, None, 3)
    paged = {i["id"] for i in first["items"] + rest["items"]}
    assert paged == {i["id"] for i in failed["items"]}
    assert (await listed(facade, "?offset=100000"))["items"] == []


async def test_a_dead_letter_is_shown_whole_with_its_credentials_redacted(
    facade: FacadeHarness, poison: Poison, settings: Settings
) -> None:
    letters = (await listed(facade))["items"]
    upload = next(i for i in letters if i["reason"] == "retries_exhausted")
    response = await facade.get(f"/api/v1/dlq/{upload['id']}", "audit:read")
    assert response.status_code == 200
    shown = response.json()
    assert poison.token not in response.text
    assert shown["headers"]["authorization"] == "Bearer [redacted]"
    assert shown["headers"]["dlq_source_topic"] == settings.topic_names().name(Topic.UPLOADS_EDIT)
    assert shown["headers"]["dlq_error_class"] == "BackendError"
    assert shown["payload"]["data"]["file_id"] in poison.file_ids
    assert shown["dead_letter"]["reason"] == "retries_exhausted"
    assert shown["id"] == upload["id"] == f"{shown['partition']}/{shown['offset']}"

    bad = next(i for i in letters if i["reason"] == "invalid_payload")  # the worker's letter
    response = await facade.get(f"/api/v1/dlq/{bad['id']}", "audit:read")
    assert poison.token not in response.text
    assert API_KEY not in response.text
    assert response.json()["headers"]["x-api-key"] == "[redacted]"
    assert response.json()["payload"] == "{not json"

    partition, offset = upload["id"].split("/")
    for missing in (f"{partition}/{int(offset) + 100_000}", "7/0", "0/9223372036854775807"):
        response = await facade.get(f"/api/v1/dlq/{missing}", "audit:read")
        assert (response.status_code, response.headers["content-type"]) == (404, PROBLEM)


HOSTILE_QUERIES = [
    "limit=0",
    "limit=501",
    "limit=-1",
    "limit=1e309",
    "limit=99999999999999999999999",
    "limit=NaN",
    "offset=-1",
    "offset=100001",
    "offset=9223372036854775808",
    "since=not-a-date",
    "since=2026-13-45T00:00:00Z",
    "since=1e309",
    "until=99999999999999999999",
    "source_topic=%00",
    "group=a%0Ab",
    f"error={'x' * 201}",
    "unknown=1",
]


@pytest.mark.parametrize("query", HOSTILE_QUERIES)
async def test_hostile_list_parameters_are_a_400_problem(facade: FacadeHarness, query: str) -> None:
    response = await facade.get(f"/api/v1/dlq?{query}", "audit:read")
    assert (response.status_code, response.headers["content-type"]) == (400, PROBLEM)
    assert response.json()["detail"]


HOSTILE_IDS = [
    ("x/1", 400),
    ("1/x", 400),
    ("-1/0", 400),
    ("100001/0", 400),
    ("0/9223372036854775808", 400),
    ("0/1e3", 400),
    ("0/" + "9" * 40, 400),
    ("1/2/3", 404),
    ("%00/1", 400),
]


@pytest.mark.parametrize(("letter", "status"), HOSTILE_IDS)
async def test_an_id_that_does_not_parse_is_refused(
    facade: FacadeHarness, letter: str, status: int
) -> None:
    response = await facade.get(f"/api/v1/dlq/{letter}", "audit:read")
    assert (response.status_code, response.headers["content-type"]) == (status, PROBLEM)


HOSTILE_BODIES: list[Any] = [
    [],
    "execute",
    None,
    {"execute": "maybe"},
    {"execute": True, "extra": 1},
    {"ids": ["a/b"]},
    {"ids": "0/1"},
    {"ids": ["1/99999999999999999999"]},
    {"ids": ["0/9223372036854775808"]},
    {"ids": [f"0/{i}" for i in range(501)]},
    {"since": "yesterday"},
    {"error": "\u0000"},
    {"group": "g" * 201},
]


@pytest.mark.parametrize("body", HOSTILE_BODIES)
async def test_hostile_redrive_bodies_are_a_400_problem(facade: FacadeHarness, body: Any) -> None:
    response = await facade.http.post(
        "/api/v1/dlq/redrive", json=body, headers=facade.token("dlq:admin")
    )
    assert (response.status_code, response.headers["content-type"]) == (400, PROBLEM)


@pytest.mark.parametrize("raw", [b"{not json", b"", b"\xff\xfe", b"[" * 100_000])
async def test_a_redrive_body_that_is_not_json_is_a_400_problem(
    facade: FacadeHarness, raw: bytes
) -> None:
    garbled = await facade.http.post(
        "/api/v1/dlq/redrive",
        content=raw,
        headers={**facade.token("dlq:admin"), "content-type": "application/json"},
    )
    assert (garbled.status_code, garbled.headers["content-type"]) == (400, PROBLEM)


async def test_each_door_wants_its_scope_and_refusals_are_audited(
    facade: FacadeHarness, poison: Poison, settings: Settings
) -> None:
    reader = facade.token("files:read", client_id=READER)
    for path in ("/api/v1/dlq", "/api/v1/dlq/0/0"):
        assert (await facade.http.get(path)).status_code == 401
        refused = await facade.http.get(path, headers=reader)
        assert (refused.status_code, refused.headers["content-type"]) == (403, PROBLEM)
    auditor = facade.token("audit:read", client_id=AUDITOR)
    refused = await facade.http.post("/api/v1/dlq/redrive", json={"execute": True}, headers=auditor)
    assert refused.status_code == 403
    assert 'error="insufficient_scope"' in refused.headers["WWW-Authenticate"]
    assert not [r for r in await whole_topic(settings, Topic.UPLOADS_EDIT) if redriven(r)]

    async def refusals(action: str, actor: str) -> list[Any]:
        return [
            (source, data)
            for source, data in await audit_events(settings, action)
            if data.actor == actor
        ]

    await wait_until(
        lambda: _have(refusals("dlq.redrive_refused", AUDITOR)), 60, message="refusal audited"
    )
    ((source, entry),) = await refusals("dlq.redrive_refused", AUDITOR)
    assert (source, entry.outcome, entry.subject) == ("artstore-facade", "failure", "dlq")
    assert entry.reason is not None
    assert "dlq:admin" in entry.reason
    await wait_until(lambda: _have(refusals("dlq.read_refused", READER), 2), 60)
    subjects = {data.subject for _, data in await refusals("dlq.read_refused", READER)}
    assert subjects == {"dlq", "0/0"}
    assert all(
        data.reason and "audit:read" in data.reason
        for _, data in await refusals("dlq.read_refused", READER)
    )


async def _have(found: Any, at_least: int = 1) -> bool:
    return len(await found) >= at_least


async def test_a_redrive_is_a_dry_run_until_executed_and_sends_each_letter_once(
    facade: FacadeHarness,
    poison: Poison,
    element: tuple[StorageService, Outage],
    facts: FactLog,
    settings: Settings,
) -> None:
    _, outage = element
    outage.away = False  # the fault is mended
    operator = facade.token("dlq:admin", client_id=OPERATOR)

    async def redrive(**body: Any) -> dict[str, Any]:
        response = await facade.http.post("/api/v1/dlq/redrive", json=body, headers=operator)
        assert response.status_code == 200, response.text
        report: dict[str, Any] = response.json()
        return report

    dry = await redrive(error="BackendError")
    assert (dry["executed"], dry["counts"]["would_send"], dry["counts"]["sent"]) == (False, 3, 0)
    assert not [r for r in await whole_topic(settings, Topic.UPLOADS_EDIT) if redriven(r)]
    bad = next(i for i in (await listed(facade))["items"] if i["reason"] == "invalid_payload")
    only = await redrive(ids=[bad["id"]])
    assert [(r["id"], r["outcome"]) for r in only["results"]] == [(bad["id"], "would_send")]

    # Two operators at once: each letter is sent by exactly one of them.
    first, racing = await asyncio.gather(
        redrive(error="BackendError", execute=True), redrive(error="BackendError", execute=True)
    )
    sent = [r["id"] for run in (first, racing) for r in run["results"] if r["outcome"] == "sent"]
    assert sorted(sent) == sorted(r["id"] for r in dry["results"])
    second = await redrive(error="BackendError", execute=True)
    assert second["counts"] == {**second["counts"], "sent": 0, "already_redriven": 3}
    assert {r["outcome"] for r in second["results"]} == {"already_redriven"}

    for upload in poison.uploads:
        await facts.wait(FileStored, file__file_id=upload.file_id)
    resent = [r for r in await whole_topic(settings, Topic.UPLOADS_EDIT) if redriven(r)]
    assert sorted(r.key.decode() for r in resent) == sorted(poison.file_ids)
    root = settings.data_dir / ELEMENT
    for upload in poison.uploads:
        assert stored_once(root, upload.file_id)
        assert len(facts.of(FileStored, file__file_id=upload.file_id)) == 1

    audited = await audit_events(settings, "dlq.redriven")
    assert {(source, data.actor) for source, data in audited} == {("artstore-facade", OPERATOR)}
    assert sorted(data.subject for _, data in audited) == sorted(
        r["source"] for r in dry["results"]
    )
    assert {data.details["target_topic"] for _, data in audited} == {
        settings.topic_names().name(Topic.UPLOADS_EDIT)
    }
