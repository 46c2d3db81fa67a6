"""GPU fused attention kernels written as a whole-cascade Mapping, and run back.

flash2 / flash3 / mem_efficient plans carry their Mapping (grid at HBM, Q/K/V in SMEM, the
tile and every intermediate in registers, key tile as the split, stages as depth); the saved
YAML runs back to the same cycles, and an edited one gets a different, capacity-checked CTA.
"""

from __future__ import annotations

import json

import pytest

from archsim import estimate, load_arch
from archsim.errors import MappingError
from mappings import Mapping, check_mapping, simulate_workload
from mappings._api import plan_for, resolve_workload
from mappings._gpu._mapping import fused_mapping, gpu_mapping_plan, unfused_mapping
from mappings._gpu.attention import RECIPES
from mappings._roles import attention_roles


@pytest.fixture(scope="module")
def h100():
    return load_arch("h100")


def _mha(**p):
    return resolve_workload("mha", {"S": 4096, **p})


def _edit(m: Mapping, *, bn: int | None = None, depth: int | None = None) -> Mapping:
    """``m`` with the key tile (split, RF and HBM factors) or the stages changed."""
    d = m.to_dict()
    g = d["groups"][0]
    if bn is not None:
        key = 4096
        d["splits"]["m"] = bn
        g["levels"][2]["temporal"]["m0"] = bn
        g["levels"][0]["temporal"]["m1"] = key // bn
    if depth is not None:
        g["depth"] = depth
    return Mapping.from_dict(d)


