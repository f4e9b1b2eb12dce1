"""Projection and search benchmark: facts/s into the index, search latency at scale.

Projection: ``--facts`` FileStored facts are published to the real broker first (not timed), then
the projector's own path (decode, handlers, multi-row upsert with offsets in one transaction,
tsvector and GIN maintenance) applies them. Baselines measured in the same run: a raw COPY of
the same rows into a copy of the ``files`` table with the same generated column and indexes
(the database's own write ceiling for this table), and a raw consume of the same records.

Search: ``--files`` rows are bulk-loaded with COPY (indexes built afterwards), then searches
go through the facade app (ASGI, token verification, SQL, JSON; cache off) with selective and
broad queries. Baseline: the bare full-text match of the same selective words (``@@`` with
LIMIT, no ranking, filters, sort or HTTP), measured in the same run.

Run: ``python -m bench.bench_projection`` (defaults sized for a quick run) or
``python -m bench.bench_projection --files 1000000`` for the full-scale numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import secrets
import statistics
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from artstore.stack import ensure_stack
from artstore.stack.postgres_server import maintenance_dsn, with_database
from auth.testing import TestSigner
from base.settings import Settings, load_settings
from bench.results import BenchResult, report
from consumers.consume_loop import consume, tune_garbage_collector
from consumers.file_rows import file_row
from consumers.handlers import project
from consumers.migrate import migrate
from consumers.projector import Projection
from consumers.replay import CountingSink
from consumers.sql import asyncpg_dsn
from consumers.store import ApplyResult, ProjectionStore
from events import (
    FileRecord,
    FileStored,
    RetentionPolicy,
    Topic,
    TopicNames,
    create_topics,
    decode_record,
    encode,
    new_event,
)
from events.admin import topic_partitions
from facade import FacadeSettings, create_app

BASE = datetime(2020, 1, 1, tzinfo=UTC)
SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
RU_SYLLABLES = [c + v for c in "бвгдзклмнпрст" for v in "аеиоу"]
COMMON_EN = "archive"  # in about half of all documents
COMMON_RU = "документ"
EXTENSIONS = ["pdf", "docx", "txt", "xlsx", "png", "csv", "md", "xml"]
USERS = [f"svc-{i:03d}" for i in range(200)]
TAGS = [f"tag{chr(97 + i % 26)}{chr(97 + i // 26)}" for i in range(300)]


def _word(rng: random.Random, syllables: list[str], n: int) -> str:
    return "".join(rng.choice(syllables) for _ in range(n))


class Corpus:
    """Deterministic pseudo-text: a Zipf-ish vocabulary, rare words, two common words."""

    def __init__(self, seed: int = 7) -> None:
        rng = random.Random(seed)
        self.vocab_en = list({_word(rng, SYLLABLES, rng.randint(2, 4)) for _ in range(6000)})
        self.vocab_ru = list({_word(rng, RU_SYLLABLES, rng.randint(2, 4)) for _ in range(3000)})
        self.weights_en = [1 / (i + 1) for i in range(len(self.vocab_en))]
        self.weights_ru = [1 / (i + 1) for i in range(len(self.vocab_ru))]

    @staticmethod
    def rare(i: int) -> str:
        """The rare word of document ``i``: each occurs in about 1 in 20,000 documents."""
        n, letters = i % 20_000, ""
        for _ in range(4):
            n, r = divmod(n, 26)
            letters += chr(97 + r)
        return "qx" + letters

    def record(self, i: int, rng: random.Random) -> FileRecord:
        russian = rng.random() < 0.3
        vocab, weights = (
            (self.vocab_ru, self.weights_ru) if russian else (self.vocab_en, self.weights_en)
        )
        words = rng.choices(vocab, weights, k=8)
        if rng.random() < 0.5:
            words.append(COMMON_RU if russian else COMMON_EN)
        words.append(self.rare(i))
        rng.shuffle(words)
        created = BASE + timedelta(seconds=i * 61)
        ext = rng.choice(EXTENSIONS)
        stem = "_".join(rng.choices(vocab, weights, k=2))
        fid = uuid.UUID(int=rng.getrandbits(128), version=4)
        user = rng.choice(USERS)
        storage = f"{stem}_{user}_{created:%Y%m%dT%H%M%S}_{fid}.{ext}"
        return FileRecord(
            file_id=fid,
            element_id=f"se-{i % 4:02d}",
            original_filename=f"{stem}.{ext}",
            storage_filename=storage,
            storage_path=f"{created:%Y/%m/%d/%H}/{storage}",
            file_size=rng.randint(100, 50_000_000),
            content_type="application/octet-stream",
            checksum=f"{rng.getrandbits(256):064x}",
            created_at=created,
            updated_at=created,
            created_by_id=f"sa_bench_{user}_00000000",
            created_by_username=user,
            description=" ".join(words),
            version=1,
            retention_policy=RetentionPolicy.PERMANENT,
            tags=rng.sample(TAGS, 2),
            custom_attributes={"department": rng.choice(["sales", "hr", "it", "legal"])},
        )

    def records(self, start: int, count: int, seed: int = 11) -> Iterator[FileRecord]:
        rng = random.Random(seed + start)
        for i in range(start, start + count):
            yield self.record(i, rng)


def copy_row(record: FileRecord) -> tuple[Any, ...]:
    row = file_row(record)
    return (
        row.file_id,
        row.element_id,
        row.original_filename,
        row.storage_filename,
        row.storage_path,
        row.extension,
        row.file_size,
        row.content_type,
        row.checksum,
        row.created_at,
        row.updated_at,
        row.created_by_id,
        row.created_by_username,
        row.created_by_fullname,
        row.description,
        row.version,
        row.retention_policy,
        row.ttl_expires_at,
        list(row.tags),
        json.dumps(row.metadata),
        json.dumps(row.custom_attributes),
        row.language,
        row.search_extra,
    )


COPY_COLUMNS = [
    "file_id",
    "element_id",
    "original_filename",
    "storage_filename",
    "storage_path",
    "extension",
    "file_size",
    "content_type",
    "checksum",
    "created_at",
    "updated_at",
    "created_by_id",
    "created_by_username",
    "created_by_fullname",
    "description",
    "version",
    "retention_policy",
    "ttl_expires_at",
    "tags",
    "metadata",
    "custom_attributes",
    "language",
    "search_extra",
]


async def fresh_database(server_url: str) -> str:
    name = f"artstore_bench_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(maintenance_dsn(server_url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return with_database(server_url, name)


async def drop_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(maintenance_dsn(url))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


# --- projection -------------------------------------------------------------------------------


async def publish_facts(settings: Settings, corpus: Corpus, count: int) -> None:
    names = settings.topic_names()
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, acks="all", linger_ms=10
    )
    await producer.start()
    try:
        futures = []
        for record in corpus.records(0, count, seed=99):
            out = encode(
                new_event(FileStored(file=record), source="bench"),
                names,
                max_bytes=settings.max_message_bytes,
            )
            futures.append(
                await producer.send(
                    out.topic,
                    value=out.value,
                    key=out.key,
                    headers=[(k, v.encode()) for k, v in out.headers.items()],
                )
            )
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def _assigned_consumer(settings: Settings, topic: str) -> AIOKafkaConsumer:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        enable_auto_commit=False,
        max_poll_records=2000,
        fetch_max_bytes=64 * 1024 * 1024,
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    await consumer.start()
    partitions = await topic_partitions(settings.kafka_bootstrap, [topic])
    consumer.assign(partitions)
    await consumer.seek_to_beginning(*partitions)
    return consumer


async def raw_consume_rate(settings: Settings, count: int) -> float:
    """Baseline: records/s fetched and decoded (no database)."""
    consumer = await _assigned_consumer(settings, settings.topic_names().name(Topic.FILES))
    try:
        seen = 0
        started = time.perf_counter()
        while seen < count:
            fetched = await consumer.getmany(timeout_ms=500, max_records=2000)
            for batch in fetched.values():
                for record in batch:
                    project(decode_record(record, max_bytes=settings.max_message_bytes))
                seen += len(batch)
        return seen / (time.perf_counter() - started)
    finally:
        await consumer.stop()


async def projection_rate(settings: Settings, count: int, batch_size: int) -> float:
    """Facts/s through the projector's own loop into the live tables."""
    store = await ProjectionStore.connect(settings.database_url, application_name="bench")
    consumer = await _assigned_consumer(settings, settings.topic_names().name(Topic.FILES))
    stop = asyncio.Event()
    applied = 0

    async def count_applied(result: ApplyResult) -> None:
        nonlocal applied
        applied += result.applied
        if applied >= count:
            stop.set()

    projection = Projection(
        store,
        settings.topic_names(),
        CountingSink(),
        max_message_bytes=settings.max_message_bytes,
        after_batch=count_applied,
    )
    try:
        started = time.perf_counter()
        await consume(
            consumer,
            projection,
            stop,
            batch_size=batch_size,
            poll_timeout_ms=200,
            commit_to_group=False,
        )
        return applied / (time.perf_counter() - started)
    finally:
        await consumer.stop()
        await store.close()


