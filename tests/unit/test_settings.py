"""The settings registry: one declaration per `.env` key, and the README's tables agree with it."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from services.common.config import EnvReader
from services.common.settings import (ALL, CAMERA_NAME, LOG_LEVEL, MIN_FREE_DISK_MB, S3_SSE, SEGMENT_DURATION,
                                      Kind, find)

REPO = Path(__file__).resolve().parents[2]
TICKED = re.compile(r"`([^`]*)`")


def readme_rows() -> list[tuple[list[str], str]]:
    """(keys, default cell) of every row of the README's `| key | default | meaning |` tables."""
    rows, in_table = [], False
    for line in (REPO / "README.md").read_text().splitlines():
        if line.startswith("| key | default |"):
            in_table = True
        elif not line.startswith("|"):
            in_table = False
        elif in_table and not line.startswith("| ---"):
            keys, default = [cell.strip() for cell in line.strip("|").split(" | ")][:2]
            rows.append((TICKED.findall(keys), default))
    return rows


def documented_value(part: str) -> str:
    """`600` -> 600, `0` (off) -> 0, (none) -> "", prose stays prose."""
    if re.fullmatch(r"`[^`]*`( \([^)]*\))?", part):
        return TICKED.match(part)[1]
    if re.fullmatch(r"\([^)]*\)", part):
        return ""
    return part


def readme_defaults() -> dict[str, str]:
    """README key (or pattern) -> its documented default."""
    found = {}
    for keys, cell in readme_rows():
        parts = cell.split(", ") if len(keys) > 1 and ", " in cell else [cell] * len(keys)
        assert len(parts) == len(keys), f"{keys}: one default per key, or one for all ({cell!r})"
        found.update({key: documented_value(part) for key, part in zip(keys, parts)})
    return found


def _readme_matches(readme_key: str, name: str) -> bool:
    """A README pattern such as COST_PRICE_<CLASS>_GB_MONTH covers every class's key."""
    if readme_key == name:
        return True
    if "<" not in readme_key:
        return False
    pieces = re.split(r"<[A-Z]+>", readme_key)
    return re.fullmatch("[A-Z0-9_]+".join(re.escape(p) for p in pieces), name) is not None


def _same(setting, documented: str) -> bool:
    expected = setting.documented_default
    if setting.kind is Kind.CHOICE:   # choices are case-insensitive: `INFO` is the default info
        return documented.lower() == expected.lower()
    return documented == expected


def test_every_setting_is_in_the_readme_with_its_default():
    documented = readme_defaults()
    wrong = {}
    for setting in ALL:
        keys = [key for key in documented if _readme_matches(key, setting.name)]
        if not keys:
            wrong[setting.name] = "not in the README"
        elif not _same(setting, documented[keys[0]]):
            wrong[setting.name] = f"README says {documented[keys[0]]!r}, the code {setting.documented_default!r}"
    assert wrong == {}


def test_the_readme_documents_no_unknown_key():
    unknown = [key for key in readme_defaults() if not any(_readme_matches(key, s.name) for s in ALL)]
    assert unknown == []


def test_env_example_names_only_declared_keys():
    keys = re.findall(r"^#?([A-Z][A-Z0-9_]+)=", (REPO / ".env.example").read_text(), re.MULTILINE)
    assert keys and [key for key in keys if find(key) is None] == []


def test_each_key_is_declared_once():
    names = [s.name for s in ALL]
    assert len(names) == len(set(names))


def test_get_reads_a_declaration():
    env = EnvReader({"SEGMENT_DURATION": " 60 ", "LOG_LEVEL": "DEBUG"})
    assert (env.get(SEGMENT_DURATION), env.get(LOG_LEVEL), env.get(MIN_FREE_DISK_MB)) == (60, "debug", 2048)
    assert env.get(S3_SSE.with_default("none")) == "none" and env.issues == []


@pytest.mark.parametrize("value, problem", [
    ("1", "SEGMENT_DURATION: must be between 2 and 3600, got 1"),
    ("ten", "SEGMENT_DURATION: must be a whole number, got 'ten'"),
])
def test_a_bad_value_is_recorded_and_the_default_used(value, problem):
    env = EnvReader({"SEGMENT_DURATION": value})
    assert env.get(SEGMENT_DURATION) == 600
    assert [str(issue) for issue in env.issues] == [problem]


def test_patterns_name_one_camera():
    assert CAMERA_NAME.matches("CAMERA_12_NAME") and not CAMERA_NAME.matches("CAMERA_12_URL")
    assert (CAMERA_NAME.at(3).name, CAMERA_NAME.at(3).default) == ("CAMERA_3_NAME", "camera_3")
    assert find("CAMERA_7_AUDIO").name == "CAMERA_<N>_AUDIO" and find("NO_SUCH_KEY") is None
    with pytest.raises(ValueError):
        EnvReader({}).get(CAMERA_NAME)
