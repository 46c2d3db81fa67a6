"""``archsim sweep``, ``archsim pareto`` and ``archsim demo``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``sweep``, ``pareto`` and ``demo`` sub-commands."""
    from archsim.cli._help import examples, sections

    sweep = subparsers.add_parser(
        "sweep",
        help="run (or resume) a design-space sweep",
        description="Run a sweep spec (YAML: architecture axes, workload parameters, dataflows, "
        "sampler, objectives, constraints) into a result store; re-running the same command "
        "resumes where it stopped. The spec is checked before any point runs.",
        epilog=examples(
            "archsim sweep examples/sweep_fusemax.yaml --out runs/fusemax --dry-run",
            "archsim sweep examples/sweep_fusemax.yaml --out runs/fusemax --workers 2",
            "archsim sweep examples/sweep_lhs.yaml --out runs/lhs --executor serial",
            note="Two commented specs: examples/sweep_fusemax.yaml (grid) and "
            "examples/sweep_lhs.yaml (Latin hypercube). Results load in Python with "
            "dse.load(OUT).",
        ),
    )
    sweep.add_argument("spec", help="sweep spec YAML")
    sweep.add_argument("--out", required=True, help="result store folder")
    sweep.add_argument(
        "--workers", type=int, default=None, help="parallel workers (default: CPU count)"
    )
    sweep.add_argument(
        "--executor",
        choices=["process", "dask", "serial"],
        default="process",
        help="local process pool (default), Dask, or in-process",
    )
    sweep.add_argument(
        "--scheduler", default=None, help="Dask scheduler address (implies --executor dask)"
    )
    sweep.add_argument("--batch-size", type=int, default=None, help="points per task")
    sweep.add_argument(
        "--retry-errors", action="store_true", help="recompute points stored as errors"
    )
    sweep.add_argument("--no-progress", action="store_true", help="no progress bar")
    sweep.add_argument(
        "--dry-run", action="store_true", help="count the points (and those stored) and stop"
    )
    sweep.add_argument(
        "--max-points",
        type=int,
        default=None,
        help="refuse a sweep with more points than this (default: 1,000,000)",
    )
    sweep.add_argument(
        "--connect-timeout",
        type=float,
        default=10.0,
        help="seconds to wait for the Dask scheduler of --scheduler (default: 10)",
    )
    sweep.set_defaults(func=_sweep)

    par = subparsers.add_parser(
        "pareto",
        help="print (and plot) the Pareto front of a sweep",
        description="Print the points of a result store that no other point beats on both "
        "objectives (x and y), optionally one front per group, and plot all points with the "
        "front.",
        epilog=sections(
            examples(
                "archsim pareto runs/fusemax",
                "archsim pareto runs/fusemax --x area --y latency --plot runs/fusemax/front.png",
                "archsim pareto runs/fusemax --x energy --y latency --group-by dataflow",
                note="(after archsim sweep examples/sweep_fusemax.yaml --out runs/fusemax)",
            ),
            _objective_table,
        ),
    )
    par.add_argument("store", help="result store folder (archsim sweep --out)")
    par.add_argument(
        "--x",
        default=None,
        help="x objective: a column or latency|energy|edp|area (default: the sweep's first "
        "objective, else energy_j)",
    )
    par.add_argument(
        "--y", default=None, help="y objective (default: the sweep's second, else seconds)"
    )
    par.add_argument("--maximize-x", action="store_true", help="maximize x instead of minimizing")
    par.add_argument("--maximize-y", action="store_true", help="maximize y instead of minimizing")
    par.add_argument("--plot", default=None, help="write a PNG of all points and the front")
    par.add_argument("--all", action="store_true", help="ignore the sweep's constraints")
    par.add_argument(
        "--group-by",
        default=None,
        metavar="COL[,COL]",
        help="one front per value of these input columns (e.g. S or param.S,dataflow)",
    )
    par.set_defaults(func=_pareto)

    demo = subparsers.add_parser(
        "demo",
        help="a short tour: fused vs unfused attention",
        description="Simulate fused (FuseMax, FlashAttention) and unfused attention on a "
        "spatial array and a GPU, print the comparison and write a plot and a Perfetto trace "
        "under --out.",
        epilog=examples("archsim demo", "archsim demo --out /tmp/archsim_demo"),
    )
    demo.add_argument("--out", default="demo_out", help="output folder (default: ./demo_out)")
    demo.set_defaults(func=_demo)


