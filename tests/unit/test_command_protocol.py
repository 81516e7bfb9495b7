"""Every operator command is one module with the same five names; the dispatcher only dispatches."""
from __future__ import annotations

import subprocess
import sys

import pytest

from services.__main__ import COMMANDS, build_parser, command_module


@pytest.mark.parametrize("name", COMMANDS)
def test_each_command_module_speaks_the_protocol(name):
    module = command_module(name)
    assert module.NAME == name and module.HELP
    assert all(callable(getattr(module, f)) for f in ("add_arguments", "read_settings", "run"))


def test_the_full_parser_lists_every_command():
    text = build_parser().format_help()
    assert all(command_module(name).HELP.split()[0] in text for name in COMMANDS)


def test_status_imports_neither_boto3_nor_another_command():
    code = ("import sys; from services.__main__ import build_parser; build_parser('status'); "
            "print(sorted(m for m in sys.modules if m.startswith(('boto', 'services.commands.'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['services.commands.status']"
