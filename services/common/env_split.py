"""Split one `.env` into the recorder's file and the uploader's, by each key's `used_by`.

FFmpeg, run by the recorder, parses untrusted streams: the recorder's user must not be able to
read the bucket keys or the encryption password, so each daemon gets a file with only its keys.
Keys only the operator commands use (viewer, lifecycle, cost) go with the uploader's, which the
viewer reads. A key no setting declares goes to neither (it may be a misspelt secret); the
original file is kept as a backup by the install script.

Standard library only: the install script runs it before requirements are installed.
`python -m services.common.env_split SOURCE RECORDER_OUT UPLOADER_OUT` prints the dropped keys.
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

from services.common.settings import RECORDER, UPLOADER, find

_ASSIGNMENT = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=")
# `#KEY=value`: an assignment switched off, routed like the key (an old secret kept for later).
_COMMENTED = re.compile(r"^\s*#\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=")
HEADER = "# {role}'s settings, split from {source} by systemd/install-services.sh (only the keys it uses).\n"


@dataclass(frozen=True)
class EnvSplit:
    recorder: str
    uploader: str
    dropped: tuple[str, ...]   # keys no setting declares


def destinations(key: str) -> tuple[bool, bool]:
    """(recorder, uploader): which files `key` belongs in."""
    setting = find(key)
    if setting is None:
        return False, False
    return bool(setting.used_by & RECORDER), not setting.used_by & RECORDER or bool(setting.used_by & UPLOADER)


def split_env(text: str, source: str = ".env") -> EnvSplit:
    """Each assignment line (`#KEY=` ones too), with the comment lines just above it, goes where
    its key is used; lines after the last assignment go to both. Values are copied verbatim."""
    recorder, uploader, dropped = [HEADER.format(role="The recorder", source=source)], \
        [HEADER.format(role="The uploader", source=source)], []
    pending: list[str] = []
    for line in text.splitlines(keepends=True):
        found = _ASSIGNMENT.match(line)
        switched_off = None if found else _COMMENTED.match(line)
        if switched_off and find(switched_off.group(1)) is not None:
            to_recorder, to_uploader = destinations(switched_off.group(1))
        elif found is None:
            pending.append(line)
            continue
        else:
            to_recorder, to_uploader = destinations(found.group(1))
            if not (to_recorder or to_uploader):
                dropped.append(found.group(1))
        block = pending + [line if line.endswith("\n") else line + "\n"]
        pending = []
        if to_recorder:
            recorder += block
        if to_uploader:
            uploader += block
    return EnvSplit("".join(recorder + pending), "".join(uploader + pending), tuple(dict.fromkeys(dropped)))


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: python -m services.common.env_split SOURCE RECORDER_OUT UPLOADER_OUT", file=sys.stderr)
        return 2
    source, recorder_out, uploader_out = (Path(a) for a in argv)
    split = split_env(source.read_text(), source.name)
    # Written into files the caller made (mode 600, the right owner): opened without O_CREAT.
    for path, text in ((recorder_out, split.recorder), (uploader_out, split.uploader)):
        with open(path, "r+") as out:
            out.truncate()
            out.write(text)
    print(" ".join(split.dropped))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
