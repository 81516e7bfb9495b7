"""doctor in source mode (SOURCE_DIRS): the recorder's checks give way to the source folders'.

A template that reads none of the files found is a failure (nothing would be uploaded); files it
cannot read are named, so a wrong template or time zone shows before the first night is lost.
"""
from __future__ import annotations

from pathlib import Path

from services.commands.checks import Check
from services.commands.sync_source import template_report
from services.common.config import EnvReader, read_common
from services.common.settings import SOURCE_DIRS
from services.uploader.source_config import read_sources

SHOWN = 5


def run_source_checks(env: EnvReader) -> list[Check]:
    own = EnvReader(env.values, env.source)
    common = read_common(own)
    settings = read_sources(own, common.data_dir)
    if own.issues:
        return [Check("fail", "source folders", str(issue), "edit the key in .env") for issue in own.issues]
    if settings is None:
        return []
    checks = []
    for folder in settings.folders:
        read, unread = template_report(_only(settings, folder.path))
        where = f"{folder.path} ({folder.template.text})"
        if not read and not unread:
            checks.append(Check("warn", "source folder", f"{where}: no files yet"))
        elif not read:
            checks.append(Check("fail", "source template", f"{where}: reads none of the {len(unread)} files "
                                f"found, e.g. {'; '.join(unread[:SHOWN])}",
                                f"fix the template after '=' in {SOURCE_DIRS.name}"))
        elif unread:
            checks.append(Check("warn", "source template", f"{where}: {read} files read, {len(unread)} not "
                                f"(skipped by the uploader): {'; '.join(unread[:SHOWN])}"))
        else:
            checks.append(Check("ok", "source template", f"{where}: reads all {read} files found"))
    checks.append(Check("ok", "source time zone", f"names read as {settings.zone.key} local time"))
    return checks


def _only(settings, path: Path):
    from dataclasses import replace

    return replace(settings, folders=tuple(f for f in settings.folders if f.path == path))
