"""The ``archsim`` command line.

Each package contributes its own sub-commands through a ``register(subparsers)`` function
in a private ``_cli`` module; this module only lists them and dispatches. The imports are
done here, at run time, so the engine package never imports the packages above it at
import time (the import arrows of DESIGN.md stay one-way).

A handler returns an exit code. Any :class:`archsim.errors.ArchsimError` reaching ``main``
is printed as ``error: ...`` on stderr with exit code 2 — never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from archsim.errors import ArchsimError

__all__ = ["main", "build_parser", "COMMAND_MODULES"]

#: Modules whose ``register(subparsers)`` adds sub-commands, in help order.
COMMAND_MODULES: tuple[str, ...] = (
    "workloads._cli",  # archsim workload list|show|check|verify
    "archsim._cli_arch",  # archsim arch list|show|check
    "mappings._cli",  # archsim simulate, archsim map
    "dse._cli",  # archsim sweep, archsim pareto, archsim demo
    "validation._cli",  # archsim validate, archsim compare
    "validation._cli_reproduce",  # archsim reproduce fusemax|pim|fg-attn
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="archsim",
        description="Cycle-level simulator and design-space explorer for fused attention.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:  # a package not built yet must not break the rest
            if exc.name is not None and module_name.startswith(exc.name):
                continue
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except ArchsimError as exc:
        print(f"error: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    except BrokenPipeError:
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
