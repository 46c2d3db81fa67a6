"""Decode, sparse and GEMM GPU dataflows written as a whole-cascade Mapping, and run back.

``split_kv``, ``lean`` and the decode kernels of ``flash2`` / ``flash3`` / ``mem_efficient``
(query length 1), ``block_sparse`` / ``fg_sparse`` and ``gpu_gemm`` plans carry their
Mapping: the grid at HBM (split-KV's key split as spatial factors of the key's outer rank,
lean's stream-K as temporal loops, the GEMM's split-K on the K rank), inputs in SMEM, the
tile in registers, the sparsity binding in ``skip``. The saved YAML runs back to the same
cycles; an edited tile is capacity-checked with an error naming the level; a mapping written
for another cascade is refused.
"""

from __future__ import annotations

import json
import math

import pytest

from archsim import estimate, load_arch, simulate
from archsim.errors import MappingError
from mappings import Mapping
from mappings._api import plan_for, resolve_workload
from mappings._gpu._mapping import GPU_MAPPINGS, gpu_mapping_plan


@pytest.fixture(scope="module")
def h100():
    return load_arch("h100")


def _cycles(plan, arch, engine="analytic"):
    """What ``simulate_workload`` reports for a plan: the engine's cycles and the plan's
    board energy."""
    res = simulate(plan.program, arch) if engine == "event" else estimate(plan.program, arch)
    if plan.finish is not None:
        res = plan.finish(res)
    return res.cycles, res.energy_j


def _run_back(w, plan, arch, engine="analytic"):
    """The plan's mapping through YAML and back, run; (recipe's result, mapping's result)."""
    text = plan.mapping.to_yaml()
    again = Mapping.from_yaml(text)
    assert again == plan.mapping
    return _cycles(plan, arch, engine), _cycles(gpu_mapping_plan(w, again, arch), arch, engine)


DECODE = [
    ("decode", {}, "split_kv", {}),
    ("decode", {}, "split_kv", {"splits": 3}),
    ("decode", {"B": 64}, "split_kv", {}),  # one split: FA2's forward kernel
    ("decode", {}, "lean", {}),
    ("decode", {}, "flash2", {}),
    ("decode", {}, "flash3", {}),
    ("decode", {}, "mem_efficient", {}),
    ("gqa", {"Sq": 1, "Skv": 8192}, "split_kv", {}),
    ("gqa", {"Sq": 4, "Skv": 8192}, "lean", {}),  # speculative decode: 4 query positions
    ("mla", {"B": 4, "H": 128, "Sq": 1, "Skv": 8192}, "split_kv", {}),
    ("mla", {"B": 4, "H": 128, "Sq": 1, "Skv": 8192}, "lean", {}),
]
SPARSE = [
    ("block_sparse", {}, "block_sparse", {}, "block_sparse"),
    ("block_sparse", {"causal": True, "density": 0.25}, "block_sparse", {}, "block_sparse"),
    ("block_sparse", {}, "block_sparse", {"family": "flash3"}, "block_sparse:flash3"),
    ("block_sparse", {"block": 128}, "block_sparse", {"family": "flash2"}, "block_sparse:flash2"),
    ("fg_sparse", {}, "fg_sparse", {}, "fg_sparse"),
    ("fg_sparse", {"block": 16}, "fg_sparse", {}, "fg_sparse"),
]
GEMM = [
    ({"M": 4096, "N": 4096, "K": 4096}, {}),
    ({"M": 16, "N": 4096, "K": 4096}, {}),  # a padded 64-row tile
    ({"M": 64, "N": 64, "K": 16384}, {}),  # split-K 16
    ({"M": 4096, "N": 4096, "K": 4096}, {"tile": "128x128", "split_k": 2}),
    ({"M": 2500, "N": 2500, "K": 2500}, {}),  # misaligned rows: register-staged, 32-wide K step
]


