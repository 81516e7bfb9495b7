"""Operator commands: `python -m services <command> [--env-file F]`.

Exit codes: 0 all well, 1 a problem was found (one line says which), 2 bad arguments, 78 bad
configuration; each command's --help lists its own. Each command is a module of
services/commands/ with NAME, HELP, EXIT_CODES, add_arguments(parser), read_settings(env) and
run(args, settings). Only the chosen command's module is imported (all of them only to list
every command in --help), so `status` works on a host without boto3 credentials and a broken
optional piece never stops the others.
"""
from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
from pathlib import Path
from types import ModuleType

from services import __version__
from services.common.config import EX_CONFIG
from services.common.startup import add_env_file_argument, load_config_or_exit

COMMANDS = ("status", "doctor", "sync", "coverage", "clip", "lifecycle", "cost", "decrypt", "iam-policy", "web")
EX_PIPE = 128 + signal.SIGPIPE   # what a shell reports for a program its reader left early
SHARED_EXIT_CODES = {2: "bad arguments", EX_CONFIG: "bad configuration (one line per key)",
                     EX_PIPE: "the output was closed early (e.g. `| head`); quietly"}


def command_module(name: str) -> ModuleType:
    return importlib.import_module(f"services.commands.{name.replace('-', '_')}")


def exit_codes_epilog(codes: dict[int, str]) -> str:
    """The `exit codes:` block of a command's --help: its own codes, then the shared ones."""
    merged = {**SHARED_EXIT_CODES, **codes}
    return "exit codes:\n" + "\n".join(f"  {code:<4} {merged[code]}" for code in sorted(merged))


def program_name() -> str:
    """`python -m services`, or the installed command's name (`camera-recorder`)."""
    name = Path(sys.argv[0]).name
    return "python -m services" if name in ("__main__.py", "") else name


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or of `only` (then no other command module is imported)."""
    parser = argparse.ArgumentParser(prog=program_name(), description=__doc__.splitlines()[0],
                                     epilog=exit_codes_epilog({0: "all well", 1: "a problem was found"}),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    for name in (only,) if only else COMMANDS:
        module = command_module(name)
        sub = commands.add_parser(module.NAME, help=module.HELP, description=module.HELP,
                                  epilog=exit_codes_epilog(getattr(module, "EXIT_CODES", {0: "done"})),
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
        add_env_file_argument(sub)
        module.add_arguments(sub)
    return parser


def dispatch(argv: list[str]) -> int:
    args = build_parser(argv[0] if argv and argv[0] in COMMANDS else None).parse_args(argv)
    command = command_module(args.command)
    return command.run(args, load_config_or_exit(args.env_file, command.read_settings))


def main(argv: list[str] | None = None) -> int:
    """Dispatch; a reader that leaves early (`doctor | head -1`) ends the command quietly.

    BrokenPipeError is caught rather than SIGPIPE restored to its default, which would also
    kill `sync`'s in-process uploader on a closed S3 socket."""
    try:
        code = dispatch(sys.argv[1:] if argv is None else argv)
        sys.stdout.flush()   # inside the try: buffered output meets the closed pipe here
        return code
    except BrokenPipeError:
        # The interpreter flushes stdout again at exit: point it at /dev/null so that is quiet too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EX_PIPE


if __name__ == "__main__":
    sys.exit(main())
