"""``archsim reproduce NAME [--plot OUT.png] [--json] [--out DIR] [--fast]``.

Runs one paper reproduction (``validation.reproduce``), prints its tables beside the paper's
numbers (or, with ``--json``, one JSON object with the summary keys, tables and checks), and
writes the tables as CSV, ``summary.json`` and a PNG plot under ``--out``
(default ``./reproduce_out/NAME``). Exit code 0 when every gating check passes, 1 otherwise.
"""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``reproduce`` sub-command."""
    from archsim.cli._help import examples, sections

    p = subparsers.add_parser(
        "reproduce",
        help="reproduce a published result beside the paper's numbers",
        description="Reproduce a published result with the simulator: print its tables beside "
        "the paper's numbers and write them as CSV, summary.json and a plot. Exit code 0 when "
        "every gating check passes, 1 otherwise.",
        epilog=sections(
            examples(
                "archsim reproduce fusemax --fast",
                "archsim reproduce lean --fast --json",
                "archsim reproduce hydragen --fast --out /tmp/hydragen --plot /tmp/hydragen.png",
            ),
            _reproduction_table,
        ),
    )
    p.add_argument("name", metavar="NAME", help="which reproduction (listed below)")
    p.add_argument(
        "--plot",
        type=Path,
        default=None,
        metavar="OUT.png",
        help="where to write the plot (default: OUT/NAME.png)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="directory for the CSV tables, summary.json and plot (default ./reproduce_out/NAME)",
    )
    p.add_argument("--fast", action="store_true", help="CI-sized subset of the points")
    p.set_defaults(func=_handle)


def _reproduction_table() -> str:
    """Every registered reproduction with the first line of its module's docstring (the paper)."""
    import sys

    from archsim.cli._help import plain, table
    from validation.reproduce import REPRODUCTIONS

    rows = [(name, plain(sys.modules[fn.__module__].__doc__)) for name, fn in REPRODUCTIONS.items()]
    return "\n".join(["reproductions (NAME):", *table(rows)])


def _handle(args: argparse.Namespace) -> int:
    from archsim.cli._paths import check_output_dir, check_output_file
    from validation.reproduce import format_reproduction, reproduce, write_outputs

    out = args.out or Path("reproduce_out") / args.name
    check_output_dir(out)  # before the run, not after it
    if args.plot:
        check_output_file(args.plot)
    rep = reproduce(args.name, fast=bool(args.fast))
    written = write_outputs(rep, out, args.plot)
    if args.json:
        print(rep.to_json())  # noqa: T201
    else:
        print(format_reproduction(rep))  # noqa: T201
        print("wrote: " + ", ".join(str(p) for p in written))  # noqa: T201
    return 0 if rep.ok else 1