@pytest.mark.parametrize(("name", "params", "df", "knobs"), DECODE)
def test_decode_plans_carry_their_mapping_and_it_runs_back(h100, name, params, df, knobs):
    w = resolve_workload(name, params)
    _, plan = plan_for(h100, w, dataflow=df, knobs=knobs)
    assert plan.mapping is not None
    assert plan.mapping.name == df
    a, b = _run_back(w, plan, h100)
    assert a == b


@pytest.mark.parametrize(("name", "params", "df", "knobs", "mname"), SPARSE)
def test_sparse_plans_carry_their_mapping_and_it_runs_back(h100, name, params, df, knobs, mname):
    w = resolve_workload(name, params)
    _, plan = plan_for(h100, w, dataflow=df, knobs=knobs)
    m = plan.mapping
    assert m.name == mname
    core = m.groups[0]
    skip = "slice" if df == "fg_sparse" else "block"
    assert set(core.skip) == {"condition", skip}  # the sparsity binding
    assert core.depth == 3  # three K/V stages in shared memory
    a, b = _run_back(w, plan, h100)
    assert a == b


@pytest.mark.parametrize(("params", "knobs"), GEMM)
def test_gemm_plans_carry_their_mapping_and_it_runs_back(h100, params, knobs):
    w = resolve_workload("gemm", params)
    _, plan = plan_for(h100, w, dataflow="gpu_gemm", knobs=knobs)
    (g,) = plan.mapping.groups
    hbm, smem, rf = g.levels
    cta = plan.meta["cta"]
    assert rf.temporal.get("m", 1) == min(cta["block_m"], params["M"])
    assert rf.temporal.get("n", 1) == min(cta["block_n"], params["N"])
    assert rf.temporal.get("k", 1) == cta["block_k"]
    assert hbm.spatial.get("k", 1) == plan.meta["split_k"]
    assert g.depth == cta["stages"]
    assert set(smem.keep) == {"A", "B"}
    a, b = _run_back(w, plan, h100)
    assert a == b


@pytest.mark.parametrize("df", ["split_kv", "lean", "block_sparse", "gpu_gemm"])
def test_run_back_is_exact_on_the_event_engine_too(h100, df):
    name, params = {
        "split_kv": ("gqa", {"Sq": 1, "Skv": 8192}),
        "lean": ("decode", {}),
        "block_sparse": ("block_sparse", {"Sq": 2048, "Skv": 2048}),
        "gpu_gemm": ("gemm", {"M": 2048, "N": 2048, "K": 2048}),
    }[df]
    w = resolve_workload(name, params)
    _, plan = plan_for(h100, w, dataflow=df)
    a, b = _run_back(w, plan, h100, engine="event")
    assert a == b


def test_split_kv_mapping_is_the_key_split_and_the_gqa_packing(h100):
    w = resolve_workload("gqa", {"Sq": 1, "Skv": 8192})
    _, plan = plan_for(h100, w, dataflow="split_kv")
    m = plan.mapping
    (core,) = m.groups
    hbm, smem, rf = core.levels
    splits, bn = plan.meta["splits"], plan.meta["cta"]["block_n"]
    assert m.splits == {"m": bn}  # m -> m1, m0 with m0 the key tile
    assert rf.temporal["m0"] == bn
    # m1 = splits CTAs (spatial) x chunk trips (temporal): 8192 / 128 = 64 key tiles
    assert hbm.spatial["m1"] == splits == 32
    assert hbm.temporal["m1"] * splits == 8192 // bn
    assert hbm.spatial["hkv"] == 8  # one K/V stream per CTA row
    assert rf.temporal["g"] == 4  # the 4 query heads of a K/V head packed in one CTA
    assert "g" not in hbm.spatial
    assert set(smem.keep) == {"Q", "K", "V"}
    assert core.depth == 1


