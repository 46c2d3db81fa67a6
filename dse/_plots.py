"""Plots for sweeps: Pareto scatter and roofline (matplotlib).

These functions never choose matplotlib's backend: in Jupyter figures render inline, and
with no display matplotlib falls back to Agg by itself, so ``path=`` writes the PNG either
way.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from archsim.errors import SweepError
from dse._pareto import input_columns, pareto, resolve_column, resolve_group_by

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from archsim import Architecture

__all__ = ["pareto_plot", "roofline_plot", "arch_peaks"]

_LABELS = {
    "seconds": "latency (s)",
    "energy_j": "energy (J)",
    "edp_js": "EDP (J·s)",
    "area_mm2": "area (mm²)",
    "cycles": "cycles",
    "dram_bytes": "DRAM bytes",
}


def _save(fig: Figure, path: str | Path | None) -> None:
    """Write ``fig`` as an image at ``path`` (folders created); an unwritable path is a
    :class:`SweepError` naming it."""
    if path is None:
        return
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120, bbox_inches="tight")
    except (OSError, ValueError) as exc:  # ValueError: an image format matplotlib lacks
        reason = getattr(exc, "strerror", None) or str(exc)
        raise SweepError(
            f"cannot write the plot ({reason})",
            path=str(path),
            expected="a writable file path (.png, .svg, .pdf)",
            got=str(path),
        ) from None


def pareto_plot(
    df: pd.DataFrame,
    x: str = "energy_j",
    y: str = "seconds",
    *,
    hue: str | None = "dataflow",
    path: str | Path | None = None,
    log: bool = True,
    group_by: str | Sequence[str] | None = None,
) -> Figure:
    """Scatter the ``ok`` points, colored by ``hue``, with the Pareto front as a staircase.

    Points that violate the sweep's constraints (``feasible`` false) are grey crosses; the
    front is drawn over the feasible points only. With ``group_by`` there is one front per
    group, labelled with the group's values; the title names the inputs each front holds
    fixed and the inputs that take one value in the whole sweep.

    Parameters
    ----------
    df
        Rows from :func:`dse.load`.
    x, y
        Columns or aliases (see :func:`dse.pareto`); both minimized.
    hue
        Column to color by (ignored when absent).
    path
        Save a PNG there as well.
    log
        Log-log axes.
    group_by
        Input column(s) with one front per value (see :func:`dse.pareto`).
    """
    cx, cy = resolve_column(df, x), resolve_column(df, y)
    fronts_by = resolve_group_by(df, group_by)
    ok = df[df["status"] == "ok"] if "status" in df else df
    fig, ax = plt.subplots(figsize=(6, 4.5))
    if "feasible" in ok:
        bad = ok[~ok["feasible"].astype(bool)]
        if len(bad):
            ax.scatter(
                bad[cx], bad[cy], s=12, marker="x", color="0.7", label="violates constraints"
            )
        ok = ok[ok["feasible"].astype(bool)]
    groups = ok.groupby(hue, sort=True) if hue and hue in ok else [("points", ok)]
    for name, group in groups:
        ax.scatter(group[cx], group[cy], s=14, alpha=0.6, label=str(name))
    front = pareto(df, cx, cy, group_by=fronts_by or None)
    if fronts_by:
        styles = ["-", "--", "-.", ":"]
        for k, (values, part) in enumerate(front.groupby(fronts_by, sort=True, dropna=False)):
            label = _group_label(fronts_by, values)
            ax.step(
                part[cx], part[cy], where="post", lw=1.2, color="black",
                ls=styles[k % len(styles)], label=f"front, {label}",
            )  # fmt: skip
    elif len(front):
        ax.step(front[cx], front[cy], where="post", color="black", lw=1.2, label="Pareto front")
    ax.set_title(_front_title(df, fronts_by), fontsize=9)
    if log:
        ax.set_xscale("log")
        ax.set_yscale("log")
        _decade_labels_only(ax, ok[cx], ok[cy])
    ax.set_xlabel(_LABELS.get(cx, cx))
    ax.set_ylabel(_LABELS.get(cy, cy))
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    _save(fig, path)
    return fig


def _decade_labels_only(ax: Axes, xs: pd.Series, ys: pd.Series) -> None:
    """Readable log-axis labels: matplotlib's minor labels (2x10^1, 3x10^1, ...) overlap.

    Over at most two decades the ticks are 1, 2, 5 per decade, labelled as plain numbers;
    over more, the decades only.
    """
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    for axis, values in ((ax.xaxis, xs), (ax.yaxis, ys)):
        v = pd.to_numeric(values, errors="coerce")
        v = v[v > 0]
        if not len(v) or v.max() / v.min() <= 10:
            continue
        axis.set_minor_formatter(NullFormatter())
        if v.max() / v.min() <= 100:
            axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            axis.set_major_formatter(FuncFormatter(lambda value, _pos: f"{value:g}"))


def _short(column: str) -> str:
    return column.split(".", 1)[1] if column.startswith(("param.", "knob.")) else column


def _group_label(groups: Sequence[str], values: object) -> str:
    vals = values if isinstance(values, tuple) else (values,)
    return ", ".join(f"{_short(c)}={v}" for c, v in zip(groups, vals, strict=True))


def _front_title(df: pd.DataFrame, groups: Sequence[str]) -> str:
    """What each front holds fixed: the group columns, and the inputs constant over the
    sweep; warns when varied inputs are mixed into one front."""
    fixed = [
        f"{_short(c)}={df[c].iloc[0]}"
        for c in input_columns(df)
        if c not in groups and len(df) and df[c].nunique(dropna=False) == 1 and c != "arch"
    ]
    head = f"one front per {', '.join(_short(g) for g in groups)}" if groups else "one front"
    varying = input_columns(df, varying=True)
    mixed = [_short(c) for c in varying if c.startswith("param.") and c not in groups]
    parts = [head]
    if fixed:
        parts.append("fixed: " + ", ".join(fixed[:6]) + (" ..." if len(fixed) > 6 else ""))
    if mixed:
        parts.append("mixes " + ", ".join(mixed))
    return "; ".join(parts)


def arch_peaks(arch: Architecture, op: str = "mac_bf16") -> tuple[float, float]:
    """Peak compute (FLOP/s, a MAC = 2 FLOPs) and DRAM bandwidth (bytes/s) of ``arch``.

    Compute: ``2 × Architecture.peak_ops_per_s(op)`` (all units that execute ``op``;
    ``mac_bf16`` falls back to ``mac``); DRAM: ``max(read, write) bytes/cycle × instances ×
    core_hz`` of the outermost level.
    """
    flops = 2.0 * float(arch.peak_ops_per_s(op))
    dram = arch.dram
    per_cycle = max(float(dram.read_bw_bytes_per_cycle), float(dram.write_bw_bytes_per_cycle))
    return flops, per_cycle * dram.instances * float(arch.clock.core_hz)


def roofline_plot(
    data: pd.DataFrame | Sequence[object],
    arch: Architecture,
    *,
    hue: str | None = "dataflow",
    op: str = "mac_bf16",
    path: str | Path | None = None,
) -> Figure:
    """Roofline: achieved FLOP/s against operational intensity (FLOPs per DRAM byte).

    Parameters
    ----------
    data
        A sweep DataFrame (needs ``flops``, ``seconds``, ``dram_bytes``) or a sequence of
        ``mappings.SimulationReport`` (their ``.to_dict()`` / result give the same columns).
    arch
        The architecture whose roofs are drawn (:func:`arch_peaks`).
    hue
        Column to color points by.
    op
        The MAC kind whose peak is the flat roof (``mac_bf16`` falls back to ``mac``).
    path
        Save a PNG there as well.
    """
    df = data if isinstance(data, pd.DataFrame) else _reports_frame(data)
    if "status" in df:
        df = df[df["status"] == "ok"]
    df = df[(df["dram_bytes"] > 0) & (df["seconds"] > 0)]
    intensity = df["flops"] / df["dram_bytes"]
    peak, bw = arch_peaks(arch, op)
    fig, ax = plt.subplots(figsize=(6, 4.5))
    lo = min(float(intensity.min()) if len(df) else 1.0, peak / bw / 10 if bw else 1.0)
    hi = max(float(intensity.max()) if len(df) else 10.0, peak / bw * 10 if bw else 10.0)
    xs = np.geomspace(lo / 2, hi * 2, 200)
    ax.plot(
        xs,
        np.minimum(peak, bw * xs),
        color="black",
        lw=1.5,
        label=f"roof: {peak / 1e12:.3g} TFLOP/s, {bw / 1e9:.3g} GB/s",
    )
    groups = df.groupby(hue, sort=True) if hue and hue in df else [("points", df)]
    for name, group in groups:
        ax.scatter(
            group["flops"] / group["dram_bytes"],
            group["flops"] / group["seconds"],
            s=16,
            alpha=0.7,
            label=str(name),
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("operational intensity (FLOP / DRAM byte)")
    ax.set_ylabel("achieved FLOP/s")
    ax.set_title(f"roofline: {arch.name}")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    _save(fig, path)
    return fig


def _reports_frame(reports: Sequence[object]) -> pd.DataFrame:
    rows = []
    for report in reports:
        d = report.to_dict()  # type: ignore[attr-defined]
        flops = d.get("flops")
        if flops is None:
            flops = _report_flops(report)
        rows.append(
            {
                "flops": float(flops),
                "seconds": float(d["seconds"]),
                "dram_bytes": float(d["dram_bytes"]),
                "dataflow": d.get("dataflow", ""),
            }
        )
    return pd.DataFrame(rows)


def _report_flops(report: object) -> float:
    """FLOPs of a report's workload (its counts: 2·MACs + other ops)."""
    workload = getattr(report, "workload", None)
    if workload is not None and hasattr(workload, "counts"):
        return float(workload.counts().flops)
    from workloads import get_workload

    d = report.to_dict()  # type: ignore[attr-defined]
    name = d["workload"] if isinstance(d["workload"], str) else d["workload"]["name"]
    params = d.get("params") or (
        d["workload"].get("params", {}) if isinstance(d["workload"], dict) else {}
    )
    return float(get_workload(name, **params).counts().flops)
