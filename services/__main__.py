"""Operator commands: `python -m services <command> [--env-file F]`.

Exit codes: 0 all well, 1 a problem was found (one line says which), 78 bad configuration.
Each command is a module of services/commands/ with NAME, HELP, add_arguments(parser),
read_settings(env) and run(args, settings). Only the chosen command's module is imported
(all of them only to list every command in --help), so `status` works on a host without
boto3 credentials and a broken optional piece never stops the others.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from types import ModuleType

from services.common.startup import add_env_file_argument, load_config_or_exit

COMMANDS = ("status", "doctor", "sync", "coverage", "clip", "lifecycle", "cost", "decrypt", "iam-policy")


def command_module(name: str) -> ModuleType:
    return importlib.import_module(f"services.commands.{name.replace('-', '_')}")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or of `only` (then no other command module is imported)."""
    parser = argparse.ArgumentParser(prog="python -m services", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name in (only,) if only else COMMANDS:
        module = command_module(name)
        sub = commands.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        add_env_file_argument(sub)
        module.add_arguments(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv[0] if argv and argv[0] in COMMANDS else None).parse_args(argv)
    command = command_module(args.command)
    return command.run(args, load_config_or_exit(args.env_file, command.read_settings))


if __name__ == "__main__":
    sys.exit(main())