async def copy_rate(database_url: str, corpus: Corpus, count: int) -> float:
    """Baseline: rows/s COPYed into a copy of ``files`` (same generated column and indexes)."""
    rows = [copy_row(r) for r in corpus.records(0, count, seed=99)]
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await conn.execute("CREATE TABLE files_copy_baseline (LIKE files INCLUDING ALL)")
        started = time.perf_counter()
        async with conn.transaction():
            await conn.copy_records_to_table(
                "files_copy_baseline", records=rows, columns=COPY_COLUMNS
            )
        return count / (time.perf_counter() - started)
    finally:
        await conn.execute("DROP TABLE IF EXISTS files_copy_baseline")
        await conn.close()


# --- search -----------------------------------------------------------------------------------

_INDEXES = {
    "files_search_vector": "CREATE INDEX files_search_vector ON files USING gin (search_vector)",
    "files_custom_attributes": (
        "CREATE INDEX files_custom_attributes ON files USING gin (custom_attributes jsonb_path_ops)"
    ),
    "files_tags": "CREATE INDEX files_tags ON files USING gin (tags)",
    "files_filename_trgm": (
        "CREATE INDEX files_filename_trgm ON files USING gin "
        "(lower(original_filename) public.gin_trgm_ops)"
    ),
    "files_created": "CREATE INDEX files_created ON files (created_at, file_id)",
    "files_size": "CREATE INDEX files_size ON files (file_size, file_id)",
    "files_filename": "CREATE INDEX files_filename ON files (original_filename, file_id)",
    "files_element": "CREATE INDEX files_element ON files (element_id)",
    "files_username": "CREATE INDEX files_username ON files (created_by_username)",
    "files_extension": "CREATE INDEX files_extension ON files (extension)",
}


