"""Reading `.env` into validated, frozen settings.

Every problem is collected and reported at once, one line per key, and the daemon exits
with EX_CONFIG (78) so systemd's RestartPreventExitStatus stops a restart loop.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping, TypeVar

from dotenv import dotenv_values

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
    values.update(environ)
    return EnvReader(values, source=str(path) if path.is_file() else "environment")


@dataclass
class EnvReader:
    """Typed access to settings that records problems instead of raising on the first."""

    values: Mapping[str, str]
    source: str = ""
    issues: list[ConfigIssue] = field(default_factory=list)

    def error(self, key: str, problem: str) -> None:
        self.issues.append(ConfigIssue(key, problem))

    def raw(self, key: str) -> str | None:
        value = self.values.get(key)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def string(self, key: str, default: str = "") -> str:
        value = self.raw(key)
        return default if value is None else value

    def _number(self, key: str, default: T, parse: Callable[[str], T], kind: str,
                minimum: T | None, maximum: T | None) -> T:
        value = self.raw(key)
        if value is None:
            return default
        try:
            number = parse(value)
        except ValueError:
            self.error(key, f"must be {kind}, got {value!r}")
            return default
        if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
            self.error(key, f"must be between {minimum} and {maximum}, got {value}")
            return default
        return number

    def integer(self, key: str, default: int, minimum: int | None = None, maximum: int | None = None) -> int:
        return self._number(key, default, int, "a whole number", minimum, maximum)

    def decimal(self, key: str, default: float, minimum: float | None = None,
                maximum: float | None = None) -> float:
        return self._number(key, default, float, "a number", minimum, maximum)

    def choice(self, key: str, default: str, choices: Iterable[str]) -> str:
        allowed = list(choices)
        value = self.string(key, default)
        if value.lower() not in allowed:
            self.error(key, f"must be one of {', '.join(allowed)}, got {value!r}")
            return default
        return value.lower()

    def boolean(self, key: str, default: bool) -> bool:
        value = self.raw(key)
        if value is None:
            return default
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        self.error(key, f"must be true or false, got {value!r}")
        return default

    def executable(self, key: str, default: str) -> str:
        name = self.string(key, default)
        found = shutil.which(name)
        if not found:
            self.error(key, f"{name!r} not found (install it, e.g. 'apt-get install ffmpeg')")
            return name
        return found

    def check(self) -> None:
        """Raise ConfigError if anything was wrong."""
        if self.issues:
            raise ConfigError(self.issues, self.source)


LOG_LEVELS = ("trace", "debug", "info", "success", "warning", "error", "critical")


@dataclass(frozen=True)
class CommonConfig:
    data_dir: Path
    log_level: str


def read_common(env: EnvReader) -> CommonConfig:
    from services.common.data_layout import DataLayout

    data_dir = Path(env.string("DATA_DIR", "./data")).expanduser().resolve()
    log_level = env.choice("LOG_LEVEL", "info", LOG_LEVELS).upper()
    problem = DataLayout(data_dir).prepare()
    if problem:
        env.error("DATA_DIR", problem)
    return CommonConfig(data_dir=data_dir, log_level=log_level)
