"""Plots: Pareto scatter and roofline write real PNGs; roofs come from the arch spec."""

from __future__ import annotations

import pandas as pd
import pytest

import dse

ROWS = pd.DataFrame(
    {
        "status": ["ok", "ok", "ok", "error"],
        "feasible": [True, True, True, False],
        "dataflow": ["fusemax", "flat", "unfused", "flat"],
        "seconds": [1e-3, 2e-3, 5e-3, None],
        "energy_j": [3e-3, 1e-3, 4e-3, None],
        "flops": [1e12, 1e12, 1e12, None],
        "dram_bytes": [1e8, 2e8, 4e9, None],
    }
)


def test_pareto_plot_writes_png(tmp_path):
    png = tmp_path / "p.png"
    fig = dse.pareto_plot(ROWS, "energy", "latency", path=png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["flat", "fusemax", "unfused", "Pareto front"]


def test_arch_peaks_follow_the_pe_array():
    arch = pytest.importorskip("archsim").load_arch("fusemax")
    peak, bw = dse.arch_peaks(arch)
    small = arch.with_updates({"compute.pe2d.mesh": [128, 128]})
    peak_small, bw_small = dse.arch_peaks(small)
    assert bw == bw_small > 0
    # the 2D array dominates the MACs: a quarter of the PEs -> well under half the peak
    assert peak_small < peak / 2


def test_roofline_roof_is_the_min_of_peak_and_bandwidth(tmp_path):
    arch = pytest.importorskip("archsim").load_arch("fusemax")
    peak, bw = dse.arch_peaks(arch)
    png = tmp_path / "r.png"
    fig = dse.roofline_plot(ROWS, arch, path=png)
    assert png.stat().st_size > 1000
    roof = fig.axes[0].lines[0]
    xs, ys = roof.get_data()
    assert max(ys) == pytest.approx(peak)
    assert ys[0] == pytest.approx(bw * xs[0])


def test_roofline_from_simulation_reports(tmp_path):
    from archsim import load_arch
    from mappings import simulate_workload

    arch = load_arch("fusemax")
    reports = [
        simulate_workload(
            arch, "mha", params={"B": 1, "H": 4, "D": 64, "S": 1024}, dataflow=d, engine="analytic"
        )
        for d in ("fusemax", "unfused")
    ]
    fig = dse.roofline_plot(reports, arch, path=tmp_path / "r.png")
    points = [c.get_offsets() for c in fig.axes[0].collections]
    assert [len(p) for p in points] == [1, 1]
    peak, bw = dse.arch_peaks(arch)
    for ((x, y),) in points:
        assert y <= min(peak, bw * x) * 1.0001  # nothing beats the roofline


def test_grouped_plot_labels_each_front_and_says_what_was_fixed():
    df = pd.DataFrame(
        {
            "status": ["ok"] * 4,
            "feasible": [True] * 4,
            "workload": ["mha"] * 4,
            "param.B": [1] * 4,
            "param.S": [512, 512, 4096, 4096],
            "dataflow": ["fusemax", "flat"] * 2,
            "seconds": [1e-3, 2e-3, 8e-3, 9e-3],
            "energy_j": [2e-3, 1e-3, 9e-3, 8e-3],
        }
    )
    mixed = dse.pareto_plot(df, "energy", "latency")
    assert mixed.axes[0].get_title() == "one front; fixed: workload=mha, B=1; mixes S"
    fig = dse.pareto_plot(df, "energy", "latency", group_by="S")
    assert fig.axes[0].get_title() == "one front per S; fixed: workload=mha, B=1"
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["flat", "fusemax", "front, S=512", "front, S=4096"]
    fronts = [line.get_xdata().tolist() for line in fig.axes[0].lines]
    assert fronts == [[1e-3, 2e-3], [8e-3, 9e-3]]


_PLOT_BOTH = """
import pathlib
import sys
import matplotlib
import pandas as pd
from archsim.cli import main
from dse._demo import _plot
{setup}
assert main(["pareto", sys.argv[1], "--plot", "front.png"]) == 0
table = pd.DataFrame(
    {{"arch": ["a"], "dataflow": ["d"], "seconds": [1e-3], "energy_j": [1e-3],
     "energy_j_at_5nm": [1e-3]}}
)
curves = pd.DataFrame(columns=["dataflow", "S", "seconds"])
_plot(table, curves, pathlib.Path("demo.png"))
print(matplotlib.get_backend())
"""


@pytest.mark.parametrize(
    ("setup", "backend"),
    [
        # the user's choice (a notebook has its inline backend) is never changed
        ('matplotlib.use("svg")', "svg"),
        # headless, nothing chosen: matplotlib falls back to Agg by itself
        ("", "agg"),
    ],
)
def test_plots_keep_the_users_backend_and_write_pngs_headless(tmp_path, setup, backend):
    import os
    import subprocess
    import sys
    from pathlib import Path

    from dse import SweepSpec, run_sweep
    from tests.dse.dse_toy import toy_evaluator

    spec = SweepSpec.from_dict(
        {"name": "h", "arch": "fusemax", "workload": {"name": "mha", "params": {"S": [1024, 2048]}}}
    )
    run_sweep(spec, tmp_path / "s", executor="serial", evaluator=toy_evaluator)
    env = {k: v for k, v in os.environ.items() if k not in ("MPLBACKEND", "DISPLAY")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    code = _PLOT_BOTH.format(setup=setup)
    run = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "s")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().splitlines()[-1].lower() == backend
    assert (tmp_path / "front.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "demo.png").read_bytes()[:4] == b"\x89PNG"
