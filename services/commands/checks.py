"""A doctor check's result, and the summary that decides doctor's exit code."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from services.common.redact import redact


@dataclass(frozen=True)
class Check:
    level: str  # ok | warn | fail
    name: str
    detail: str
    hint: str = ""

    def line(self) -> str:
        hint = f"\n       fix: {self.hint}" if self.hint and self.level != "ok" else ""
        return f"{self.level:<4}  {self.name}: {redact(self.detail)}{hint}"

    def as_dict(self) -> dict[str, str]:
        return {"level": self.level, "name": self.name, "detail": redact(self.detail), "hint": redact(self.hint)}


def summary(checks: Iterable[Check]) -> tuple[str, int]:
    checks = list(checks)
    fails = sum(c.level == "fail" for c in checks)
    warns = sum(c.level == "warn" for c in checks)
    text = "\n".join(c.line() for c in checks) + f"\n\n{fails} failed, {warns} warnings, {len(checks) - fails - warns} ok"
    return text, 1 if fails else 0


def summary_data(checks: Iterable[Check]) -> dict:
    """`doctor --json`: every check and the counts (the exit code follows `failed`)."""
    checks = list(checks)
    count = lambda level: sum(c.level == level for c in checks)  # noqa: E731
    return {"checks": [c.as_dict() for c in checks], "failed": count("fail"), "warnings": count("warn"),
            "ok": count("ok")}
