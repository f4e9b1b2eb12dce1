"""Run every benchmark in bench/ and write the results table to docs/benchmarks.md.

Usage: ``python -m bench.run_all`` (``make bench``). Each ``bench/bench_*.py`` runs as its own
process with its default, machine-sized parameters; a benchmark that fails is listed as failed.
The benchmarks that go through Kafka run once per broker the machine can run (Apache Kafka where
``java`` and ``mvn`` are installed, and Tansu), so the table shows both side by side.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from artstore.stack import KafkaBroker, ensure_stack
from artstore.stack.apache_kafka import missing_tools
from artstore.stack.lifecycle import KAFKA_BROKER_VARIABLE, describe_kafka
from bench.results import BROKER_VARIABLE

REPO = Path(__file__).resolve().parent.parent
OUTPUT = REPO / "docs" / "benchmarks.md"
TIMEOUT_S = 1800
#: Benchmarks whose numbers depend on the broker: run on each one.
THROUGH_KAFKA = {"bench_ingest", "bench_projection", "bench_transactions"}


def machine() -> str:
    """A one-line description of this machine."""
    cpu = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = ""
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        kib = int(meminfo.read_text().split("MemTotal:")[1].split()[0])
        mem = f", {kib / 1024 / 1024:.0f} GiB RAM"
    return (
        f"{platform.system()} {platform.release()}, {cpu}, {os.cpu_count()} cores{mem}, "
        f"Python {platform.python_version()}"
    )


def brokers() -> list[KafkaBroker]:
    """Apache Kafka first where this machine can run it, then the embedded broker."""
    if missing_tools():
        print(f"Apache Kafka skipped ({' and '.join(missing_tools())} not on PATH)", flush=True)
        return [KafkaBroker.TANSU]
    return [KafkaBroker.APACHE, KafkaBroker.TANSU]


def run(
    name: str, results_file: Path, broker: KafkaBroker | None = None
) -> tuple[bool, float, str]:
    """Run one benchmark module; returns (ok, seconds, tail of its output)."""
    env = {**os.environ, "ARTSTORE_BENCH_RESULTS": str(results_file)}
    if broker is not None:
        ensure_stack(kafka_broker=broker)
        env.update({KAFKA_BROKER_VARIABLE: broker.value, BROKER_VARIABLE: describe_kafka()})
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", f"bench.{name}"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    elapsed = time.perf_counter() - started
    sys.stdout.write(proc.stdout)
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [""]
    return proc.returncode == 0, elapsed, tail[0]


def _fmt(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.0f}"


def table(rows: list[dict[str, Any]], failures: dict[str, str]) -> str:
    """The markdown results table."""
    lines = [
        "| benchmark | broker | measure | result | baseline (same run) | ratio | target | met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        baseline = ""
        if r.get("baseline_value") is not None:
            baseline = f"{r['baseline']}: {_fmt(r['baseline_value'])} {r['unit']}"
        met = {True: "yes", False: "**no**", None: ""}[r.get("meets_target")]
        lines.append(
            f"| {r['benchmark']} | {r.get('broker') or ''} | {r['measure']} | "
            f"{_fmt(r['value'])} {r['unit']} | "
            f"{baseline} | {_fmt(r.get('ratio'))} | {r.get('target') or ''} | {met} |"
        )
    for name, why in failures.items():
        lines.append(f"| {name} | | **failed** | {why} | | | | |")
    return "\n".join(lines)


def main() -> int:
    names = sorted(p.stem for p in (REPO / "bench").glob("bench_*.py"))
    failures: dict[str, str] = {}
    durations: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        results_file = Path(tmp) / "results.jsonl"
        results_file.touch()
        runs: list[tuple[str, KafkaBroker | None]] = [
            (name, broker)
            for name in names
            for broker in (brokers() if name in THROUGH_KAFKA else [None])
        ]
        for name, broker in runs:
            label = f"{name} on {broker.value}" if broker is not None else name
            print(f"== {label}", flush=True)
            try:
                ok, seconds, tail = run(name, results_file, broker)
            except subprocess.TimeoutExpired:
                ok, seconds, tail = False, float(TIMEOUT_S), f"timed out after {TIMEOUT_S}s"
            durations[label] = seconds
            if not ok:
                failures[label] = tail.replace("|", "/")
        rows = [json.loads(line) for line in results_file.read_text().splitlines() if line]
    body = [
        "# Benchmarks",
        "",
        f"Written by `make bench` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.",
        "",
        f"Machine: {machine()}.",
        "",
        "Each result is measured against a baseline in the same run, so the ratio holds across",
        "machines better than the absolute numbers do. Timings are never asserted in tests.",
        "",
        table(rows, failures),
        "",
        "Run times: " + ", ".join(f"{n} {s:.0f} s" for n, s in durations.items()) + ".",
        "",
    ]
    OUTPUT.write_text("\n".join(body), encoding="utf-8")
    print(f"wrote {OUTPUT}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
