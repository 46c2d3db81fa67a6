"""``archsim workload list|show|check|verify``: the library from the command line.

- ``list`` prints one workload name per line (``--models``: the model presets).
- ``show NAME --set K=V ... [--json]`` prints the counts of a library workload.
- ``check FILE`` parses a cascade file (YAML by extension ``.yaml``/``.yml``, else text)
  and prints a one-line summary; errors exit 2 through ``archsim.cli.main``.
- ``verify NAME|all [--seed N] [--set K=V ...]`` runs each cascade with the reference
  executor against its direct numpy implementation and prints the max relative error;
  exit 1 when one exceeds the tolerance.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from archsim.errors import WorkloadError

if TYPE_CHECKING:  # pragma: no cover
    from workloads import Cascade, CascadeCounts

__all__ = ["register"]


_TITLE = "library workloads (NAME; --set K=V overrides a default):"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``archsim workload ...`` to the top-level parser."""
    from archsim.cli._help import examples, sections, workload_table

    wl = subparsers.add_parser(
        "workload",
        help="list, show, check and verify Einsum cascades",
        description="The workload library (named, parameterised Einsum cascades) and cascade "
        "files, from the command line. Errors exit with code 2.",
        epilog=sections(
            examples(
                "archsim workload list",
                "archsim workload show mha --set S=8192 --set H=16",
                "archsim workload check examples/cascades/sliding_window.ein",
                "archsim workload verify mha",
            ),
            lambda: workload_table(_TITLE),
        ),
    )
    sub = wl.add_subparsers(dest="workload_command", metavar="ACTION")
    wl.set_defaults(func=lambda args: _help(wl))

    p = sub.add_parser(
        "list",
        help="library workload names, one per line",
        description="Print the library workload names, one per line (--models: the model "
        "presets that fill shape parameters with workload show --model).",
        epilog=examples("archsim workload list", "archsim workload list --models"),
    )
    p.add_argument("--models", action="store_true", help="list the model presets instead")
    p.set_defaults(func=_list)

    p = sub.add_parser(
        "show",
        help="counts of a library workload",
        description="Print the parameters of a library workload and, per Einsum, its MACs, "
        "other ops and compulsory bytes read and written.",
        epilog=sections(
            examples(
                "archsim workload show mha",
                "archsim workload show gqa --set S=32768 --set causal=true --json",
                "archsim workload show mha --model llama3-8b",
            ),
            lambda: workload_table(_TITLE),
        ),
    )
    p.add_argument("name", help="library workload (listed below)")
    _add_set(p)
    p.add_argument(
        "--model", help="fill shape parameters from a model preset (workload list --models)"
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_show)

    p = sub.add_parser(
        "check",
        help="parse and check a cascade file (YAML or text)",
        description="Parse a cascade file (YAML by extension .yaml/.yml, else the text "
        "language of docs/cascade_language.md), check its ranks and shapes, and print a "
        "one-line summary; an error names the line and column.",
        epilog=examples(
            "archsim workload check examples/cascades/sliding_window.ein",
            "archsim workload check examples/cascades/sigmoid.ein --json",
        ),
    )
    p.add_argument("file", help="cascade file: .yaml/.yml (YAML) or anything else (text)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=_check)

    p = sub.add_parser(
        "verify",
        help="executor vs direct numpy reference",
        description="Run a library cascade with the reference executor on small random inputs "
        "and compare with a direct numpy implementation; print the largest relative error. "
        "Exit code 1 when one exceeds the tolerance.",
        epilog=examples(
            "archsim workload verify mha",
            "archsim workload verify gqa --seed 1",
            "archsim workload verify all",
        ),
    )
    p.add_argument("name", help="library workload, or all")
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    _add_set(p)
    p.set_defaults(func=_verify)


def _add_set(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="parameter override (int, float, true/false or text); repeatable",
    )


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 0


def _list(args: argparse.Namespace) -> int:
    from workloads.library import list_models, list_workloads

    for name in list_models() if args.models else list_workloads():
        print(name)  # noqa: T201
    return 0


def _params(args: argparse.Namespace) -> dict[str, object]:
    from workloads.library import parse_set_options

    params: dict[str, object] = dict(parse_set_options(args.set))
    if getattr(args, "model", None):
        params["model"] = args.model
    return params


def _show(args: argparse.Namespace) -> int:
    from workloads.library import get_workload

    w = get_workload(args.name, **_params(args))  # type: ignore[arg-type]
    c = w.counts()
    einsums: list[dict[str, Any]] = [
        {
            "name": e.name,
            "macs": e.macs,
            "ops": dict(e.ops),
            "reads_bytes": e.reads_bytes,
            "writes_bytes": e.writes_bytes,
        }
        for e in c.einsums
    ]
    total = {
        "macs": c.macs,
        "flops": c.flops,
        "compulsory_bytes": c.compulsory_bytes,
        "ops": dict(c.ops),
    }
    if args.json:
        print(
            json.dumps(
                {
                    "workload": w.name,
                    "params": w.params,
                    "sizes": w.sizes,  # noqa: T201
                    "einsums": einsums,
                    "total": total,
                },
                indent=2,
            )
        )
        return 0
    shown = ", ".join(f"{k}={v}" for k, v in w.params.items())
    print(f"{w.name}: {shown}")  # noqa: T201
    rows = [("einsum", "macs", "ops", "reads_B", "writes_B")]
    for e in einsums:
        ops = " ".join(f"{k}:{_num(v)}" for k, v in sorted(e["ops"].items())) or "-"
        rows.append(
            (e["name"], _num(e["macs"]), ops, _num(e["reads_bytes"]), _num(e["writes_bytes"]))
        )
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for r in rows:
        print(
            "  ".join(
                cell.ljust(wd) if i in (0, 2) else cell.rjust(wd)  # noqa: T201
                for i, (cell, wd) in enumerate(zip(r, widths, strict=True))
            )
        )
    print(
        f"total: macs={_num(c.macs)} flops={_num(c.flops)} "  # noqa: T201
        f"compulsory_bytes={_num(c.compulsory_bytes)}"
    )
    return 0


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:.6g}"


