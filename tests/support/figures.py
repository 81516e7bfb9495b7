"""Figures measured by drills, collected under data/drills/ for docs/reliability.md (`make drills`)."""
from __future__ import annotations

import json
import time

from tests.support.processes import REPO

FIGURES = REPO / "data" / "drills" / "figures.jsonl"


def record(drill: str, figure: str, value: float, unit: str = "s") -> None:
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    with open(FIGURES, "a") as handle:
        handle.write(json.dumps({"drill": drill, "figure": figure, "value": round(value, 2), "unit": unit,
                                 "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}) + "\n")


class Stopwatch:
    def __init__(self) -> None:
        self.start = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.start


def table() -> str:
    """The latest value of each figure, as a Markdown table."""
    latest: dict[tuple[str, str], dict] = {}
    if FIGURES.exists():
        for line in FIGURES.read_text().splitlines():
            row = json.loads(line)
            latest[(row["drill"], row["figure"])] = row
    lines = ["| drill | figure | value |", "| --- | --- | --- |"]
    lines += [f"| {d} | {f} | {r['value']} {r['unit']} |" for (d, f), r in sorted(latest.items())]
    return "\n".join(lines)


if __name__ == "__main__":
    print(table())
