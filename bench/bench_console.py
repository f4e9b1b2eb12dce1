"""The operator's console with a million files indexed: each page's time against ``/health/live``.

``--files`` rows are bulk-loaded into a fresh projection (COPY, indexes built afterwards, as in
``bench_projection``), with an upload row per file and ``--audit`` audit entries. The facade
runs in process; a console session is opened for an admin token, then every page is loaded
``--repeats`` times. Baseline, same run and same client: ``GET /health/live`` (the app's floor).
Target: every page under 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx

from artstore.stack import ensure_stack
from auth.testing import TestSigner
from base.settings import load_settings
from bench.bench_projection import Corpus, bulk_load, drop_database, fresh_database
from bench.results import BenchResult, report
from consumers.migrate import migrate
from consumers.sql import asyncpg_dsn
from facade import FacadeSettings, create_app
from facade.console.sessions import COOKIE, SessionStore

ADMIN_SCOPES = {
    "files:read", "files:write", "files:delete", "metadata:write",
    "elements:admin", "accounts:admin", "audit:read", "dlq:admin",
}  # fmt: skip


async def load_console_tables(url: str, audit: int) -> str:
    """Uploads for every file (recent ones spread over the last hour), elements, audit entries;
    the id of one file."""
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await conn.execute(
            """INSERT INTO uploads (file_id, status, status_rank, status_at, element_id,
                   original_filename, file_size, retention_policy, requested_at, correlation_id)
               SELECT file_id, CASE WHEN random() < 0.02 THEN 'rejected' ELSE 'stored' END, 3,
                      now() - (row_number() OVER (ORDER BY created_at DESC)) * interval '50 ms',
                      element_id, original_filename, file_size, retention_policy, created_at,
                      file_id::text
               FROM files"""
        )
        await conn.execute(
            """INSERT INTO elements (element_id, mode, priority, capacity_bytes, used_bytes,
                   free_bytes, file_count, capacity_status, accepting_uploads, last_heartbeat_at)
               SELECT element_id, 'rw', row_number() OVER () - 1, 10::bigint ^ 13,
                      sum(file_size), 10::bigint ^ 13 - sum(file_size), count(*), 'ok', true, now()
               FROM files GROUP BY element_id"""
        )
        await conn.execute(
            """INSERT INTO audit_log (event_id, occurred_at, action, actor, subject, outcome,
                   details, source, correlation_id)
               SELECT 'ev' || i, now() - i * interval '1 s',
                      (ARRAY['token.issued','account.created','mode.changed'])[1 + i % 3],
                      'sa_bench_' || (i % 50), 'subject-' || (i % 1000),
                      CASE WHEN i % 17 = 0 THEN 'failure' ELSE 'success' END, '{}',
                      'bench', 'c' || i
               FROM generate_series(1, $1) AS i""",
            audit,
        )
        await conn.execute("VACUUM ANALYZE uploads, elements, audit_log")
        return str(await conn.fetchval("SELECT file_id FROM files LIMIT 1"))
    finally:
        await conn.close()


async def page_timings(
    url: str, kafka: str, redis_url: str, file_id: str, repeats: int
) -> dict[str, list[float]]:
    settings = load_settings(kafka_bootstrap=kafka, database_url=url, redis_url=redis_url)
    signer = TestSigner()
    facade = FacadeSettings(cache_ttl_s=0, staging="local", issuer=signer.issuer)
    app = create_app(settings, facade, verifier=signer.verifier())
    token = signer.issue(scopes=ADMIN_SCOPES, role="admin", ttl=timedelta(hours=2))
    pages = {
        "health (baseline)": "/health/live",
        "elements": "/console/elements",
        "ingest": "/console/ingest",
        "ingest, rejected only": "/console/ingest?status=rejected",
        "search, newest": "/console/search?sort=-created_at",
        "search, words": "/console/search?q=archive",
        "search, tag and size": "/console/search?tag=tagaa&size_min=1000000",
        "file": f"/console/files/{file_id}",
        "audit": "/console/audit",
        "audit, actor and outcome": "/console/audit?actor=sa_bench_7&outcome=failure",
        "pipeline": "/console/pipeline",
    }
    out: dict[str, list[float]] = {}
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://b") as http,
    ):
        runtime = app.state.runtime
        store = SessionStore(runtime.redis, f"{facade.cache_prefix}console:session:")
        session = await store.open(
            token=token,
            client_id="sa_bench_admin_00000000",
            role="admin",
            scopes=frozenset(ADMIN_SCOPES),
            expires_at=datetime.now(UTC) + timedelta(hours=1),
        )
        http.cookies.set(COOKIE, session.session_id)
        for path in pages.values():  # warm up
            await http.get(path)
        for name, path in pages.items():
            timings = []
            for _ in range(repeats):
                started = time.perf_counter()
                response = await http.get(path)
                timings.append(time.perf_counter() - started)
                if response.status_code != 200:
                    raise RuntimeError(f"{path}: {response.status_code} {response.text[:300]}")
            out[name] = timings
        # The next page of the ingest list: a keyset continues where the first page ended.
        first = await http.get("/console/ingest")
        cursor = first.text.split("cursor=", 1)[1].split('"', 1)[0].replace("&amp;", "&")
        timings = []
        for _ in range(repeats):
            started = time.perf_counter()
            response = await http.get(f"/console/ingest?cursor={cursor}")
            timings.append(time.perf_counter() - started)
            assert response.status_code == 200, response.text[:300]
        out["ingest, next page"] = timings
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=1_000_000)
    parser.add_argument("--audit", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    env = ensure_stack()
    url = await fresh_database(env.database_url)
    try:
        await migrate(url)
        print(f"bulk-loading {args.files:,} files...", flush=True)
        loaded, indexed = await bulk_load(url, Corpus(), args.files)
        file_id = await load_console_tables(url, args.audit)
        print(f"loaded in {loaded:.0f}s, indexed in {indexed:.0f}s", flush=True)
        timings = await page_timings(url, env.kafka_bootstrap, env.redis_url, file_id, args.repeats)
    finally:
        await drop_database(url)
    baseline = statistics.median(timings.pop("health (baseline)")) * 1000
    report(
        [
            BenchResult(
                "console",
                f"console page '{name}', {args.files:,} files (median)",
                statistics.median(values) * 1000,
                "ms",
                baseline="GET /health/live",
                baseline_value=baseline,
                target="< 1000 ms",
                meets_target=max(values) < 1.0,
            )
            for name, values in timings.items()
        ]
    )


if __name__ == "__main__":
    asyncio.run(main())