async def bulk_load(database_url: str, corpus: Corpus, count: int) -> tuple[float, float]:
    """COPY ``count`` rows with the indexes dropped, then rebuild them; (load s, index s)."""
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        for name in _INDEXES:
            await conn.execute(f"DROP INDEX {name}")
        started = time.perf_counter()
        chunk = 50_000
        for start in range(0, count, chunk):
            rows = [copy_row(r) for r in corpus.records(start, min(chunk, count - start))]
            await conn.copy_records_to_table("files", records=rows, columns=COPY_COLUMNS)
        loaded = time.perf_counter() - started
        await conn.execute("SET maintenance_work_mem = '512MB'")
        started = time.perf_counter()
        for sql in _INDEXES.values():
            await conn.execute(sql)
        await conn.execute("VACUUM ANALYZE files")
        return loaded, time.perf_counter() - started
    finally:
        await conn.close()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def bare_match_latencies(database_url: str, words: list[str]) -> list[float]:
    """Baseline: the same selective words as a bare ``@@`` match (no rank, sort or HTTP)."""
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        out = []
        for word in words:
            started = time.perf_counter()
            await conn.fetch(
                "SELECT file_id FROM files WHERE search_vector @@ "
                "websearch_to_tsquery('russian', $1) LIMIT 50",
                word,
            )
            out.append((time.perf_counter() - started) * 1000)
        return out
    finally:
        await conn.close()


async def search_latencies(
    settings: Settings, queries: dict[str, list[dict[str, str]]]
) -> dict[str, list[float]]:
    signer = TestSigner()
    facade = FacadeSettings(cache_ttl_s=0, staging="local")
    app = create_app(settings, facade, verifier=signer.verifier())
    headers = {
        "Authorization": f"Bearer {signer.issue(scopes={'files:read'}, ttl=timedelta(hours=2))}"
    }
    out: dict[str, list[float]] = {}
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://b") as http,
    ):
        for params in next(iter(queries.values()))[:3]:  # warm up
            await http.get("/api/v1/search", params=params, headers=headers)
        for name, variants in queries.items():
            timings = []
            for params in variants:
                started = time.perf_counter()
                response = await http.get("/api/v1/search", params=params, headers=headers)
                timings.append((time.perf_counter() - started) * 1000)
                if response.status_code != 200:
                    raise RuntimeError(f"{name} {params}: {response.status_code} {response.text}")
            out[name] = timings
    return out


