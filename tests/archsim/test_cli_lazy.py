"""The ``archsim`` CLI imports only the module of the command it runs."""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys

import pytest

from archsim.cli import COMMANDS, build_parser, main


def test_the_command_table_is_what_the_modules_register() -> None:
    for module_name, listed in COMMANDS.items():
        parser = argparse.ArgumentParser()
        sub = parser.add_subparsers()
        importlib.import_module(module_name).register(sub)
        got = tuple((a.dest, a.help) for a in sub._choices_actions)
        assert got == listed, (
            f"{module_name} registers {got}: copy its commands and help lines into "
            "archsim.cli.COMMANDS (archsim --help lists them without importing the module)"
        )


def test_help_lists_every_command_without_importing_them(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for cmds in COMMANDS.values():
        for name, _help in cmds:
            assert name in out


def test_a_command_gets_its_real_parser() -> None:
    args = build_parser(["arch", "list"]).parse_args(["arch", "list"])
    assert args.command == "arch"
    assert callable(args.func)


def test_help_and_arch_commands_leave_heavy_packages_unimported() -> None:
    code = (
        "import sys\n"
        "from archsim.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = [m for m in ('pandas', 'mappings', 'dse', 'validation', 'workloads', 'simpy',"
        " 'scipy', 'matplotlib') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip().splitlines()[-1] == "[]"
