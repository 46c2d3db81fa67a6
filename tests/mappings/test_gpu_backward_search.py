"""The fusion mapper searches the key-outer backward tiles of a gradient cascade (issue 10):
every tile it runs counts the gradient cascade's ops exactly, a tile whose CTA does not fit
is refused naming the capacity, the best is never worse than a family's own tile, and the
family's own tile stays the default of ``--dataflow``."""

import pytest

from archsim import load_arch
from archsim.errors import MappingError
from archsim.gpu.heuristics import fa2_bwd_tiling
from mappings import simulate_workload
from mappings._gpu._common import model_for
from mappings._gpu._mapping import gpu_mapping_plan
from mappings._gpu._search_space import backward_space
from mappings._gpu.backward import BWD_RECIPES, backward_mapping, backward_roles
from mappings._gpu.search import gpu_search
from workloads import count, get_workload

ARCH = "h100"


@pytest.mark.parametrize("causal", [False, True])
def test_every_backward_tile_searched_counts_the_gradient_cascade(causal):
    arch = load_arch(ARCH)
    w = get_workload("gqa_bwd", B=1, H=4, Hkv=2, S=1000, D=64, causal=causal)  # ragged tiles
    c = count(w.cascade)
    roles = backward_roles(w.cascade)
    ran, tiles, refused, shapes = 0, set(), [], set()
    for cand in backward_space(w, arch, roles):
        try:
            plan = gpu_mapping_plan(w, cand.build(), arch)
        except MappingError as exc:  # a CTA that does not fit: refused naming the level
            refused.append(str(exc.path))
            continue
        ran += 1
        tiles.add((cand.name, plan.meta["tile"]))
        cta = plan.meta["cta"]
        shapes.add((cand.name, cta["stages"], cta["threads"] // 32))
        ops = plan.program.meta["ops"]
        assert ops["mac"] == pytest.approx(c.macs, rel=1e-12), plan.meta["tile"]
        for kind, n in c.ops.items():
            assert ops[kind] == pytest.approx(n, rel=1e-12), (kind, plan.meta["tile"])
        assert plan.meta["pass"] == "bwd"
    assert ran >= 8
    assert all("(SMEM)" in p or "(RF)" in p for p in refused), refused
    # more than the families' own tiles ran (own at D=64: flash2 and flash3 128x128); the
    # cutlass 4-warp CTA of D=64 cannot hold a larger tile's accumulators (refused above)
    assert ("flash2", "64x64") in tiles
    assert ("flash3", "128x96") in tiles
    # warps other than the family's own ran too (flash2: 8 warps; 4 counting the same ops),
    # and the family's own stages and warps (flash3: 8 MMA + 4 producer warps, 2 stages)
    assert {("flash2", 1, 4), ("flash2", 1, 8), ("flash3", 2, 12)} <= shapes


def _core_tile(arch, fam, bm, bn, D=128, stages=None):
    w = get_workload("mha_bwd", B=1, H=4, S=2048, D=D)
    roles = backward_roles(w.cascade)
    m = backward_mapping(w, arch, roles, BWD_RECIPES[fam], block_m=bm, block_n=bn, stages=stages)
    return w, m


def test_a_tile_whose_registers_do_not_fit_is_refused_naming_the_register_file():
    arch = load_arch(ARCH)
    # FA2's own d=128 CTA already uses 255 registers per thread: doubling its query tile
    # (more P/dS/dQ accumulators) cannot fit
    w, m = _core_tile(arch, "flash2", 128, 128)
    with pytest.raises(MappingError, match="registers per thread") as exc:
        gpu_mapping_plan(w, m, arch)
    assert "(RF)" in exc.value.path
    assert "255" in str(exc.value.expected)


def test_a_tile_whose_shared_memory_does_not_fit_is_refused_naming_it():
    arch = load_arch(ARCH)
    w, m = _core_tile(arch, "flash3", 256, 256, D=64)
    with pytest.raises(MappingError, match="overflow shared memory") as exc:
        gpu_mapping_plan(w, m, arch)
    cap = int(model_for(arch).hw.max_smem_per_cta_bytes)
    assert "(SMEM)" in exc.value.path
    assert f"{cap:,}" in str(exc.value.expected)


def test_a_smaller_tile_gets_a_smaller_cta_and_the_own_tile_is_the_familys_cta():
    arch = load_arch(ARCH)
    hw = model_for(arch).hw
    own = fa2_bwd_tiling(hw, 128, 2)
    w, m = _core_tile(arch, "flash2", own.block_m, own.block_n)
    cta = gpu_mapping_plan(w, m, arch).meta["cta"]
    assert (cta["regs_per_thread"], cta["smem_bytes"]) == (own.regs, own.smem_bytes)
    w, m = _core_tile(arch, "flash2", 64, 64)
    small = gpu_mapping_plan(w, m, arch).meta["cta"]
    assert small["smem_bytes"] < own.smem_bytes
    assert small["regs_per_thread"] < own.regs
    assert small["ctas_per_sm"] >= own.ctas_per_sm


def test_the_mapper_searches_backward_kernels_only_and_beats_or_ties_every_recipe():
    arch = load_arch(ARCH)
    w = get_workload("mha_bwd", B=1, H=8, S=2048, D=128, causal=True)
    stats: dict = {}
    top = gpu_search(w, arch, top=20, rescore=0, stats=stats)
    assert any("forward kernels left out" in r for r in stats["refused_reasons"])
    recipes = stats["recipes"]
    assert set(recipes) == set(BWD_RECIPES)
    best = top[0].cycles
    assert all(best <= float(v) for v in recipes.values())
    for rm in top:
        if rm.mapping.name == "gpu_unfused":
            continue
        plan = gpu_mapping_plan(w, rm.mapping, arch)
        assert plan.meta["pass"] == "bwd"  # a key-outer backward kernel, never a forward one
    # tiles other than the families' own were evaluated
    assert stats["evaluated"] > len(BWD_RECIPES) + 1


def test_without_a_mapper_the_dataflow_runs_the_familys_own_tile():
    p = {"B": 1, "H": 4, "S": 2048, "D": 128}
    rep = simulate_workload(ARCH, "mha_bwd", params=p, dataflow="flash2", engine="analytic")
    own = fa2_bwd_tiling(model_for(load_arch(ARCH)).hw, 128, 2)
    assert rep.plan.meta["tile"] == f"{own.block_m}x{own.block_n}"
