"""How a benchmark reports: one line per result, each next to its same-run baseline and target.

When ``ARTSTORE_BENCH_RESULTS`` names a file, every result is also appended to it as a JSON line;
``bench/run_all.py`` collects those into ``docs/benchmarks.md``.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass

#: Set by ``bench/run_all.py`` to the broker a benchmark runs on (e.g. "Apache Kafka 4.1.1 ...").
BROKER_VARIABLE = "ARTSTORE_BENCH_BROKER"


@dataclass(frozen=True)
class BenchResult:
    """One measured number, the baseline it is compared with, and what we aim for."""

    benchmark: str
    measure: str
    value: float
    unit: str
    baseline: str | None = None
    baseline_value: float | None = None
    target: str | None = None
    meets_target: bool | None = None

    @property
    def ratio(self) -> float | None:
        """value / baseline_value, when there is a baseline."""
        if self.baseline_value in (None, 0):
            return None
        return self.value / self.baseline_value


def report(results: list[BenchResult]) -> None:
    """Print the results and append them to the collector file, if one is set."""
    for r in results:
        line = f"{r.measure:<48} {r.value:>12,.2f} {r.unit}"
        if r.baseline_value is not None and r.ratio is not None:
            line += f"   baseline {r.baseline}: {r.baseline_value:,.2f} -> ratio {r.ratio:.3f}"
        if r.target:
            verdict = {True: "met", False: "NOT met", None: ""}[r.meets_target]
            line += f"   target {r.target} {verdict}".rstrip()
        print(line)
    path = os.environ.get("ARTSTORE_BENCH_RESULTS")
    broker = os.environ.get(BROKER_VARIABLE, "").split(" at ")[0] or None
    if path:
        with open(path, "a", encoding="utf-8") as out:
            for r in results:
                out.write(json.dumps({**asdict(r), "ratio": r.ratio, "broker": broker}) + "\n")
