"""GEMM on the systolic array: fill/drain costs time, not MAC energy (Compute.occupancy)."""

from __future__ import annotations

import pytest

from mappings import simulate_workload

from .conftest import make_gemm


@pytest.mark.parametrize("stationary", ["output", "weight", "input"])
@pytest.mark.parametrize("engine", ["analytic", "event"])
def test_mac_energy_is_mnk_times_pj_per_mac(tpu, stationary, engine):
    m, n, k = 1000, 700, 300  # partial folds at every edge, and fill/drain per fold
    rep = simulate_workload(
        tpu,
        make_gemm(m, n, k),
        dataflow="gemm",
        engine=engine,
        knobs={"stationary": stationary, "operands": "sram"},
    )
    mxu = tpu.unit("mxu")
    mac = [key for key in rep.result.energy_breakdown_j if key.startswith("mxu.mac")]
    assert len(mac) == 1
    pj = mxu.energy_pj.get(mac[0].split(".", 1)[1], mxu.energy_pj.get("mac"))
    assert rep.result.energy_breakdown_j[mac[0]] == pytest.approx(m * n * k * pj * 1e-12, rel=1e-9)
    # utilization is useful work only: the MACs over the array's MAC slots in the run
    rate = mxu.ops_per_cycle.get(mac[0].split(".", 1)[1], mxu.ops_per_cycle.get("mac"))
    useful = m * n * k / (rate * mxu.instances * rep.result.cycles)
    assert rep.result.utilization["mxu"] == pytest.approx(useful, rel=1e-9)
    assert rep.result.utilization["mxu"] < 1.0
