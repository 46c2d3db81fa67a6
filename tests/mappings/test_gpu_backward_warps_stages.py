"""The fusion mapper searches the warps and Q/dO stages of the key-outer backward kernels
(issue 10): a warp or stage count the family instantiates gets its own CTA (threads,
registers, shared memory, occupancy), one the GPU cannot hold is refused naming the
capacity, a found mapping that names its warps runs back from YAML with the same cycles,
and without the mapper each family's own backward kernel runs unchanged."""

import json
from dataclasses import replace

import pytest

from archsim import load_arch, simulate
from archsim.errors import MappingError
from mappings import Mapping, simulate_workload
from mappings._gpu._common import model_for
from mappings._gpu._mapping import gpu_mapping_plan
from mappings._gpu.backward import (
    BWD_RECIPES,
    backward_mapping,
    backward_roles,
    mapping_warps,
    warp_layout,
)
from mappings._gpu.search import cta_label, gpu_search
from workloads import get_workload

ARCH = "h100"


@pytest.fixture(scope="module")
def h100():
    return load_arch(ARCH)


def _plan(arch, fam, *, D=64, S=2048, bm, bn, stages=None, warps=None):
    w = get_workload("mha_bwd", B=1, H=4, S=S, D=D)
    roles = backward_roles(w.cascade)
    m = backward_mapping(
        w, arch, roles, BWD_RECIPES[fam], block_m=bm, block_n=bn, stages=stages, warps=warps
    )
    return w, m, gpu_mapping_plan(w, m, arch)


# --- the default path -----------------------------------------------------------------------

#: Cycles of each family's own backward kernel on mha_bwd B=2 H=8 S=2048 D=128 causal, h100,
#: analytic and event engines: measured on commit b31f0f8 (before the warp / stage search)
#: and unchanged by it.
DEFAULT_CYCLES = {
    "flash2": (459_410, 463_691),
    "flash3": (193_912, 199_832),
    "mem_efficient": (954_616, 960_974),
}


@pytest.mark.parametrize("fam", sorted(DEFAULT_CYCLES))
def test_the_familys_own_backward_kernel_is_unchanged_without_the_mapper(fam):
    p = {"B": 2, "H": 8, "S": 2048, "D": 128, "causal": True}
    for engine, want in zip(("analytic", "event"), DEFAULT_CYCLES[fam], strict=True):
        rep = simulate_workload(ARCH, "mha_bwd", params=p, dataflow=fam, engine=engine)
        assert int(rep.result.cycles) == want, (fam, engine)
        # the default mapping names no warps: the family's own CTA
        assert mapping_warps(rep.plan.mapping.groups[-1]) is None
        own = BWD_RECIPES[fam].tiling(model_for(load_arch(ARCH)).hw, 128, 2)
        assert rep.plan.meta["cta"]["threads"] == own.threads


# --- warps and stages change the CTA ----------------------------------------------------------


def test_fewer_warps_hold_more_registers_per_thread_and_fewer_per_cta(h100):
    *_, eight = _plan(h100, "flash2", D=32, bm=64, bn=64)
    *_, four = _plan(h100, "flash2", D=32, bm=64, bn=64, warps=4)
    a, b = eight.meta["cta"], four.meta["cta"]
    assert (a["threads"], b["threads"]) == (256, 128)
    assert b["regs_per_thread"] > a["regs_per_thread"]
    assert b["regs_per_thread"] * b["threads"] < a["regs_per_thread"] * a["threads"]
    # a thread's non-accumulator registers stay: at D=32 the 4-warp CTA fits twice per SM
    assert b["ctas_per_sm"] > a["ctas_per_sm"]
    assert (a["smem_bytes"], a["block_m"], a["block_n"]) == (b["smem_bytes"], 64, 64)


