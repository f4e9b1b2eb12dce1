"""Sum the trial reports a ``make soak`` run wrote (one JSON line per trial) into a table."""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

COLUMNS = (
    "trials",
    "uploads",
    "kills",
    "broker_restarts",
    "database_restarts",
    "lost",
    "duplicated",
    "duplicate_facts",
    "absent_offsets",
)


def summarise(path: Path) -> str:
    totals: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(COLUMNS, 0))
    for line in path.read_text().splitlines():
        report = json.loads(line)
        for key in ("scenario", "all"):
            row = totals[report["scenario"] if key == "scenario" else "all"]
            row["trials"] += 1
            for column in COLUMNS[1:]:
                row[column] += int(report.get(column, 0))
    lines = [
        "| scenario | " + " | ".join(c.replace("_", " ") for c in COLUMNS) + " |",
        "|---" * (len(COLUMNS) + 1) + "|",
    ]
    for name in sorted(totals, key=lambda n: (n == "all", n)):
        lines.append(f"| {name} | " + " | ".join(str(totals[name][c]) for c in COLUMNS) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(summarise(Path(sys.argv[1])))
