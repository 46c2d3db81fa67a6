"""The ``archsim`` command line.

Each package contributes its own sub-commands through a ``register(subparsers)`` function
in a private ``_cli`` module; this module only lists them and dispatches. The imports are
done here, at run time, so that the engine package never imports the packages above it
(``workloads``, ``mappings``, ``dse``, ``validation``) at import time.

A handler returns an exit code. Any :class:`archsim.errors.ArchsimError` reaching ``main``
is printed as ``error: ...`` on stderr with exit code 2 — never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from archsim.cli._help import HelpFormatter, examples
from archsim.errors import ArchsimError

__all__ = ["COMMANDS", "COMMAND_MODULES", "build_parser", "main"]

#: Modules whose ``register(subparsers)`` adds sub-commands, in help order, with the
#: commands each adds and their one-line help. ``archsim --help`` lists these without
#: importing any of them, and ``archsim COMMAND`` imports only the module that owns COMMAND
#: (importing them all costs most of a second: pandas, pydantic, the GPU models). A command
#: missing here still works (every module is then imported); tests/archsim/test_cli_lazy.py
#: holds this table equal to what the modules register.
COMMANDS: dict[str, tuple[tuple[str, str], ...]] = {
    "workloads._cli": (("workload", "list, show, check and verify Einsum cascades"),),
    "archsim._cli_arch": (("arch", "list, show and check architecture specs"),),
    "mappings._cli": (
        ("simulate", "simulate a workload on an architecture"),
        ("crossover", "the length beyond which workload A runs faster than workload B"),
        ("map", "search mappings with a mapper"),
    ),
    "dse._cli": (
        ("sweep", "run (or resume) a design-space sweep"),
        ("pareto", "print (and plot) the Pareto front of a sweep"),
        ("demo", "a short tour: fused vs unfused attention"),
    ),
    "validation._cli": (
        ("validate", "predict every record of a measurement file and report the errors"),
        ("compare", "measured kernel trace vs simulated kernels, merged Perfetto trace"),
    ),
    "validation._cli_reproduce": (
        ("reproduce", "reproduce a published result beside the paper's numbers"),
    ),
    "models._cli": (
        ("model", "one prefill/decode step of a whole model: per-op table, totals, TP, trace"),
    ),
}

#: The modules of :data:`COMMANDS`, in help order.
COMMAND_MODULES: tuple[str, ...] = tuple(COMMANDS)


class _SubParser(argparse.ArgumentParser):
    """A sub-command's parser: its help keeps the line breaks of descriptions and epilogs
    (examples, tables of choices) unless the module asks for another formatter."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]


class _Version(argparse.Action):
    """``--version``: looks the version up only when asked (reading the installed package's
    metadata costs start-up time every other command would pay)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        kwargs.pop("nargs", None)
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)  # type: ignore[arg-type]

    def __call__(self, parser: argparse.ArgumentParser, *_args: object) -> None:
        print(f"{parser.prog} {_version()}")  # noqa: T201 - stdout, as argparse's own
        parser.exit()


def _version() -> str:
    """The installed package's version (``pyproject.toml``), or ``unknown`` when archsim runs
    from a source tree that was never installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("archsim")
    except PackageNotFoundError:
        return "unknown (not installed: pip install -e .)"


def _register(module_name: str, sub: argparse._SubParsersAction) -> None:
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:  # a package not built yet must not break the rest
        if exc.name is not None and module_name.startswith(exc.name):
            return
        raise
    module.register(sub)


def _command_of(argv: Sequence[str]) -> str | None:
    """The sub-command named in ``argv`` (its first word not an option), or None."""
    for word in argv:
        if word == "--":
            return None
        if not word.startswith("-"):
            return word
    return None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The ``archsim`` parser.

    Without ``argv`` every command module is imported and registers its commands. With
    ``argv``, only the module that owns the command it names is imported; the other
    commands get placeholders that carry their help line (enough for ``archsim --help``).
    """
    parser = argparse.ArgumentParser(
        prog="archsim",
        description="Cycle-level simulator and design-space explorer for fused attention.",
        epilog=examples(
            "archsim demo",
            "archsim simulate --arch fusemax --workload mha --set S=4096",
            "archsim simulate --arch h100 --workload gqa --set S=8192 --json",
            "archsim workload list",
            "archsim arch show h100",
            note="archsim COMMAND --help shows a command's options, examples and choices.",
        ),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action=_Version, help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_SubParser)
    owner: str | None = None
    lazy = argv is not None
    if lazy:
        command = _command_of(argv)  # type: ignore[arg-type]
        owners = [m for m, cmds in COMMANDS.items() if any(c == command for c, _h in cmds)]
        owner = owners[0] if owners else None
        lazy = command is None or owner is not None  # an unknown word: import all, as before
    for module_name, cmds in COMMANDS.items():
        if not lazy or module_name == owner:
            _register(module_name, sub)
        else:
            for name, help_line in cmds:
                sub.add_parser(name, help=help_line, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None:  # the command itself (not a caller's process): before numpy loads
        # NOTE: one BLAS thread: archsim's matrices are small and sweeps parallelise over
        # processes; starting OpenBLAS's thread pool costs ~0.09 CPU-s per command
        # (bench/bench_startup.py). A value the user set is kept.
        import os

        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
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
    except OSError as exc:  # a file the user named cannot be read or written
        if exc.filename is None:
            raise
        what = exc.strerror or type(exc).__name__
        print(f"error: {exc.filename}: {what} (check the path given)", file=sys.stderr)  # noqa: T201
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