def test_lean_mapping_is_its_stream_k_loop_without_a_grid(h100):
    w = resolve_workload("decode", {"B": 2})
    _, plan = plan_for(h100, w, dataflow="lean")
    hbm = plan.mapping.groups[0].levels[0]
    assert hbm.spatial == {}
    assert hbm.order == ("b", "h", "m1")  # (stream, key tile), dealt out in order
    assert hbm.temporal == {"b": 2, "h": 32, "m1": 4096 // plan.meta["cta"]["block_n"]}
    d = plan.mapping.to_dict()
    d["groups"][0]["levels"][0]["spatial"] = {"h": 32}
    d["groups"][0]["levels"][0]["temporal"].pop("h")
    with pytest.raises(MappingError, match="stream-K") as e:
        gpu_mapping_plan(w, Mapping.from_dict(d), h100)
    assert "groups[0].levels[0].spatial" in str(e.value)


def _rekey(m: Mapping, *, bn: int | None = None, splits: int | None = None, key: int) -> Mapping:
    """A decode mapping with another key tile or split count (split, RF, HBM factors)."""
    d = m.to_dict()
    g = d["groups"][0]
    hbm, rf = g["levels"][0], g["levels"][2]
    bn = bn or d["splits"]["m"]
    s = splits or hbm.get("spatial", {}).get("m1", 1)
    d["splits"]["m"] = bn
    rf["temporal"]["m0"] = bn
    hbm.setdefault("spatial", {})["m1"] = s
    hbm["temporal"]["m1"] = math.ceil(key // bn / s)
    if hbm["temporal"]["m1"] == 1:
        hbm["temporal"].pop("m1")
    if s == 1:
        hbm["spatial"].pop("m1")
    return Mapping.from_dict(d)


def test_an_edited_split_count_or_key_tile_runs_and_is_capacity_checked(h100):
    w = resolve_workload("decode", {})
    _, plan = plan_for(h100, w, dataflow="split_kv")
    base = _cycles(plan, h100)[0]
    two = gpu_mapping_plan(w, _rekey(plan.mapping, splits=2, key=4096), h100)
    assert two.meta["splits"] == 2
    assert _cycles(two, h100)[0] != base
    # the same split as the knob gives the knob's plan
    _, knob = plan_for(h100, w, dataflow="split_kv", knobs={"splits": 2})
    assert _cycles(knob, h100) == _cycles(two, h100)
    small = gpu_mapping_plan(w, _rekey(plan.mapping, bn=64, key=4096), h100)
    assert small.meta["cta"]["block_n"] == 64
    assert small.meta["cta"]["smem_bytes"] < plan.meta["cta"]["smem_bytes"]
    with pytest.raises(MappingError) as e:  # 64 x 128 Q + 512 keys of K and V, bf16
        gpu_mapping_plan(w, _rekey(plan.mapping, bn=512, splits=2, key=4096), h100)
    msg = str(e.value)
    assert "levels[1] (SMEM)" in msg
    assert "278,528 B" in msg
    assert "232,448 B per CTA" in msg
    with pytest.raises(MappingError, match="overshoot"):  # more splits than key tiles
        gpu_mapping_plan(w, _rekey(plan.mapping, splits=64, key=4096), h100)


def test_decode_structures_a_kernel_cannot_run_are_refused(h100):
    w = resolve_workload("gqa", {"Sq": 1, "Skv": 8192})
    _, eff = plan_for(h100, w, dataflow="mem_efficient")
    assert eff.mapping.groups[0].levels[0].spatial["g"] == 4  # one query head per CTA
    _, sk = plan_for(h100, w, dataflow="split_kv")
    d = sk.mapping.to_dict()
    d["name"] = "mem_efficient"
    d["groups"][0]["levels"][0]["spatial"].pop("m1")
    d["groups"][0]["levels"][0]["temporal"]["m1"] = 64
    with pytest.raises(MappingError, match="one query head per CTA") as e:
        gpu_mapping_plan(w, Mapping.from_dict(d), h100)
    assert "factors.g" in str(e.value)
    d = sk.mapping.to_dict()
    d["groups"][0]["units"]["SLNV"] = "cuda"
    with pytest.raises(MappingError, match="tensor cores") as e:
        gpu_mapping_plan(w, Mapping.from_dict(d), h100)
    assert "units.SLNV" in str(e.value)


def test_a_mapping_for_another_cascade_is_refused(h100):
    gqa = resolve_workload("gqa", {"Sq": 1, "Skv": 8192})
    mha = resolve_workload("decode", {"Skv": 8192})
    _, sk = plan_for(h100, gqa, dataflow="split_kv")
    with pytest.raises(MappingError, match="hkv|g"):  # ranks the MHA cascade lacks
        gpu_mapping_plan(mha, sk.mapping, h100)
    longer = resolve_workload("gqa", {"Sq": 1, "Skv": 16384})
    with pytest.raises(MappingError, match="do not cover"):
        gpu_mapping_plan(longer, sk.mapping, h100)
    prefill = resolve_workload("gqa", {"Sq": 2048, "Skv": 8192})
    with pytest.raises(MappingError, match="query length <= 16"):
        gpu_mapping_plan(prefill, sk.mapping, h100)
    sparse = resolve_workload("block_sparse", {})
    _, bs = plan_for(h100, sparse, dataflow="block_sparse")
    with pytest.raises(MappingError, match="no block sparsity"):
        gpu_mapping_plan(resolve_workload("mha", {"S": 4096}), bs.mapping, h100)
    _, fg = plan_for(h100, resolve_workload("fg_sparse", {}), dataflow="fg_sparse")
    with pytest.raises(MappingError, match="cannot skip the block"):  # M x 1 slices only
        gpu_mapping_plan(sparse, fg.mapping, h100)
    g = resolve_workload("gemm", {"M": 4096, "N": 4096, "K": 4096})
    _, gm = plan_for(h100, g, dataflow="gpu_gemm")
    with pytest.raises(MappingError, match="overshoot|do not cover"):
        gpu_mapping_plan(
            resolve_workload("gemm", {"M": 512, "N": 4096, "K": 4096}), gm.mapping, h100
        )
    with pytest.raises(MappingError, match="single contraction"):
        gpu_mapping_plan(resolve_workload("mha", {"S": 1024}), gm.mapping, h100)


def test_an_edited_sparse_tile_is_capacity_checked(h100):
    w = resolve_workload("block_sparse", {})
    _, plan = plan_for(h100, w, dataflow="block_sparse")
    d = plan.mapping.to_dict()
    d["groups"][0]["depth"] = 2
    two = gpu_mapping_plan(w, Mapping.from_dict(d), h100)
    stage = 64 * (128 + 128) * 2  # one stage: K and V tiles of 64 keys x 128 features, bf16
    assert two.meta["cta"]["smem_bytes"] == plan.meta["cta"]["smem_bytes"] - stage
    d["groups"][0]["depth"] = 8
    with pytest.raises(MappingError) as e:
        gpu_mapping_plan(w, Mapping.from_dict(d), h100)
    assert "levels[1] (SMEM)" in str(e.value)
    assert "8 stages of K/V" in str(e.value)
    d["groups"][0]["depth"] = 3
    d["groups"][0]["skip"] = ["condition", "slice"]  # the Flex kernel skips blocks, not slices
    with pytest.raises(MappingError, match="cannot skip"):
        gpu_mapping_plan(w, Mapping.from_dict(d), h100)
    d["groups"][0]["skip"] = ["condition"]  # no sparsity binding: the masked scores computed
    with pytest.raises(MappingError, match="skips block sparsity"):
        gpu_mapping_plan(w, Mapping.from_dict(d), h100)
    assert plan.meta["live_trip_fraction"] == pytest.approx(0.5, abs=0.02)


def test_an_edited_gemm_tile_runs_and_is_capacity_checked(h100):
    w = resolve_workload("gemm", {"M": 4096, "N": 4096, "K": 4096})
    _, plan = plan_for(h100, w, dataflow="gpu_gemm")
    assert plan.meta["tile"] == "128x256x64"

    def edit(bm, bn, depth=4):
        d = plan.mapping.to_dict()
        hbm, rf = d["groups"][0]["levels"][0], d["groups"][0]["levels"][2]
        hbm["spatial"].update(m=4096 // bm, n=4096 // bn)
        rf["temporal"].update(m=bm, n=bn)
        d["groups"][0]["depth"] = depth
        return Mapping.from_dict(d)

    sq = gpu_mapping_plan(w, edit(128, 128), h100)
    _, knob = plan_for(h100, w, dataflow="gpu_gemm", knobs={"tile": "128x128"})
    assert sq.meta["tile"] == "128x128x64"
    assert _cycles(sq, h100) == _cycles(knob, h100)
    with pytest.raises(MappingError) as e:  # 4 stages x (256 + 256) x 64 x 2 B
        gpu_mapping_plan(w, edit(256, 256), h100)
    assert "levels[1] (SMEM)" in str(e.value)
    assert "262,144 B" in str(e.value)
    with pytest.raises(MappingError) as e:  # 512 x 256 fp32 accumulators: 512 KiB
        gpu_mapping_plan(w, edit(512, 256, depth=1), h100)
    assert "levels[2] (RF)" in str(e.value)
    assert "524,288 B" in str(e.value)


def test_a_batched_gemm_maps_its_batch_ranks_to_the_grid(h100, tmp_path):
    f = tmp_path / "bmm.ein"
    f.write_text(
        "param B = 12\nparam S = 48\nparam K = 4096\nparam N = 4096\n"
        "tensor X[b,s,k] : bf16\ntensor W[k,n] : bf16\n"
        "Y[b,s,n] = X[b,s,k] * W[k,n]\n"
    )
    w = resolve_workload(str(f), {})
    _, plan = plan_for(h100, w, dataflow="gpu_gemm")
    (g,) = plan.mapping.groups
    # M = b x s = 576 rows in one index: the CTA tile's rows factor over s (48) and b
    bm = plan.meta["cta"]["block_m"]
    assert g.tile("s", 1) * g.tile("b", 1) == bm
    a, b = _run_back(w, plan, h100)
    assert a == b


def test_decode_recipe_fields_rebuild_the_familys_own_cta(h100):
    """The DecodeRecipe's FusedRecipe fields (instruction path, warp specialization, stages,
    loads in flight, shared-memory layout) give, for the family's own tile, the CTA the
    library heuristics give."""
    from mappings._gpu._common import model_for
    from mappings._gpu._mapping import CtaShape, recipe_cta
    from mappings._gpu.decode import DECODE_RECIPES, own_tiling

    model = model_for(h100)
    for recipe in DECODE_RECIPES.values():
        for d in (64, 128):
            for splits in (1, 2):
                base, cta = own_tiling(recipe, model, d, 2, splits=splits)
                shape = CtaShape(cta, 0, base.block_m, base.block_n, cta.kv_stages, (), d, d)
                assert recipe_cta(shape, model, 2, base) == base


def test_gemm_recipe_fields_are_the_heuristics_pipeline(h100):
    from archsim.gpu import choose_gemm_config
    from mappings._gpu._common import model_for
    from mappings._gpu.gemm import GEMM_RECIPE

    model = model_for(h100)
    for n, copy in ((4096, "tma"), (1, "tma"), (2500, "ldg")):
        own = choose_gemm_config(n, 4096 if n == 1 else n, 4096 if n == 1 else n, model)
        pipe = GEMM_RECIPE.pipeline(own.copy, model, own.block_m, own.block_n, 2)
        assert (own.copy, own.block_k, own.stages) == (copy, *pipe)
    # a forced tile gets its copy path's pipeline, as the heuristic would build it: TMA stages
    # fill shared memory (cuBLAS nvjet_sm90_tst_128x128_64x6), register-staged K step 32 with
    # 2 buffers
    for n, tile, cta in ((4096, "128x128", (64, 6, "tma")), (2500, "128x64", (32, 2, "ldg"))):
        w = resolve_workload("gemm", {"M": n, "N": n, "K": n})
        _, plan = plan_for(h100, w, dataflow="gpu_gemm", knobs={"tile": tile})
        got = plan.meta["cta"]
        assert (got["block_k"], got["stages"], got["copy"]) == cta


def test_a_knob_the_mapping_cannot_carry_leaves_the_plan_without_one(h100):
    w = resolve_workload("fg_sparse", {})
    _, own = plan_for(h100, w, dataflow="fg_sparse")
    _, other = plan_for(h100, w, dataflow="fg_sparse", knobs={"gather_cycles_per_row": 9.0})
    assert own.mapping is not None
    assert other.mapping is None
    g = resolve_workload("gemm", {"M": 100, "N": 4096, "K": 4096})
    _, padded = plan_for(h100, g, dataflow="gpu_gemm", knobs={"tile": "128x128"})
    assert padded.mapping is None  # a 128-row tile over 100 rows is not a per-rank tiling
    assert padded.meta["tile"] == "128x128x64"


def test_every_gpu_mapping_name_runs(h100):
    cases = {
        "flash2": ("mha", {"S": 1024}, "flash2", {}),
        "flash3": ("mha", {"S": 1024}, "flash3", {}),
        "mem_efficient": ("mha", {"S": 1024}, "mem_efficient", {}),
        "gpu_unfused": ("mha", {"S": 1024}, "gpu_unfused", {}),
        "split_kv": ("decode", {}, "split_kv", {}),
        "lean": ("decode", {}, "lean", {}),
        "block_sparse": ("block_sparse", {}, "block_sparse", {}),
        "block_sparse:flash3": ("block_sparse", {}, "block_sparse", {"family": "flash3"}),
        "block_sparse:flash2": ("block_sparse", {}, "block_sparse", {"family": "flash2"}),
        "fg_sparse": ("fg_sparse", {}, "fg_sparse", {}),
        "gpu_gemm": ("gemm", {"M": 1024, "N": 1024, "K": 1024}, "gpu_gemm", {}),
        "linear_chunked": ("linear", {"S": 1024}, "linear_chunked", {}),
        "linear_chunked:staged": ("linear", {"S": 1024}, "linear_chunked", {"staged": 1}),
    }
    assert set(cases) == set(GPU_MAPPINGS)
    for name, (wl, params, df, knobs) in cases.items():
        w = resolve_workload(wl, params)
        _, plan = plan_for(h100, w, dataflow=df, knobs=knobs)
        assert plan.mapping.name == name
        assert gpu_mapping_plan(w, plan.mapping, h100).mapping == plan.mapping


def test_the_family_decode_mapping_round_trips_through_the_cli(tmp_path, capsys):
    from archsim.cli import main

    f = tmp_path / "d.yaml"
    args = ["simulate", "--arch", "h100", "--workload", "gqa", "--json"]
    args += ["--set", "Sq=1", "--set", "Skv=8192"]
    assert main([*args, "--dataflow", "flash3", "--save-mapping", str(f)]) == 0
    first = json.loads(capsys.readouterr().out)
    assert "m1" in f.read_text()
    assert main([*args, "--mapping", str(f)]) == 0
    again = json.loads(capsys.readouterr().out)
    assert (first["cycles"], first["energy_j"]) == (again["cycles"], again["energy_j"])


@pytest.mark.parametrize(
    ("workload", "sets", "df"),
    [
        ("gqa", ["--set", "Sq=1", "--set", "Skv=8192"], "split_kv"),
        ("decode", [], "lean"),
        ("block_sparse", [], "block_sparse"),
        ("fg_sparse", [], "fg_sparse"),
        ("gemm", ["--set", "M=1024"], "gpu_gemm"),
    ],
)
def test_save_mapping_then_mapping_from_the_cli(tmp_path, capsys, workload, sets, df):
    from archsim.cli import main

    f = tmp_path / "m.yaml"
    args = ["simulate", "--arch", "h100", "--workload", workload, *sets, "--json"]
    assert main([*args, "--dataflow", df, "--save-mapping", str(f)]) == 0
    first = json.loads(capsys.readouterr().out)
    assert main([*args, "--mapping", str(f)]) == 0
    again = json.loads(capsys.readouterr().out)
    assert (first["cycles"], first["energy_j"]) == (again["cycles"], again["energy_j"])


def test_gpu_unfused_without_element_wise_fusion_is_one_group_per_einsum(h100):
    w = resolve_workload("mha", {"S": 1024})
    _, fused = plan_for(h100, w, dataflow="gpu_unfused")
    _, plan = plan_for(h100, w, dataflow="gpu_unfused", knobs={"fuse_elementwise": False})
    names = [e.name for e in w.cascade.einsums]
    assert [g.einsums for g in plan.mapping.groups] == [(n,) for n in names]
    assert len(fused.mapping.groups) < len(names)
    a, b = _run_back(w, plan, h100)
    assert a == b
    # intermediates kept inside a fused element-wise kernel are not spilled
    assert fused.passes.spill_bytes < plan.passes.spill_bytes


def test_more_packed_query_rows_than_the_ctas_mma_rows_are_refused(h100):
    w = resolve_workload("mla", {"B": 4, "H": 128, "Sq": 1, "Skv": 8192})
    _, plan = plan_for(h100, w, dataflow="split_kv")
    d = plan.mapping.to_dict()
    core = next(g for g in d["groups"] if "QKC" in g["einsums"])
    assert core["levels"][0]["spatial"]["h"] == 2  # 128 heads in CTAs of 64 MMA rows
    assert core["levels"][2]["temporal"]["h"] == 64
    core["levels"][0]["spatial"].pop("h")
    core["levels"][2]["temporal"]["h"] = 128
    with pytest.raises(MappingError, match="exceed its 64 MMA rows") as e:
        gpu_mapping_plan(w, Mapping.from_dict(d), h100)
    assert "factors.h" in str(e.value)
    core["levels"][0]["spatial"]["h"] = 4  # 32 heads per CTA: twice the CTAs, same work
    core["levels"][2]["temporal"]["h"] = 32
    quarter = gpu_mapping_plan(w, Mapping.from_dict(d), h100)
    assert quarter.meta["cta"]["heads_per_cta"] == 32
    assert quarter.meta["ops"] == plan.meta["ops"]
    assert _cycles(quarter, h100)[0] != _cycles(plan, h100)[0]


def test_a_gemm_off_the_tensor_cores_is_refused(h100):
    w = resolve_workload("gemm", {"M": 1024, "N": 1024, "K": 1024})
    _, plan = plan_for(h100, w, dataflow="gpu_gemm")
    d = plan.mapping.to_dict()
    d["groups"][0]["compute"] = "cuda"
    with pytest.raises(MappingError, match="tensor cores") as e:
        gpu_mapping_plan(w, Mapping.from_dict(d), h100)
    assert "groups[0].compute" in str(e.value)


def test_sparse_recipe_fields_rebuild_the_kernels_shared_memory(h100):
    """Three K/V stages of the SparseRecipe give the sparse tiling's shared memory."""
    from archsim.gpu.attention import _sparse_tiling
    from mappings._gpu._common import model_for
    from mappings._gpu._mapping import CtaShape, recipe_cta
    from mappings._gpu.sparse import SPARSE_KINDS

    model = model_for(h100)
    for sp in SPARSE_KINDS.values():
        for block in (16, 64, 128):
            base = _sparse_tiling(model, sp.kernel.family, 128, block, 2)
            r = sp.kernel
            shape = CtaShape(r, 0, base.block_m, base.block_n, r.kv_stages, (), 128, 128)
            cta = recipe_cta(shape, model, 2, base)
            assert (cta.smem_bytes, cta.regs, cta.threads, cta.path) == (
                base.smem_bytes,
                base.regs,
                base.threads,
                base.path,
            )