def query_set(corpus: Corpus, repeats: int) -> dict[str, list[dict[str, str]]]:
    rng = random.Random(5)
    rare = [corpus.rare(rng.randrange(20_000)) for _ in range(repeats)]
    mid = rng.sample(corpus.vocab_en[200:1200], repeats)
    return {
        "selective: rare word, ranked": [{"q": w} for w in rare],
        "selective: rare word + extension + tag": [
            {"q": w, "extension": rng.choice(EXTENSIONS), "tag": rng.choice(TAGS)} for w in rare
        ],
        "selective: mid-frequency word, ranked": [{"q": w} for w in mid],
        "selective: two words and an exclusion": [
            {"q": f"{w} {COMMON_EN} -{m}"} for w, m in zip(rare, mid, strict=True)
        ],
        "broad: half the archive, ranked (capped)": [
            {"q": COMMON_EN if i % 2 else COMMON_RU} for i in range(repeats)
        ],
        "broad: half the archive, newest first": [
            {"q": COMMON_EN, "sort": "-created_at"} for _ in range(repeats)
        ],
        "filters only: tag, newest first": [
            {"tag": rng.choice(TAGS), "sort": "-created_at"} for _ in range(repeats)
        ],
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--facts", type=int, default=50_000, help="Facts for the projection run.")
    parser.add_argument(
        "--files", type=int, default=200_000, help="Rows for the search run (0: skip it)."
    )
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=60, help="Searches per query kind.")
    args = parser.parse_args()
    tune_garbage_collector()  # as the projector process does; baselines run tuned too

    env = ensure_stack()
    corpus = Corpus()
    results: list[BenchResult] = []

    # Projection throughput.
    url = await fresh_database(env.database_url)
    settings = load_settings(
        kafka_bootstrap=env.kafka_bootstrap,
        database_url=url,
        redis_url=env.redis_url,
        topic_prefix=f"bench{secrets.token_hex(4)}",
    )
    try:
        await migrate(url)
        await create_topics(settings.kafka_bootstrap, TopicNames(settings.topic_prefix))
        print(f"publishing {args.facts:,} FileStored facts (not timed)...", flush=True)
        await publish_facts(settings, corpus, args.facts)
        cpu = time.process_time()
        consume = await raw_consume_rate(settings, args.facts)
        consume_cpu_us = (time.process_time() - cpu) / args.facts * 1e6
        cpu = time.process_time()
        projected = await projection_rate(settings, args.facts, args.batch_size)
        projected_cpu_us = (time.process_time() - cpu) / args.facts * 1e6
        copied = await copy_rate(url, corpus, args.facts)
    finally:
        await drop_database(url)
    results += [
        BenchResult(
            "projection",
            "projection facts/s (decode + upsert + offsets)",
            projected,
            "facts/s",
            "raw COPY into files (same indexes)",
            copied,
            ">= 10,000 facts/s",
            projected >= 10_000,
        ),
        BenchResult(
            "projection",
            "projection facts/s vs raw consume + decode",
            projected,
            "facts/s",
            "consume + decode, no database",
            consume,
        ),
        # Less sensitive than rates to other work on the machine: the projector's own CPU.
        BenchResult(
            "projection",
            "projector process CPU per fact",
            projected_cpu_us,
            "us",
            "consume + decode CPU per record",
            consume_cpu_us,
        ),
    ]
    report(results[-3:])
    if args.files <= 0:
        return

    # Search latency at scale.
    url = await fresh_database(env.database_url)
    settings = load_settings(
        kafka_bootstrap=env.kafka_bootstrap,
        database_url=url,
        redis_url=env.redis_url,
        topic_prefix=f"bench{secrets.token_hex(4)}",
    )
    try:
        await migrate(url)
        print(f"bulk-loading {args.files:,} files with COPY...", flush=True)
        loaded_s, index_s = await bulk_load(url, corpus, args.files)
        print(
            f"generated and COPYed in {loaded_s:.0f}s ({args.files / loaded_s:,.0f} rows/s), "
            f"indexes built in {index_s:.0f}s",
            flush=True,
        )
        queries = query_set(corpus, args.repeats)
        baseline = await bare_match_latencies(
            url, [p["q"] for p in queries["selective: rare word, ranked"]]
        )
        timings = await search_latencies(settings, queries)
    finally:
        await drop_database(url)
    base_p50 = statistics.median(baseline)
    search_results = []
    for name, values in timings.items():
        selective = name.startswith("selective")
        p95 = percentile(values, 95)
        search_results += [
            BenchResult(
                "search",
                f"{name} p50 @ {args.files:,} files",
                statistics.median(values),
                "ms",
                "bare @@ match p50",
                base_p50,
            ),
            BenchResult(
                "search",
                f"{name} p95 @ {args.files:,} files",
                p95,
                "ms",
                "bare @@ match p95",
                percentile(baseline, 95),
                "<= 50 ms" if selective else None,
                (p95 <= 50) if selective else None,
            ),
        ]
    report(search_results)


if __name__ == "__main__":
    asyncio.run(main())