def _check(args: argparse.Namespace) -> int:
    from workloads import count, load_cascade, parse_cascade
    from workloads._files import read_text

    path = Path(args.file)
    if path.suffix.lower() in (".yaml", ".yml"):
        cascade = load_cascade(path)
    else:
        cascade = parse_cascade(read_text(path), name=path.stem)
    summary: dict[str, object] = {
        "name": cascade.name,
        "einsums": len(cascade.einsums),
        "inputs": list(cascade.inputs),
        "outputs": list(cascade.outputs),
        "params": dict(cascade.params),
    }
    outers = {s.outer for s in cascade.splits.values()}
    missing = sorted(
        {cascade.size_param(r) for r in cascade.all_ranks() if r not in outers}
        - set(cascade.params)
    )
    macs_total: float | None = None
    if missing:  # valid, but not countable until the sizes are given (--set at simulate)
        summary["note"] = f"no size given for {', '.join(missing)}: not counted"
    else:  # every size given: a size, count or condition error is an error
        counts = count(cascade)
        macs_total = counts.macs
        _refuse_empty(cascade, counts)
    summary["macs"] = macs_total
    if args.json:
        print(json.dumps(summary))  # noqa: T201
        return 0
    macs = "" if macs_total is None else f", {_num(macs_total)} MACs"
    print(
        f"ok: {cascade.name}: {len(cascade.einsums)} einsums, inputs "  # noqa: T201
        f"{','.join(cascade.inputs)} -> outputs {','.join(cascade.outputs)}{macs}"
    )
    return 0


def _refuse_empty(cascade: Cascade, counts: CascadeCounts) -> None:
    """An Einsum whose condition holds at no point (``W = 0`` in ``i - j < W``) computes
    nothing: a parameter is wrong, so the file is refused naming the condition's values."""
    from workloads._ast import expr_names

    for e, c in zip(cascade.einsums, counts.einsums, strict=True):
        if e.cond is None or c.points > 0:
            continue
        params = cascade.resolved_params()
        used = {n: params[n] for n in dict.fromkeys(expr_names(e.cond)) if n in params}
        shown = ", ".join(f"{k}={v:g}" for k, v in used.items()) or "no parameter"
        raise WorkloadError(
            f"Einsum {e.name} computes no point: its condition `{e.condition}` never holds",
            path=f"line {e.line}" if e.line else f"Einsum {e.name}",
            expected="parameters under which the condition holds somewhere",
            got=shown,
        )


def _verify(args: argparse.Namespace) -> int:
    from workloads.library import (
        TOLERANCE,
        get_workload,
        list_workloads,
        verify,
        verify_cases,
    )

    overrides = _params(args)
    names = list_workloads() if args.name == "all" else [args.name]
    if args.name == "all" and overrides:
        raise WorkloadError(
            "--set applies to one workload",
            path="--set",
            expected="verify NAME --set K=V",
            got="all",
        )
    failed = 0
    for name in names:
        cases = (
            [get_workload(name, **overrides)]  # type: ignore[arg-type]
            if overrides
            else verify_cases(name)
        )
        worst = 0.0
        for i, w in enumerate(cases):
            r = verify(w, np.random.default_rng(args.seed + i))
            worst = max(worst, r.max_rel_error)
            if not r.ok:
                failed += 1
                shown = ", ".join(f"{k}={v}" for k, v in w.params.items())
                print(f"FAIL {name} ({shown}): max relative error {r.max_rel_error:.3g}")  # noqa: T201
        status = "ok" if worst <= TOLERANCE else "FAIL"
        print(
            f"{status} {name}: {len(cases)} shapes, max relative error {worst:.3g} "  # noqa: T201
            f"(tolerance {TOLERANCE:g})"
        )
    return 1 if failed else 0
