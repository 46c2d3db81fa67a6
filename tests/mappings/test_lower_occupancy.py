"""Lowering a mapping that fills part of the PE array: real op counts with an occupancy."""

from __future__ import annotations

import pytest

from archsim import estimate
from mappings import Mapping, lower, simulate_workload
from mappings._mapping import FusionGroup, LevelMapping
from workloads import get_workload

from .conftest import make_gemm


def _gemm_mapping(arch, spatial):
    # C[m,n] = A[m,k] * B[k,n], 256 x 96 x 128: DRAM loops over m and k, buffer the rest
    return Mapping(
        groups=(
            FusionGroup(
                einsums=("C",),
                levels=(
                    LevelMapping(level=arch.levels[0].name, temporal={"m": 16, "k": 4}),
                    LevelMapping(
                        level="GLB",
                        temporal={"m": 16 // spatial["m"], "n": 96 // spatial["n"], "k": 32},
                        spatial=spatial,
                        spatial_axis={"m": "x", "n": "y"},
                    ),
                ),
            ),
        )
    )


def test_half_filled_array_takes_twice_as_long_for_the_same_mac_energy(tiny_arch):
    w = make_gemm(256, 96, 128)
    full = lower(w, _gemm_mapping(tiny_arch, {"m": 16, "n": 16}), tiny_arch)
    half = lower(w, _gemm_mapping(tiny_arch, {"m": 16, "n": 8}), tiny_arch)
    (cf,), (ch,) = full.phases[0].body.compute, half.phases[0].body.compute
    assert cf.occupancy == 1.0
    assert ch.occupancy == 0.5
    assert dict(ch.ops) == dict(cf.ops)  # real op counts, not scaled by 1 / occupancy
    rf, rh = estimate(full, tiny_arch), estimate(half, tiny_arch)
    macs = 256 * 96 * 128
    pj = tiny_arch.unit("pe2d").energy_pj["mac"]
    for r in (rf, rh):
        got = sum(v for key, v in r.energy_breakdown_j.items() if key.startswith("pe2d.mac"))
        assert got == pytest.approx(macs * pj * 1e-12, rel=1e-9)
    compute = macs / tiny_arch.unit("pe2d").ops_per_cycle["mac"]  # full-array cycles
    assert rf.cycles >= compute
    assert rh.cycles >= 2 * compute


def test_unfused_attention_charges_mac_energy_on_the_real_macs():
    # before occupancy, the per-Einsum path charged MAC energy on ops scaled by 1/fill
    w = get_workload("mha", B=2, H=2, S=1024, D=64)
    rep = simulate_workload("flat", w, dataflow="unfused", engine="analytic")
    from archsim import load_arch

    pj = load_arch("flat").unit("pe2d").energy_pj["mac"]
    assert rep.result.energy_breakdown_j["pe2d.mac"] == pytest.approx(
        w.counts().macs * pj * 1e-12, rel=1e-9
    )