@pytest.mark.parametrize("df", ["flash2", "flash3", "mem_efficient"])
def test_recipe_plan_carries_its_mapping_and_it_runs_back_to_the_same_cycles(h100, df):
    w = _mha(causal=True)
    _, plan = plan_for(h100, w, dataflow=df)
    m = plan.mapping
    assert m is not None
    assert m.name == df
    (core,) = m.groups
    hbm, smem, rf = core.levels
    assert (hbm.level, smem.level, rf.level) == ("HBM", "SMEM", "RF")
    assert hbm.spatial == {"h": 32, "p": 4096 // core.tile("p", 1)}  # the grid
    assert set(smem.keep or ()) >= {"Q", "K", "V"}
    assert "QK" in (rf.keep or ())
    assert "QK" in core.on_chip
    assert core.depth == RECIPES[df].kv_stages
    assert core.units["SLN"] == "cuda"
    assert "QK" not in core.units
    # the grid is larger than the SM count: the general checker accepts it (waves)
    assert math_prod(hbm.spatial.values()) > 132
    for engine in ("event", "analytic"):
        a = simulate_workload(h100, w, dataflow=df, engine=engine).result
        yaml_text = m.to_yaml()
        b = simulate_workload(h100, w, mapping=Mapping.from_yaml(yaml_text), engine=engine).result
        assert (a.cycles, a.energy_j, a.dram_bytes) == (b.cycles, b.energy_j, b.dram_bytes)


def math_prod(xs):
    out = 1
    for x in xs:
        out *= int(x)
    return out


def test_save_mapping_then_mapping_from_the_cli(tmp_path, capsys):
    from archsim.cli import main

    f = tmp_path / "f.yaml"
    args = ["simulate", "--arch", "h100", "--workload", "gqa", "--set", "S=2048", "--json"]
    assert main([*args, "--dataflow", "flash2", "--save-mapping", str(f)]) == 0
    first = json.loads(capsys.readouterr().out)
    assert main([*args, "--mapping", str(f)]) == 0
    again = json.loads(capsys.readouterr().out)
    assert first["cycles"] == again["cycles"]
    assert first["energy_j"] == again["energy_j"]


def test_an_edited_key_tile_or_stage_count_changes_the_result(h100):
    w = _mha()
    _, plan = plan_for(h100, w, dataflow="flash2")
    base = simulate_workload(h100, w, mapping=plan.mapping, engine="analytic").result.cycles
    small = gpu_mapping_plan(w, _edit(plan.mapping, bn=32), h100)
    assert small.meta["cta"]["block_n"] == 32
    # a smaller key tile: half the shared memory for K/V, fewer registers
    assert small.meta["cta"]["smem_bytes"] < plan.meta["cta"]["smem_bytes"]
    assert small.meta["cta"]["regs_per_thread"] < plan.meta["cta"]["regs_per_thread"]
    other = simulate_workload(h100, w, mapping=_edit(plan.mapping, bn=32), engine="analytic")
    assert other.result.cycles != base
    _, p3 = plan_for(h100, w, dataflow="flash3")
    one = gpu_mapping_plan(w, _edit(p3.mapping, depth=1), h100)
    one_stage = 128 * (128 + 128) * 2  # K and V tiles of 128 keys x 128 features, bf16
    assert one.meta["cta"]["smem_bytes"] == p3.meta["cta"]["smem_bytes"] - one_stage


def test_capacity_errors_name_the_level_and_the_bytes(h100):
    w = _mha()
    _, p2 = plan_for(h100, w, dataflow="flash2")
    with pytest.raises(MappingError) as e:  # 128 x 128 fp32 scores + 128 x 128 outputs
        gpu_mapping_plan(w, _edit(p2.mapping, bn=128), h100)
    msg = str(e.value)
    assert "levels[2] (RF)" in msg
    assert "319 registers per thread" in msg
    assert "B of registers" in msg
    _, p3 = plan_for(h100, w, dataflow="flash3")
    with pytest.raises(MappingError) as e:
        gpu_mapping_plan(w, _edit(p3.mapping, depth=4), h100)
    msg = str(e.value)
    assert "levels[1] (SMEM)" in msg
    assert "327,680 B" in msg
    assert "232,448 B per CTA" in msg


def test_structure_a_fused_kernel_cannot_run_is_refused(h100):
    w = _mha()
    _, plan = plan_for(h100, w, dataflow="flash2")
    d = plan.mapping.to_dict()
    d["groups"][0]["levels"][2]["temporal"]["e"] = 64  # half the head dim per CTA
    d["groups"][0]["levels"][0]["temporal"]["e"] = 2
    with pytest.raises(MappingError, match="whole feature rank 'e'"):
        gpu_mapping_plan(w, Mapping.from_dict(d), h100)
    d = plan.mapping.to_dict()
    d["groups"][0]["skip"] = ["condition", "block"]
    with pytest.raises(MappingError, match="flash2 cannot skip"):
        gpu_mapping_plan(w, Mapping.from_dict(d), h100)
    d = plan.mapping.to_dict()
    d["groups"][0]["units"]["SLN"] = "tensor"  # exp on the tensor cores
    with pytest.raises(MappingError, match="cannot run the 'exp' ops"):
        gpu_mapping_plan(w, Mapping.from_dict(d), h100)
    d = plan.mapping.to_dict()
    d["name"] = "flash9"
    with pytest.raises(MappingError, match="kernel family"):
        gpu_mapping_plan(w, Mapping.from_dict(d), h100)


def test_a_contraction_on_the_cuda_cores_runs_on_the_fp32_pipes(h100):
    w = _mha(S=2048)
    _, plan = plan_for(h100, w, dataflow="flash2")
    d = plan.mapping.to_dict()
    d["groups"][0]["units"]["QK"] = "cuda"
    slow = gpu_mapping_plan(w, Mapping.from_dict(d), h100)
    tensor = sum(k["tensor_flops"] for k in plan.meta["kernels"])
    assert sum(k["tensor_flops"] for k in slow.meta["kernels"]) == pytest.approx(tensor / 2)
    assert estimate(slow.program, h100).seconds > 2 * estimate(plan.program, h100).seconds


def test_wave_rule_of_the_general_checker(h100):
    w = _mha()
    _, plan = plan_for(h100, w, dataflow="flash3")
    # grid 32 heads x 32 query blocks = 1024 CTAs on 132 SMs: waves, not an error
    check_mapping(w, plan.mapping, h100)
    from mappings._check import runs_in_waves

    g = plan.mapping.groups[0]
    assert runs_in_waves(h100, g, 0)
    assert not runs_in_waves(h100, g, 1)
    assert not runs_in_waves(load_arch("fusemax"), g, 0)
    # below the outermost level a spatial factor beyond the fan-out is still an error
    d = plan.mapping.to_dict()
    d["groups"][0]["levels"][1]["spatial"] = {"f": 128}
    d["groups"][0]["levels"][2]["temporal"].pop("f")
    with pytest.raises(MappingError, match="spatial factor beyond the fan-out"):
        check_mapping(w, Mapping.from_dict(d), h100)


VARIANTS = [
    ("sqa", {"S": 4096}, "flash2"),
    ("gqa", {"S": 4096, "causal": True}, "flash3"),
    ("mha", {"S": 1000}, "flash2"),  # tiles that do not divide, a short query
    ("mha", {"S": 100}, "mem_efficient"),  # shorter than the family's tiles
    ("linear", {}, "flash3"),  # chunk-local keys: the cascade's own chunk, no split
    ("mla", {}, "flash3"),
    ("cca", {}, "flash2"),
    ("examples/cascades/sliding_window.ein", {}, "flash2"),
    ("examples/cascades/sigmoid.ein", {}, "mem_efficient"),
]


@pytest.mark.parametrize(("name", "params", "df"), VARIANTS)
def test_variants_run_back_from_their_mapping(h100, name, params, df):
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    wl = str(root / name) if name.startswith("examples/") else name
    w = resolve_workload(wl, params)
    _, plan = plan_for(h100, w, dataflow=df)
    roles = attention_roles(w.cascade)
    again = Mapping.from_yaml(plan.mapping.to_yaml())
    assert again == plan.mapping
    a = simulate_workload(h100, w, dataflow=df, engine="analytic").result
    b = simulate_workload(h100, w, mapping=again, engine="analytic").result
    assert (a.cycles, a.energy_j) == (b.cycles, b.energy_j)
    core = next(g for g in plan.mapping.groups if roles.score in g.einsums)
    assert core.levels[0].spatial  # a grid
    assert roles.score in core.einsums
    m = fused_mapping(w, h100, roles, RECIPES[df], block_m=64, block_n=32, stages=1)
    other = gpu_mapping_plan(w, m, h100)
    assert other.meta["cta"]["block_n"] <= 32


def test_unfused_mapping_runs_as_gpu_unfused(h100):
    w = _mha(S=2048)
    m = unfused_mapping(w, h100)
    assert m.name == "gpu_unfused"
    assert len(m.groups) > 1
    assert [g.einsums for g in m.groups][0] == ("QK",)
    a = simulate_workload(h100, w, dataflow="gpu_unfused", engine="analytic").result
    b = simulate_workload(h100, w, mapping=m, engine="analytic").result
    assert (a.cycles, a.energy_j) == (b.cycles, b.energy_j)
    d = m.to_dict()
    d["groups"][0]["einsums"] = ["QK", "LM"]  # a GEMM fused with an element-wise kernel
    d["groups"] = [d["groups"][0], *d["groups"][1:]]
    d["groups"][1]["einsums"] = [e for e in d["groups"][1]["einsums"] if e != "LM"]
    with pytest.raises(MappingError):
        gpu_mapping_plan(w, Mapping.from_dict(d), h100)


def test_a_fused_mapping_refuses_a_three_pass_cascade(h100):
    w3 = resolve_workload("mha", {"S": 2048, "passes": 3})
    w1 = _mha(S=2048)
    _, plan = plan_for(h100, w1, dataflow="flash2")
    with pytest.raises(MappingError, match="gpu_unfused"):
        gpu_mapping_plan(w3, plan.mapping, h100)


@pytest.mark.parametrize("df", ["flash2", "flash3", "mem_efficient"])
@pytest.mark.parametrize("d", [64, 128])
def test_recipe_fields_rebuild_the_familys_own_cta(h100, df, d):
    """The FusedRecipe fields (instruction path, warp specialization, stages, loads in flight,
    shared-memory layout) are the family's facts: from them alone the family's own tile gets
    the CTA the library heuristics give (shared memory, bytes in flight, path, overlap,
    occupancy)."""
    from archsim.gpu import fwd_tiling
    from mappings._gpu._common import model_for
    from mappings._gpu._mapping import CtaShape, recipe_cta

    model = model_for(h100)
    r = RECIPES[df]
    base = fwd_tiling(r.family, model, d, False, 2)
    shape = CtaShape(r, 0, base.block_m, base.block_n, r.kv_stages, (), d, d)
    assert recipe_cta(shape, model, 2, base) == base


def test_a_spatial_mapping_on_a_gpu_and_a_gpu_mapping_on_an_array_are_refused(h100):
    w = _mha()
    _, fm = plan_for(load_arch("fusemax"), w, dataflow="fusemax")
    with pytest.raises(MappingError):  # not a GPU kernel: the generic lowering refuses it
        simulate_workload(h100, w, mapping=fm.mapping)
    with pytest.raises(MappingError, match="names its kernel family"):
        gpu_mapping_plan(w, fm.mapping, h100)
    _, f2 = plan_for(h100, w, dataflow="flash2")
    with pytest.raises(MappingError, match="unknown compute unit"):
        simulate_workload("fusemax", w, mapping=f2.mapping)


@pytest.mark.parametrize(("workload", "sets"), [("mha", ["--set", "S=1024"]), ("swiglu", [])])
def test_gpu_unfused_saves_its_kernel_split_and_runs_it_back(tmp_path, capsys, workload, sets):
    from archsim.cli import main

    f = tmp_path / "u.yaml"
    args = ["simulate", "--arch", "h100", "--workload", workload, *sets, "--json"]
    assert main([*args, "--dataflow", "gpu_unfused", "--save-mapping", str(f)]) == 0
    first = json.loads(capsys.readouterr().out)
    assert main([*args, "--mapping", str(f)]) == 0
    again = json.loads(capsys.readouterr().out)
    assert (first["cycles"], first["energy_j"]) == (again["cycles"], again["energy_j"])
