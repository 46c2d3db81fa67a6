"""``archsim sweep``, ``archsim pareto`` and ``archsim demo``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``sweep``, ``pareto`` and ``demo`` sub-commands."""
    sweep = subparsers.add_parser(
        "sweep",
        help="run (or resume) a design-space sweep",
        description="Run a sweep spec into a result store; re-running resumes where it stopped.",
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
    sweep.set_defaults(func=_sweep)

    par = subparsers.add_parser("pareto", help="print (and plot) the Pareto front of a sweep")
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
    par.set_defaults(func=_pareto)

    demo = subparsers.add_parser("demo", help="one-minute tour: fused vs unfused attention")
    demo.add_argument("--out", default="demo_out", help="output folder (default: ./demo_out)")
    demo.set_defaults(func=_demo)


def _dry_run(args: argparse.Namespace) -> int:
    from dse._points import expand_points
    from dse._spec import load_sweep
    from dse._store import ResultStore

    spec = load_sweep(args.spec)
    points = expand_points(spec)
    done = ResultStore(args.out).done_ids() & {p.point_id for p in points}
    print(f"{spec.name}: {len(points)} points, {len(done)} already in {args.out}")  # noqa: T201
    for point in points[:3]:
        inputs = {k: v for k, v in point.input_columns().items() if k != "point_index"}
        print(f"  {inputs}")  # noqa: T201
    if len(points) > 3:
        print(f"  ... {len(points) - 3} more")  # noqa: T201
    return 0


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
    return 0


def _input_columns(df: pd.DataFrame) -> list[str]:
    """The input columns that vary across the store's rows."""
    names = ("workload", "dataflow", "engine")
    return [
        c
        for c in df.columns
        if (c.startswith(("arch.", "param.", "knob.")) or c in names)
        and df[c].nunique(dropna=False) > 1
    ]


def _default_axes(objectives: object) -> tuple[str, str]:
    """The sweep's first two objectives, padded with energy_j and seconds."""
    picks = [str(o) for o in objectives] if isinstance(objectives, list) else []
    for fallback in ("energy_j", "seconds"):
        if len(picks) < 2 and fallback not in picks:
            picks.append(fallback)
    return picks[0], picks[1]


def _pareto(args: argparse.Namespace) -> int:
    import pandas as pd

    from dse._pareto import pareto, resolve_column
    from dse._store import ResultStore, load

    df = load(args.store)
    if df.empty:
        print(f"{args.store}: no results yet")  # noqa: T201
        return 1
    default_x, default_y = _default_axes(ResultStore(args.store).manifest().get("objectives"))
    x = resolve_column(df, args.x or default_x)
    y = resolve_column(df, args.y or default_y)
    front = pareto(
        df, x, y, minimize=(not args.maximize_x, not args.maximize_y), only_feasible=not args.all
    )
    ok = int((df["status"] == "ok").sum())
    feasible = int(df["feasible"].sum())
    print(  # noqa: T201
        f"{len(df)} points ({ok} ok, {feasible} feasible); "
        f"Pareto front over {x} × {y}: {len(front)} points"
    )
    cols = [*_input_columns(df), x, y]
    with pd.option_context(
        "display.width", 200, "display.max_columns", 20, "display.float_format", "{:.4g}".format
    ):
        print(front[cols].to_string(index=False))  # noqa: T201
    if args.plot:
        from dse._plots import pareto_plot

        pareto_plot(df, x, y, path=args.plot)
        print(f"plot: {args.plot}")  # noqa: T201
    return 0


def _demo(args: argparse.Namespace) -> int:
    from dse._demo import run_demo

    demo = run_demo(Path(args.out))
    for line in demo.lines():
        print(line)  # noqa: T201
    return 0
