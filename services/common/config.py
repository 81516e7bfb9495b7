"""Reading `.env` into validated, frozen settings.

Every problem is collected and reported at once, one line per key, and the daemon exits
with EX_CONFIG (78) so systemd's RestartPreventExitStatus stops a restart loop.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, TypeVar

from dotenv import dotenv_values

from services.common.settings import DATA_DIR, LOG_LEVEL, Kind, Setting, find, nearest

EX_CONFIG = 78
T = TypeVar("T")


@dataclass(frozen=True)
class ConfigIssue:
    key: str
    problem: str

    def __str__(self) -> str:
        return f"{self.key}: {self.problem}"


class ConfigError(Exception):
    """One or more configuration problems; str() is one line per problem."""

    def __init__(self, issues: Iterable[ConfigIssue], source: str = ""):
        self.issues = list(issues)
        self.source = source
        super().__init__("\n".join(self.lines()))

    def lines(self) -> list[str]:
        where = f" ({self.source})" if self.source else ""
        return [f"config error{where}: {issue}" for issue in self.issues]


def resolve_env_file(cli_value: str | None, environ: Mapping[str, str] = os.environ) -> tuple[Path, bool]:
    """`--env-file`, else `ENV_FILE`, else `./.env`; the flag says whether it was asked for."""
    if cli_value:
        return Path(cli_value), True
    if environ.get("ENV_FILE"):
        return Path(environ["ENV_FILE"]), True
    return Path(".env"), False


def load_env(cli_value: str | None = None, environ: Mapping[str, str] | None = None) -> "EnvReader":
    """Merge the env file with the real environment (the real environment wins)."""
    environ = dict(os.environ if environ is None else environ)
    path, explicit = resolve_env_file(cli_value, environ)
    values: dict[str, str] = {}
    if path.is_file():
        try:
            values = {k: v for k, v in dotenv_values(path).items() if v is not None}
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError([ConfigIssue("ENV_FILE", f"cannot read {path}: {exc.__class__.__name__}")])
    elif explicit:
        raise ConfigError([ConfigIssue("ENV_FILE", f"{path} does not exist")])
    file_keys = tuple(values)
    values.update(environ)
    file = path if path.is_file() else None
    return EnvReader(values, source=str(file or "environment"), file=file, file_keys=file_keys)


@dataclass
class EnvReader:
    """Typed access to settings that records problems instead of raising on the first."""

    values: Mapping[str, str]
    source: str = ""
    issues: list[ConfigIssue] = field(default_factory=list)
    file: Path | None = None   # the env file read, if there was one (doctor checks its mode)
    file_keys: tuple[str, ...] = ()   # the keys that file sets (the environment's own are not ours to judge)

    def unknown_keys(self) -> tuple[str, ...]:
        """Keys of the env file no setting declares: a typo there would otherwise go unnoticed."""
        return tuple(key for key in self.file_keys if find(key) is None)

    def error(self, key: str, problem: str) -> None:
        self.issues.append(ConfigIssue(key, problem))

    def raw(self, key: str) -> str | None:
        """The stripped value of any key (pattern keys included); None when unset or blank."""
        value = self.values.get(key)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def get(self, setting: Setting[T]) -> T:
        """`setting`'s value, checked against its declaration; a problem is recorded and the
        default returned, so every key is checked before `check()` reports them all."""
        if setting.is_pattern:
            raise ValueError(f"{setting.name} is a pattern: read one key of it with .at(n)")
        key, value = setting.name, self.raw(setting.name)
        if setting.kind is Kind.EXECUTABLE:
            return self._executable(setting, setting.default if value is None else value)
        if value is None:
            return setting.default
        if setting.kind is Kind.TEXT:
            return value  # type: ignore[return-value]
        if setting.kind is Kind.CHOICE:
            if value.lower() not in setting.choices:
                self.error(key, f"must be one of {', '.join(setting.choices)}, got {value!r}")
                return setting.default
            return value.lower()  # type: ignore[return-value]
        if setting.kind is Kind.BOOLEAN:
            if value.lower() in ("1", "true", "yes", "on"):
                return True  # type: ignore[return-value]
            if value.lower() in ("0", "false", "no", "off"):
                return False  # type: ignore[return-value]
            self.error(key, f"must be true or false, got {value!r}")
            return setting.default
        return self._number(setting, value)

    def _number(self, setting: Setting[T], value: str) -> T:
        parse = int if setting.kind is Kind.INTEGER else float
        try:
            number = parse(value)
        except ValueError:
            self.error(setting.name, f"must be {setting.kind.value}, got {value!r}")
            return setting.default
        low, high = setting.minimum, setting.maximum
        if (low is not None and number < low) or (high is not None and number > high):
            self.error(setting.name, f"must be between {low} and {high}, got {value}")
            return setting.default
        return number  # type: ignore[return-value]

    def _executable(self, setting: Setting[T], name: str) -> T:
        found = shutil.which(name)
        if not found:
            self.error(setting.name, f"{name!r} not found (install it, e.g. 'apt-get install ffmpeg')")
            return name  # type: ignore[return-value]
        return found  # type: ignore[return-value]

    def check(self) -> None:
        """Raise ConfigError if anything was wrong."""
        if self.issues:
            raise ConfigError(self.issues, self.source)


def unknown_key_line(key: str) -> str:
    """What a daemon warns and doctor fails with for a key no setting declares."""
    guess = nearest(key)
    return f"unknown key {key}" + (f" (did you mean {guess}?)" if guess else "") + ": it is ignored"


@dataclass(frozen=True)
class CommonConfig:
    data_dir: Path
    log_level: str
    unknown_keys: tuple[str, ...] = ()   # warned about at daemon start (unknown_key_line)


def read_common(env: EnvReader) -> CommonConfig:
    """DATA_DIR is checked, not created: read-only commands leave no folders behind (the daemons
    create them in `run_daemon`)."""
    from services.common.data_layout import DataLayout

    data_dir = Path(env.get(DATA_DIR)).expanduser().resolve()
    log_level = env.get(LOG_LEVEL).upper()
    problem = DataLayout(data_dir).problem(writable=False)
    if problem:
        env.error(DATA_DIR.name, problem)
    return CommonConfig(data_dir=data_dir, log_level=log_level, unknown_keys=env.unknown_keys())
