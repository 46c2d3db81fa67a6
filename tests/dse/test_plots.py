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
