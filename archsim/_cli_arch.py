"""``archsim arch list|show|check``: inspect and validate architecture specs."""

from __future__ import annotations

import argparse
import json
from typing import Any

from archsim.cli._help import examples

__all__ = ["register"]

#: nodes ``arch show --node`` accepts (those with a supply voltage in archsim.energy.NODE_VDD)
_NODES = (45, 28, 16, 7, 5)


def register(subparsers: Any) -> None:
    """Add the ``arch`` command group to the top-level ``archsim`` parser."""
    arch = subparsers.add_parser(
        "arch",
        help="list, show and check architecture specs",
        epilog=examples(
            "archsim arch list",
            "archsim arch show h100",
            "archsim arch show fusemax --node 5",
            "archsim arch check archsim/presets/tpu_like.yaml",
        ),
    )
    sub = arch.add_subparsers(dest="arch_command", metavar="ACTION")
    arch.set_defaults(func=lambda args: _help(arch))

    p_list = sub.add_parser(
        "list",
        help="list the architecture presets",
        description="One line per preset: name, kind, technology node, area, description.",
        epilog=examples("archsim arch list"),
    )
    p_list.set_defaults(func=_cmd_list)

    p_show = sub.add_parser(
        "show",
        help="summarize a preset or a spec file",
        description="Summarize an architecture: clock, technology node, levels, compute units "
        "(peaks and pJ per op), networks, area and static power. With --node, the energy and "
        "area tables are first scaled to that node (archsim.energy.scale_architecture: "
        "energy x (node/from) x (Vdd ratio)^2, area x (node/from)^2; DRAM and leakage kept), "
        "so presets of different nodes can be compared on one basis.",
        epilog=examples(
            "archsim arch show h100",
            "archsim arch show fusemax --node 5",
            "archsim arch show tpu_like --node 7 --json",
            "archsim arch show archsim/presets/flat.yaml",
        ),
    )
    p_show.add_argument("arch", metavar="NAME|FILE", help="preset name or YAML file")
    p_show.add_argument(
        "--json", action="store_true", help="print the full spec (derived values included) as JSON"
    )
    p_show.add_argument(
        "--node",
        type=int,
        choices=_NODES,
        metavar="NM",
        help="scale energy and area to this process node first (one of "
        + ", ".join(str(n) for n in _NODES)
        + " nm)",
    )
    p_show.set_defaults(func=_cmd_show)

    p_check = sub.add_parser(
        "check",
        help="validate a spec file (exit 2 on error)",
        description="Validate an architecture YAML file (base: inheritance resolved, strict "
        "YAML, physical bounds on every number); print 'ok' and a summary, or 'error: <field "
        "path>: ...' and exit 2.",
        epilog=examples(
            "archsim arch check archsim/presets/hbm_pim.yaml",
            "archsim arch check h100",
        ),
    )
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
        node = f"{arch.technology.node_nm:g} nm" if arch.technology else "? nm"
        area = f"{arch.area_mm2:.4g} mm^2"
        print(f"{name:<{width}}  {arch.kind:<7}  {node:>5}  {area:>12}  {first}")
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    from archsim.spec import load_arch

    arch = load_arch(args.arch)
    if args.node is not None:
        from archsim.energy import scale_architecture

        arch = scale_architecture(arch, args.node)
    if args.json:
        print(json.dumps(arch.to_dict(derived=True), indent=2))
    else:
        print(arch.summary())
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    from archsim.spec import load_arch

    arch = load_arch(args.file)  # ArchSpecError -> "error: ..." and exit 2 in archsim.cli
    print(f"ok: {args.file} is a valid {arch.kind} architecture {arch.name!r}")
    print(arch.summary())
    return 0