def test_more_stages_take_more_shared_memory_and_keep_more_bytes_in_flight(h100):
    *_, one = _plan(h100, "flash3", D=128, bm=64, bn=128, stages=1)
    *_, two = _plan(h100, "flash3", D=128, bm=64, bn=128, stages=2)
    *_, three = _plan(h100, "flash3", D=128, bm=64, bn=128, stages=3)
    smem = [p.meta["cta"]["smem_bytes"] for p in (one, two, three)]
    # FA3 keeps two Q tiles whatever its dO stages (sm90 ``Stages = 2``): one stage fewer
    # is one dO tile fewer (64 x 128 bf16); one more is a Q and a dO tile more
    assert smem[1] - smem[0] == 64 * 128 * 2
    assert smem[2] - smem[1] == 2 * 64 * 128 * 2
    ka = next(k for k in one.program.meta["kernels"] if k.get("pass") == "bwd")
    kb = next(k for k in two.program.meta["kernels"] if k.get("pass") == "bwd")
    assert ka["name"] == kb["name"]


def test_warps_are_the_register_levels_spatial_factors_over_the_ctas_tile(h100):
    w, m, plan = _plan(h100, "flash3", D=64, bm=64, bn=96, warps=12)
    g = m.groups[-1]
    roles = backward_roles(w.cascade)
    assert g.levels[2].spatial == {roles.query: 12}  # the CTA's keys: 12 warps x 8 keys
    assert g.tile(roles.query, 1) == 96
    assert g.tile(roles.key, 1) == 64
    assert plan.meta["cta"]["threads"] == (12 + BWD_RECIPES["flash3"].producer_warps) * 32
    assert warp_layout(8, {"n": 64, "m": 64}) == {"n": 8}
    assert warp_layout(12, {"n": 128, "m": 96}) == {"n": 4, "m": 3}
    with pytest.raises(MappingError, match="do not tile") as exc:
        warp_layout(12, {"n": 128, "m": 64})
    assert "spatial" in exc.value.path


# --- refusals ---------------------------------------------------------------------------------


def test_warps_whose_registers_do_not_fit_are_refused_naming_the_register_file(h100):
    # FA2's own d=128 CTA (64x128, 8 warps) holds 255 registers per thread: in 4 warps the
    # same accumulators need twice as many
    with pytest.raises(MappingError, match="registers per thread") as exc:
        _plan(h100, "flash2", D=128, bm=64, bn=128, warps=4)
    assert "(RF)" in exc.value.path
    assert "4 MMA warps" in str(exc.value)


