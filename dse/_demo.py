"""``archsim demo``: a a short tour of fused vs unfused attention.

1. On the spatial array: FuseMax (1-pass, fused) on the ``fusemax`` preset against FLAT (fused
   QK/softmax/AV per row tile) and unfused attention on the ``flat`` preset (FLAT's own
   architecture: 32 MiB buffer, 1D array with an exp unit — the FuseMax paper's baselines),
   with the event-driven engine at one sequence length, plus an analytical sweep over
   sequence lengths for the plot.
2. On an H100 (``h100`` preset): FlashAttention-2/3 against unfused GPU attention — only
   the GPU dataflows that are registered.
3. A table, a PNG (latency and energy per dataflow; latency against sequence length) and a
   Perfetto/Chrome trace of the FuseMax run.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from archsim.errors import SweepError

__all__ = ["DemoResult", "run_demo", "DEMO_SHAPE"]

log = logging.getLogger(__name__)

#: attention shape of the demo: BERT-large-like heads (16 × 64), one sequence of 4096 tokens
DEMO_SHAPE: dict[str, int] = {"B": 1, "H": 16, "D": 64, "S": 4096}
#: (group, arch preset, dataflow) in table order; speedups are against the group's unfused run
RUNS: tuple[tuple[str, str, str], ...] = (
    ("spatial", "fusemax", "fusemax"),
    ("spatial", "flat", "flat"),
    ("spatial", "flat", "unfused"),
    ("gpu", "h100", "flash3"),
    ("gpu", "h100", "flash2"),
    ("gpu", "h100", "gpu_unfused"),
)
UNFUSED = ("unfused", "gpu_unfused")
SEQ_LENS = (1024, 2048, 4096, 8192, 16384, 32768)


@dataclass(frozen=True)
class DemoResult:
    """What the demo produced.

    Attributes
    ----------
    out
        Output folder.
    table
        One row per (arch, dataflow): ``seconds``, ``energy_j`` (at the design's own
        node), ``node_nm``, ``energy_j_at_5nm``, ``dram_bytes``, ``speedup`` (vs the unfused
        dataflow on the same arch), ``engine``.
    plot
        PNG path.
    trace
        Perfetto/Chrome trace JSON path (``None`` if no event run succeeded).
    skipped
        Dataflows left out, with the reason.
    """

    out: Path
    table: pd.DataFrame
    plot: Path
    trace: Path | None
    skipped: tuple[str, ...] = field(default_factory=tuple)

    def lines(self) -> list[str]:
        """What ``archsim demo`` prints."""
        shape = ", ".join(f"{k}={v}" for k, v in DEMO_SHAPE.items())
        out = [f"attention ({shape}), fused vs unfused:", ""]
        show = self.table.assign(
            latency_us=self.table["seconds"] * 1e6,
            energy_mj=self.table["energy_j"] * 1e3,
            dram_mb=self.table["dram_bytes"] / 1e6,
            energy_mj_5nm=self.table["energy_j_at_5nm"] * 1e3,
        )[
            [
                "arch",
                "dataflow",
                "engine",
                "latency_us",
                "energy_mj",
                "node_nm",
                "energy_mj_5nm",
                "dram_mb",
                "speedup",
            ]
        ]
        with pd.option_context("display.float_format", "{:.4g}".format, "display.width", 120):
            out += show.to_string(index=False).splitlines()
        out.append("")
        out.append(
            "energy_mj: each design at its own node (node_nm); energy_mj_5nm: the spatial "
            "arrays' tables moved to 5 nm (archsim.energy.scale_architecture), GPU energy from "
            "its board power model"
        )
        for reason in self.skipped:
            out.append(f"skipped: {reason}")
        out.append(f"plot:  {self.plot}   (any image viewer)")
        if self.trace is not None:
            out.append(
                f"trace: {self.trace}   (open https://ui.perfetto.dev and drag the file in,"
                " or chrome://tracing)"
            )
        out.append(
            "next: archsim sweep SPEC.yaml --out runs/x   then   "
            "archsim pareto runs/x --plot front.png"
        )
        return out


def _row(arch: str, dataflow: str, report: object) -> dict[str, object]:
    d = report.to_dict()  # type: ignore[attr-defined]
    return {
        "arch": arch,
        "dataflow": dataflow,
        "engine": report.result.engine,  # type: ignore[attr-defined]
        "seconds": float(d["seconds"]),
        "energy_j": float(d["energy_j"]),
        "dram_bytes": float(d["dram_bytes"]),
        "cycles": int(d["cycles"]),
    }


def _available(names: Sequence[str]) -> list[str]:
    from mappings import list_dataflows

    known = set(list_dataflows())
    return [n for n in names if n in known]


def run_demo(
    out: str | Path = "demo_out",
    *,
    shape: dict[str, int] | None = None,
    seq_lens: Sequence[int] = SEQ_LENS,
) -> DemoResult:
    """Run the tour and write its files into ``out``.

    Parameters
    ----------
    out
        Output folder (created).
    shape
        Attention shape (default :data:`DEMO_SHAPE`).
    seq_lens
        Sequence lengths of the analytical latency-vs-length plot.

    Returns
    -------
    DemoResult
    """
    from mappings import simulate_workload

    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SweepError(
            f"cannot create the demo's output folder ({exc.strerror or exc})",
            path="--out",
            expected="a writable folder",
            got=str(out),
        ) from None
    shape = dict(shape or DEMO_SHAPE)
    rows: list[dict[str, object]] = []
    skipped: list[str] = []
    trace_path: Path | None = None
    present = set(_available([d for _, _, d in RUNS]))
    for group, arch, dataflow in RUNS:
        if dataflow not in present:
            skipped.append(f"{arch}/{dataflow}: dataflow not registered")
            continue
        traced = dataflow == "fusemax"
        try:
            report = simulate_workload(
                arch, "mha", params=shape, dataflow=dataflow, engine="event", trace=traced
            )
        except Exception as exc:  # noqa: BLE001 - the tour goes on and says what failed
            skipped.append(f"{arch}/{dataflow}: {type(exc).__name__}: {exc}")
            continue
        rows.append({"group": group, **_row(arch, dataflow, report), **_energy_basis(report)})
        if traced:
            trace_path = _write_trace(report.result, out / "fusemax_trace.json", skipped)
    table = pd.DataFrame(
        rows,
        columns=[
            "group",
            "arch",
            "dataflow",
            "engine",
            "seconds",
            "energy_j",
            "dram_bytes",
            "cycles",
            "node_nm",
            "energy_j_at_5nm",
        ],  # fmt: skip
    )
    table["speedup"] = [_speedup(table, r) for r in table.itertuples()]
    curves = _seq_curves(shape, seq_lens)
    plot = _plot(table, curves, out / "demo.png")
    table.to_csv(out / "demo_table.csv", index=False)
    return DemoResult(out, table, plot, trace_path, tuple(skipped))


#: node the demo puts every design's energy on (the GPUs' TSMC 4N, a 5 nm-class process)
COMMON_NODE_NM = 5


def _energy_basis(report: object) -> dict[str, object]:
    """The design's technology node and its energy at :data:`COMMON_NODE_NM`: a GPU's
    energy is its board power model's (already at its node); a spatial array's per-op and
    per-byte tables are moved to the common node by :func:`archsim.energy.scale_architecture`
    (rule and sources in :mod:`archsim.energy`) and the result re-accounted, time unchanged."""
    from archsim import load_arch
    from archsim.energy import scale_architecture
    from archsim.engine import program_energy_j

    rep = report
    arch = load_arch(rep.arch)  # type: ignore[attr-defined]
    node = arch.technology.node_nm if arch.technology is not None else None
    energy = float(rep.result.energy_j)  # type: ignore[attr-defined]
    if node is not None and node != COMMON_NODE_NM and arch.kind == "spatial":
        scaled = scale_architecture(arch, COMMON_NODE_NM)
        energy = program_energy_j(rep.plan.program, scaled, rep.result.seconds)  # type: ignore[attr-defined]
    return {"node_nm": node, "energy_j_at_5nm": energy}


def _write_trace(result: object, path: Path, skipped: list[str]) -> Path | None:
    """Write the Perfetto trace of ``result``; note why not where that is impossible."""
    if getattr(result, "trace", None) is None:
        skipped.append("trace: the event engine returned no trace")
        return None
    try:
        from archsim import write_trace
    except (ImportError, AttributeError) as exc:  # the engine's trace writer is optional
        skipped.append(f"trace: archsim.write_trace unavailable ({exc})")
        return None
    write_trace(result, path)
    return path


def _speedup(table: pd.DataFrame, row: object) -> float:
    base = table[(table["group"] == row.group) & table["dataflow"].isin(UNFUSED)]  # type: ignore[attr-defined]
    if base.empty:
        return math.nan
    return float(base["seconds"].iloc[0]) / float(row.seconds)  # type: ignore[attr-defined]


def _seq_curves(shape: dict[str, int], seq_lens: Sequence[int]) -> pd.DataFrame:
    """Analytical latency of each spatial dataflow across sequence lengths."""
    from mappings import simulate_workload

    rows = []
    spatial = [(a, d) for g, a, d in RUNS if g == "spatial"]
    present = set(_available([d for _, d in spatial]))
    for arch, dataflow in spatial:
        if dataflow not in present:
            continue
        for s in seq_lens:
            try:
                report = simulate_workload(
                    arch,
                    "mha",
                    params={**shape, "S": s},
                    dataflow=dataflow,
                    engine="analytic",
                )
            except Exception as exc:  # noqa: BLE001
                log.info("demo curve %s S=%d failed: %s", dataflow, s, exc)
                continue
            rows.append({"dataflow": dataflow, "S": s, "seconds": float(report.result.seconds)})
    return pd.DataFrame(rows, columns=["dataflow", "S", "seconds"])


def _plot(table: pd.DataFrame, curves: pd.DataFrame, path: Path) -> Path:
    import matplotlib.pyplot as plt  # the backend is the user's (headless: Agg by itself)

    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    labels = [f"{a}\n{d}" for a, d in zip(table["arch"], table["dataflow"], strict=True)]
    axes[0].bar(labels, table["seconds"] * 1e6, color="tab:blue")
    axes[0].set_ylabel("latency (µs)")
    axes[0].set_yscale("log")
    # one basis: every design's energy at the common node (the table keeps each one's own)
    axes[1].bar(labels, table["energy_j_at_5nm"] * 1e3, color="tab:orange")
    axes[1].set_ylabel(f"energy at {COMMON_NODE_NM} nm (mJ)")
    axes[1].set_yscale("log")
    for ax in axes[:2]:
        ax.tick_params(axis="x", labelsize=7)
    for dataflow, group in curves.groupby("dataflow", sort=False):
        axes[2].plot(group["S"], group["seconds"] * 1e6, marker="o", label=dataflow)
    axes[2].set_xscale("log", base=2)
    axes[2].set_yscale("log")
    axes[2].set_xlabel("sequence length (tokens)")
    axes[2].set_ylabel("latency (µs), analytical")
    axes[2].set_title("spatial arrays (fusemax / flat presets)")
    if len(curves):
        axes[2].legend(fontsize=8)
    fig.suptitle("archsim demo: fused vs unfused attention")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
