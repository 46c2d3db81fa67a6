"""``archsim arch list|show|check``: inspect and validate architecture specs."""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add the ``arch`` command group to the top-level ``archsim`` parser."""
    arch = subparsers.add_parser("arch", help="list, show and check architecture specs")
    sub = arch.add_subparsers(dest="arch_command", metavar="ACTION")
    arch.set_defaults(func=lambda args: _help(arch))

    p_list = sub.add_parser("list", help="list the architecture presets")
    p_list.set_defaults(func=_cmd_list)

    p_show = sub.add_parser("show", help="summarize a preset or a spec file")
    p_show.add_argument("arch", metavar="NAME|FILE", help="preset name or YAML file")
    p_show.add_argument(
        "--json", action="store_true", help="print the full spec (derived values included) as JSON"
    )
    p_show.set_defaults(func=_cmd_show)

    p_check = sub.add_parser("check", help="validate a spec file (exit 2 on error)")
    p_check.add_argument("file", metavar="FILE|NAME", help="YAML spec file (or a preset name)")
    p_check.set_defaults(func=_cmd_check)


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from archsim.spec import list_presets, load_arch

    names = list_presets()
    width = max((len(n) for n in names), default=0)
    for name in names:
        arch = load_arch(name)
        first = arch.description.splitlines()[0] if arch.description else ""
        print(f"{name:<{width}}  {arch.kind:<7}  {first}")  # noqa: T201 - CLI output
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    from archsim.spec import load_arch

    arch = load_arch(args.arch)
    if args.json:
        print(json.dumps(arch.to_dict(derived=True), indent=2))  # noqa: T201 - CLI output
    else:
        print(arch.summary())  # noqa: T201 - CLI output
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    from archsim.spec import load_arch

    arch = load_arch(args.file)  # ArchSpecError -> "error: ..." and exit 2 in archsim.cli
    print(f"ok: {args.file} is a valid {arch.kind} architecture {arch.name!r}")  # noqa: T201
    print(arch.summary())  # noqa: T201 - CLI output
    return 0