def _objective_table() -> str:
    """``--x``/``--y`` aliases and the result columns they stand for (from the sweep spec)."""
    from dse._spec import OBJECTIVE_COLUMNS

    rows = "\n".join(f"  {k:<8} {v}" for k, v in OBJECTIVE_COLUMNS.items())
    return f"objectives (--x, --y: an alias below or any numeric result column):\n{rows}"


def _max_points(args: argparse.Namespace) -> int:
    from dse._check import MAX_POINTS

    return MAX_POINTS if args.max_points is None else int(args.max_points)


def _dry_run(args: argparse.Namespace) -> int:
    from dse._check import check_spec
    from dse._points import expand_points
    from dse._spec import load_sweep
    from dse._store import ResultStore

    spec = load_sweep(args.spec)
    check_spec(spec, max_points=_max_points(args), source=args.spec)
    points = expand_points(spec)
    done = ResultStore(args.out).done_ids() & {p.point_id for p in points}
    print(f"{spec.name}: {len(points)} points, {len(done)} already in {args.out}")  # noqa: T201
    for point in points[:3]:
        inputs = {k: v for k, v in point.input_columns().items() if k != "point_index"}
        print(f"  {inputs}")  # noqa: T201
    if len(points) > 3:
        print(f"  ... {len(points) - 3} more")  # noqa: T201
    todo = [p for p in points if p.point_id not in done]
    for line in _estimate(todo, args.workers):
        print(line)  # noqa: T201
    return 0