def test_threads_beyond_the_sm_are_refused_naming_them(h100):
    cap = model_for(h100).hw.max_threads_per_sm
    with pytest.raises(MappingError, match="exceed the SM's threads") as exc:
        _plan(h100, "flash2", D=64, bm=128, bn=128, warps=cap // 32 * 2)
    assert exc.value.path.endswith("levels[2].spatial")
    assert f"<= {cap} threads" in str(exc.value.expected)


def test_wgmma_warps_come_in_warpgroups_and_cutlass_warps_follow_the_tile(h100):
    with pytest.raises(MappingError, match="warpgroups") as exc:
        _plan(h100, "flash3", D=64, bm=64, bn=128, warps=2)
    assert exc.value.path.endswith("levels[2].spatial")
    # cutlass: one warp per 32 x 32 of the tile (64 x 64: 4 warps); another count is refused
    *_, plan = _plan(h100, "mem_efficient", D=64, bm=64, bn=64)
    assert plan.meta["cta"]["threads"] == 4 * 32
    *_, big = _plan(h100, "mem_efficient", D=64, bm=128, bn=128)
    assert big.meta["cta"]["threads"] == 16 * 32
    with pytest.raises(MappingError, match="sets its warps from its tile") as exc:
        _plan(h100, "mem_efficient", D=64, bm=64, bn=64, warps=8)
    assert "4 MMA warps" in str(exc.value.expected)


# --- the search ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def d32_search(h100):
    w = get_workload("mha_bwd", B=1, H=16, S=4096, D=32)
    stats: dict = {}
    top = gpu_search(w, h100, top=100, rescore=0, stats=stats)
    return w, top, stats


def test_the_search_finds_a_warp_count_faster_than_the_familys_own(h100, d32_search):
    """At D=32 FA2's own 8-warp CTA carries 79 registers per thread beside its
    accumulators: a 4-warp CTA holds fewer registers in all and fits twice per SM."""
    w, top, stats = d32_search
    best_fa2 = next(r for r in top if r.mapping.name == "flash2")
    plan = gpu_mapping_plan(w, best_fa2.mapping, h100)
    assert mapping_warps(best_fa2.mapping.groups[-1]) == 4
    assert plan.meta["cta"]["threads"] == 128
    assert best_fa2.cycles < 0.9 * float(stats["recipes"]["flash2"])
    assert cta_label(w, best_fa2.mapping).endswith(" w4")


@pytest.mark.parametrize("shape", [dict(S=1024, D=64, causal=True), dict(S=4096, D=128)])
def test_the_best_of_each_family_is_never_slower_than_its_own_kernel(h100, shape):
    w = get_workload("mha_bwd", B=1, H=16, **shape)
    stats: dict = {}
    top = gpu_search(w, h100, top=500, rescore=0, stats=stats)
    recipes = stats["recipes"]
    assert set(recipes) == set(BWD_RECIPES)
    assert top[0].cycles <= min(float(v) for v in recipes.values())
    for fam, own in recipes.items():
        best = min(r.cycles for r in top if r.mapping.name == fam)
        assert best <= float(own), fam
    # warp variants were evaluated beside the tiles (at D=128 no 4-warp FA2 CTA holds its
    # accumulators: refused); stages are each family's own
    labels = {cta_label(w, r.mapping) for r in top}
    w4 = any(lab.startswith("flash2") and lab.endswith(" w4") for lab in labels)
    assert w4 == (shape["D"] == 64)
    assert stats["pruned"] > 0
    for fam, recipe in BWD_RECIPES.items():
        stages = {r.mapping.groups[-1].depth for r in top if r.mapping.name == fam}
        assert stages == set(recipe.stage_choices) == {recipe.kv_stages}, fam


def _core_depth_and_inflight(h100, stages, *, fam="flash3", recipe=None, bm=64, bn=128, D=128):
    """(tile-program depth, kernel-model in-flight bytes) of the key-outer core kernel."""
    from mappings._gpu.backward import _kernels, backward_cta
    from mappings._stream import StreamTiling, stream_work

    model = model_for(h100)
    w = get_workload("mha_bwd", B=1, H=16, S=4096, D=D)
    roles = backward_roles(w.cascade)
    own_recipe = recipe is None
    recipe = BWD_RECIPES[fam] if recipe is None else recipe
    base = recipe.tiling(model.hw, D, 2)
    sw = stream_work(w, StreamTiling(bn, bm, recipe.skips), roles=roles, dataflow=fam)
    t = backward_cta(
        recipe, model.hw, base, block_m=bm, block_n=bn, stages=stages, d=D, dv=D, elt=2
    )
    main = _kernels(w.cascade, sw, recipe, model, t, "bf16", stages)[0][1]
    if not own_recipe:
        return main.stages, t.inflight_bytes
    phase = gpu_mapping_plan(
        w, backward_mapping(w, h100, roles, recipe, block_m=bm, block_n=bn, stages=stages), h100
    ).program.phases
    core = next(p for p in phase if p.name == main.name)
    assert core.depth == main.stages
    return main.stages, t.inflight_bytes


def test_the_programs_pipeline_depth_follows_the_q_buffers(h100):
    """The tile program's depth of a backward trip is its ``Q`` buffers, ``max(stages,
    q_buffers)`` (a trip's ``Q`` is held until its ``dK`` GEMM): the dQ accumulator's
    read-modify-write, two thirds of a trip's bytes here, is no stage. Under the old rule
    (``round(in-flight / trip bytes) + 1``, trip bytes with the dQ read and write) three
    stages gave depth 2 like one and two."""
    got = {st: _core_depth_and_inflight(h100, st) for st in (1, 2, 3)}
    assert got[1][1] * 2 == got[2][1]  # the kernel model's in-flight bytes follow stages
    assert got[3][1] * 2 == got[2][1] * 3
    # FA3 keeps two Q tiles at one dO stage (sm90 Stages = 2): depth 2, as at two stages
    assert [got[st][0] for st in (1, 2, 3)] == [2, 2, 3]
    # every family's own kernel: two Q buffers (FA2 sQ double buffer, cutlass preload)
    for fam in BWD_RECIPES:
        assert BWD_RECIPES[fam].q_buffers == 2
    assert _core_depth_and_inflight(h100, 1, fam="flash2")[0] == 2
    # one Q buffer (a recipe without the second): the next trip's loads wait for the compute
    one = replace(BWD_RECIPES["flash3"], q_buffers=1)
    assert _core_depth_and_inflight(h100, 1, recipe=one)[0] == 1


def test_tripwire_one_do_stage_ranks_faster_only_through_the_kernel_models_clock(h100):
    """Why FA3's ``Stages_dO`` 1 stays out of the search (:attr:`BackwardRecipe.
    stage_choices`): at one and two stages the program's depth is the same (two Q buffers),
    but the kernel model's in-flight bytes halve at one stage, so it is latency-bound there
    and its lower power lifts the clock the program runs at. When this fails (the kernel
    model's in-flight bytes follow the Q buffers, or the program's depth sees dO), revisit
    ``stage_choices``. h100 mha_bwd B1 H32 S8192 D128, flash3 64x128."""
    w = get_workload("mha_bwd", B=1, H=32, S=8192, D=128)
    roles = backward_roles(w.cascade)
    out = {}
    for st in (1, 2):
        m = backward_mapping(
            w, h100, roles, BWD_RECIPES["flash3"], block_m=64, block_n=128, stages=st
        )
        plan = gpu_mapping_plan(w, m, h100)
        k = next(k for k in plan.program.meta["kernels"] if k.get("pass") == "bwd")
        out[st] = (k["clock_hz"], k["bound"], int(simulate(plan.program, h100).cycles))
    assert (out[1][1], out[2][1]) == ("latency", "compute")
    assert out[1][0] > out[2][0]
    assert out[1][2] < out[2][2]


def test_a_found_mapping_with_its_warps_runs_back_from_yaml(h100, d32_search, tmp_path, capsys):
    from archsim.cli import main

    w, top, _ = d32_search
    found = next(r for r in top if mapping_warps(r.mapping.groups[-1]) is not None)
    f = tmp_path / "bwd.yaml"
    found.mapping.to_yaml(f)
    back = Mapping.from_yaml(f)
    assert back == found.mapping
    assert "spatial" in f.read_text()
    args = ["--arch", ARCH, "--workload", "mha_bwd"]
    args += ["--set", "B=1", "--set", "H=16", "--set", "S=4096", "--set", "D=32"]
    assert main(["simulate", *args, "--mapping", str(f), "--engine", "analytic", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["cycles"] == pytest.approx(found.cycles, rel=1e-9)
    # --save-mapping writes the mapping that ran; --mapping runs it back to the same cycles
    g = tmp_path / "again.yaml"
    run = ["simulate", *args, "--mapping", str(f), "--save-mapping", str(g), "--json"]
    assert main(run) == 0
    first = json.loads(capsys.readouterr().out)["cycles"]
    assert Mapping.from_yaml(g) == found.mapping
    assert main(["simulate", *args, "--mapping", str(g), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["cycles"] == first