def _estimate(todo: list, workers: int | None, budget_s: float = 3.0) -> list[str]:
    """Cost estimate of the points left, per engine: the first point is evaluated to warm
    up (imports, caches), then up to 3 points spread over the list (first, middle, last:
    the grid's small and large shapes) are timed, stopping once ``budget_s`` is spent."""
    import time

    from dse._evaluate import evaluate_point
    from dse._runner import _usable_cpus

    if not todo:
        return ["estimate: nothing left to compute"]
    n_workers = max(1, workers or _usable_cpus())
    lines = []
    for engine in dict.fromkeys(p.engine for p in todo):
        points = [p for p in todo if p.engine == engine]
        picks = list(dict.fromkeys([0, len(points) // 2, len(points) - 1]))
        times: list[float] = []
        failed = 0
        spent = 0.0
        for k, i in enumerate([0, *picks]):
            start = time.perf_counter()
            try:
                evaluate_point(points[i])
            except Exception:  # noqa: BLE001 - a failing point still tells its cost
                failed += k > 0
            elapsed = time.perf_counter() - start
            spent += elapsed
            if k > 0 or len(points) == 1:
                times.append(elapsed)
            if spent > budget_s and times:
                break
        if not times:  # the warm-up alone spent the budget: it is the estimate
            times.append(spent)
        per_point = sum(times) / len(times)
        total = per_point * len(points) / n_workers
        note = f", {failed} of them failed" if failed else ""
        lines.append(
            f"estimate ({engine}): {per_point:.3g} s per point (mean of {len(times)} timed"
            f"{note}); {len(points)} points on {n_workers} workers ~ {_duration(total)}"
        )
    return lines


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.3g} s"
    if seconds < 7200:
        return f"{seconds / 60:.3g} min"
    return f"{seconds / 3600:.3g} h"


def _sweep(args: argparse.Namespace) -> int:
    from dse._runner import run_sweep

    if args.dry_run:
        return _dry_run(args)
    try:
        summary = run_sweep(
            args.spec,
            args.out,
            workers=args.workers,
            executor=args.executor,
            scheduler=args.scheduler,
            batch_size=args.batch_size,
            retry_errors=args.retry_errors,
            progress=not args.no_progress,
            max_points=_max_points(args),
            connect_timeout=args.connect_timeout,
        )
    except KeyboardInterrupt:
        print(  # noqa: T201
            f"interrupted: finished points are stored in {args.out}; "
            "re-run the same command to resume",
            file=sys.stderr,
        )
        return 130
    print(  # noqa: T201
        f"{summary.total} points: {summary.skipped} already stored, {summary.computed} computed "
        f"({summary.errors} errors) in {summary.seconds:.1f} s "
        f"({summary.points_per_s:.1f} points/s)"
    )
    print(  # noqa: T201
        f"results: {summary.out}/  (python: dse.load({str(summary.out)!r}); "
        f"front: archsim pareto {summary.out})"
    )
    if summary.error_messages:
        _print_errors(summary.error_messages, summary.failed, summary.total)
        return 1
    return 0


def _print_errors(messages: Mapping[str, int], failed: int, total: int) -> None:
    """The distinct error messages of the failed points, most frequent first (stderr)."""
    counts = sorted(messages.items(), key=lambda kv: (-kv[1], kv[0]))
    print(  # noqa: T201
        f"error: {failed} of {total} points failed ({len(counts)} distinct errors):",
        file=sys.stderr,
    )
    for message, k in counts[:10]:
        print(f"  {k} x {message}", file=sys.stderr)  # noqa: T201
    if len(counts) > 10:
        print(f"  ... and {len(counts) - 10} more distinct errors", file=sys.stderr)  # noqa: T201
    print(  # noqa: T201
        "fix the cause and re-run with --retry-errors to recompute the failed points",
        file=sys.stderr,
    )


def _default_axes(objectives: object) -> tuple[str, str]:
    """The sweep's first two objectives, padded with energy_j and seconds."""
    picks = [str(o) for o in objectives] if isinstance(objectives, list) else []
    for fallback in ("energy_j", "seconds"):
        if len(picks) < 2 and fallback not in picks:
            picks.append(fallback)
    return picks[0], picks[1]


def _pareto(args: argparse.Namespace) -> int:
    import pandas as pd

    from archsim.errors import SweepError
    from dse._pareto import input_columns, pareto, resolve_column, resolve_group_by
    from dse._store import ResultStore, load

    df = load(args.store)
    if df.empty:
        print(f"{args.store}: no results yet")  # noqa: T201
        return 1
    store = ResultStore(args.store)
    default_x, default_y = _default_axes(store.manifest().get("objectives"))
    try:
        x = resolve_column(df, args.x) if args.x else None
        y = resolve_column(df, args.y) if args.y else None
        x = x or resolve_column(df, default_x)
        y = y or resolve_column(df, default_y)
    except SweepError as exc:
        if exc.got not in (default_x, default_y) or exc.got in (args.x, args.y):
            raise
        raise SweepError(
            f"the sweep's objective {exc.got!r} is not a column of the results ({exc.detail}); "
            "name the axes with --x and --y",
            path=f"{store.root / 'manifest.json'}: objectives",
            expected=exc.expected,
        ) from None
    groups = resolve_group_by(df, args.group_by)
    front = pareto(
        df,
        x,
        y,
        minimize=(not args.maximize_x, not args.maximize_y),
        only_feasible=not args.all,
        group_by=groups,
    )
    ok = int((df["status"] == "ok").sum())
    feasible = int(df["feasible"].sum())
    per = f", one front per {', '.join(groups)}" if groups else ""
    print(  # noqa: T201
        f"{len(df)} points ({ok} ok, {feasible} feasible); "
        f"Pareto front over {x} × {y}{per}: {len(front)} points"
    )
    varying = input_columns(df, varying=True)
    mixed = [c for c in varying if c.startswith("param.") and c not in (*groups, x, y)]
    if mixed:
        print(  # noqa: T201
            f"note: the front mixes {', '.join(mixed)}; "
            f"--group-by {','.join(mixed)} gives one front per value"
        )
    cols = [*groups, *(c for c in varying if c not in (*groups, x, y)), *dict.fromkeys([x, y])]
    with pd.option_context(
        "display.width", 200, "display.max_columns", 20, "display.float_format", "{:.4g}".format
    ):
        print(front[cols].to_string(index=False))  # noqa: T201
    if args.plot:
        import matplotlib.pyplot as plt

        from dse._plots import pareto_plot

        fig = pareto_plot(df, x, y, path=args.plot, group_by=groups)
        plt.close(fig)
        print(f"plot: {args.plot}")  # noqa: T201
    return 0


def _demo(args: argparse.Namespace) -> int:
    from dse._demo import run_demo

    demo = run_demo(Path(args.out))
    for line in demo.lines():
        print(line)  # noqa: T201
    return 0
