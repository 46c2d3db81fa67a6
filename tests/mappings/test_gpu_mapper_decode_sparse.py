"""The fusion mapper on a GPU searches decode and sparse kernels (issue 11 item 4, issue 10).

For a decode cascade (MHA decode, GQA at query length 1, MLA decode) it searches the decode
kernels (split_kv, cuDNN's flash3 decode, lean, mem_efficient) over key tile, stages, query
heads per CTA and key split count; for a block / M x 1 slice sparse cascade the sparse kernels
over their tile and stages, skipping the cascade's sparsity. Invariants: every mapping
returned is valid and runs back (YAML, ``--mapping``) to the cycles reported; the best is no
slower than any recipe the space contains; the split count it returns is a local optimum.
"""

from __future__ import annotations

import json
import math

import pytest

from archsim import estimate, load_arch
from mappings import Mapping, simulate_workload
from mappings._api import resolve_workload
from mappings._fusion_search import FUSION_TIE_RTOL, fusion_mapper
from mappings._gpu._mapping import DECODE, FUSED, SPARSE, gpu_mapping_plan, streamed_key
from mappings._gpu._search_space import (
    SPLIT_GRID,
    canonical_splits,
    descend_splits,
)
from mappings._gpu.search import cta_label, explain_gpu, gpu_differences
from mappings._roles import attention_roles

DECODE_CASES = {
    "mha": ("decode", {"Skv": 32768}),
    "gqa": ("gqa", {"Sq": 1, "Skv": 32768}),
    "mla": ("mla", {"Sq": 1, "Skv": 32768}),
}
SPARSE_CASES = {
    "block": ("block_sparse", {}),
    "slice": ("fg_sparse", {}),
}
TOP = 12


@pytest.fixture(scope="module")
def h100():
    return load_arch("h100")


@pytest.fixture(scope="module")
def searched(h100):
    """(workload, every mapping evaluated best first, stats) per case, searched once."""
    cache: dict[str, tuple] = {}

    def get(case: str):
        if case not in cache:
            name, params = {**DECODE_CASES, **SPARSE_CASES}[case]
            w = resolve_workload(name, params)
            stats: dict = {}
            ranked = fusion_mapper(w, h100, top=100_000, rescore=1, stats=stats)
            cache[case] = (w, ranked, stats)
        return cache[case]

    return get


def _analytic(h100, w, **kw) -> float:
    return float(simulate_workload(h100, w, engine="analytic", **kw).result.cycles)


@pytest.mark.parametrize("case", list(DECODE_CASES))
def test_decode_searches_the_decode_kernels_and_beats_or_matches_every_recipe(h100, searched, case):
    w, ranked, stats = searched(case)
    best = ranked[0]
    assert best.mapping.name in (*DECODE, *FUSED)  # a decode kernel, not gpu_unfused
    # the recipes' own mappings are in the space, at the cycles their dataflow reports
    recipes = stats["recipes"]
    assert {"split_kv", "lean"} <= set(recipes)
    ran = {k: v for k, v in recipes.items() if isinstance(v, float)}
    for df, cycles in ran.items():
        assert cycles == _analytic(h100, w, dataflow=df)
        assert min(r.cycles for r in ranked) <= cycles
        assert best.cycles <= cycles * (1 + FUSION_TIE_RTOL)  # ranking ties within 1e-3
    # flash2 at query length 1 runs the split-KV kernel: kept once, as split_kv
    assert _analytic(h100, w, dataflow="flash2") == recipes["split_kv"]
    # the whole decode space was walked: CTA shapes that do not fit were dropped, and the
    # best CTA shapes' split counts refined after the grid
    assert stats["evaluated"] > 100
    assert stats["refined"] > 0
    total = sum(stats[k] for k in ("pruned", "refused", "duplicates", "evaluated"))
    assert total == stats["candidates"]


def test_mla_decode_recipes_that_cannot_fit_say_why_and_the_search_goes_on(searched):
    """MLA's 576-wide latent rows overflow the cuDNN decode CTA's shared memory; the cutlass
    kernel for head dims over 128 (``32x128_gmem``) walks the head dim in chunks with a fixed
    51,200 B (recorded at d=256), so it runs, and loses; the split-KV CTA with 64 query heads
    of the latent stream packed wins."""
    w, ranked, stats = searched("mla")
    assert "shared memory" in stats["recipes"]["flash3"]
    assert isinstance(stats["recipes"]["mem_efficient"], float)
    # the cuDNN CTA cannot exist at this head dim: no tile of it is in the answer
    assert "flash3" not in {r.mapping.name for r in ranked}
    assert stats["recipes"]["mem_efficient"] > ranked[0].cycles
    best = ranked[0].mapping
    assert best.name == "split_kv"
    core = next(g for g in best.groups if "QKC" in g.einsums)
    assert core.tile("h", 1) == 64  # 128 heads over one latent KV: 64 per CTA (its MMA rows)


@pytest.mark.parametrize("case", list(DECODE_CASES) + list(SPARSE_CASES))
def test_every_mapping_returned_runs_back_to_its_cycles(h100, searched, case):
    w, ranked, _ = searched(case)
    for r in ranked[:TOP]:
        again = Mapping.from_yaml(r.mapping.to_yaml())
        assert again == r.mapping
        plan = gpu_mapping_plan(w, again, h100)
        res = estimate(plan.program, h100)
        assert plan.finish(res).cycles == r.cycles
    best = ranked[0]
    ev = simulate_workload(h100, w, mapping=best.mapping, engine="event").result.cycles
    assert ev == best.simulated_cycles
    assert ev >= best.cycles * (1 - 1e-9)  # the event engine is never below the estimate


def _split_of(w, mapping) -> tuple[int, int]:
    """(key split count, key tile) of a decode mapping."""
    roles = attention_roles(w.cascade)
    g = next(gr for gr in mapping.groups if roles.score in gr.einsums)
    return int(g.levels[0].spatial.get(roles.key_outer, 1)), g.tile(roles.key_inner, 1)


@pytest.mark.parametrize("case", ["gqa", "mla"])
def test_the_best_split_count_is_a_local_optimum_over_canonical_counts(h100, searched, case):
    """Moving the best split-KV mapping's split count to the next canonical count either
    way (the walk's neighbours) is no faster."""
    from mappings._gpu.decode import decode_mapping

    w, ranked, _ = searched(case)
    roles = attention_roles(w.cascade)
    sk = next(r for r in ranked if r.mapping.name == "split_kv")
    s, bn = _split_of(w, sk.mapping)
    g = next(gr for gr in sk.mapping.groups if roles.score in gr.einsums)
    hpc = math.prod(g.tile(x, 1) for x in roles.query_heads)
    key_len = streamed_key(w, roles)[1]
    counts = canonical_splits(math.ceil(key_len / bn), 128)
    i = counts.index(s)
    for j in (i - 1, i + 1):
        if not 0 <= j < len(counts):
            continue
        m = decode_mapping(
            w, h100, roles, "split_kv", block_n=bn, splits=counts[j],
            heads_per_cta=hpc, stages=g.depth,
        )  # fmt: skip
        plan = gpu_mapping_plan(w, m, h100)
        assert plan.finish(estimate(plan.program, h100)).cycles >= sk.cycles


def test_gqa_decode_split_kv_wants_fewer_splits_than_fa2s_heuristic(h100, searched):
    """On GQA decode (8 K/V streams, 32k keys) the best split-KV mapping uses fewer CTAs than
    FA2's heuristic (which fills 2 x SMs slots); the search reaches a count off the grid."""
    w, ranked, _ = searched("gqa")
    sk = next(r for r in ranked if r.mapping.name == "split_kv")
    s, _ = _split_of(w, sk.mapping)
    rec = simulate_workload(h100, w, dataflow="split_kv", engine="analytic")
    assert s < rec.plan.meta["splits"]
    assert s not in SPLIT_GRID
    assert sk.cycles < rec.result.cycles


def test_speculative_decode_searches_prefill_and_decode_kernels(h100):
    """Four query positions: the prefill fused kernels and the decode kernels are both in the
    space, and the best beats or matches each recipe."""
    w = resolve_workload("gqa", {"Sq": 4, "Skv": 8192})
    stats: dict = {}
    ranked = fusion_mapper(w, h100, top=400, rescore=0, stats=stats)
    names = {r.mapping.name for r in ranked}
    assert {"split_kv", "lean"} <= names
    assert names & set(FUSED)
    for df in ("split_kv", "lean", "flash3"):
        assert min(r.cycles for r in ranked) <= _analytic(h100, w, dataflow=df)


@pytest.mark.parametrize("case", list(SPARSE_CASES))
def test_sparse_searches_the_sparse_kernels_with_the_sparsity_bound(h100, searched, case):
    w, ranked, stats = searched(case)
    skip = "block" if case == "block" else "slice"
    for r in ranked[:4]:
        assert r.mapping.name in SPARSE
        (core,) = r.mapping.groups
        assert skip in core.skip  # the kernel skips the cascade's dead blocks / slices
    ran = {k: v for k, v in stats["recipes"].items() if isinstance(v, float)}
    assert ran
    for df, cycles in ran.items():
        kind, _, fam = df.partition(":")
        knobs = {"family": fam} if fam else {}
        assert cycles == _analytic(h100, w, dataflow=kind, knobs=knobs)
        assert ranked[0].cycles <= cycles * (1 + FUSION_TIE_RTOL)
    # the dense families cannot skip the annotation: refused, with the reason kept
    assert any(
        why.startswith("flash3: ") and "cannot skip" in why for why in stats["refused_reasons"]
    )
    # a sparse kernel that skips the other kind refuses the cascade too
    other = "fg_sparse" if case == "block" else None
    if other:
        assert "cannot skip" in stats["recipes"][other]


def test_fg_sparse_finds_fewer_stages_than_the_recipe(h100, searched):
    """FG-Attn's gather keeps the consumers busy: one K/V stage is enough, and the smaller
    shared-memory footprint fits more work per SM than the recipe's three."""
    w, ranked, stats = searched("slice")
    best = ranked[0]
    assert best.mapping.name == "fg_sparse"
    assert best.mapping.groups[0].depth < 3
    assert best.cycles < stats["recipes"]["fg_sparse"]


@pytest.mark.parametrize("objective", ["energy", "edp", "pareto"])
def test_decode_objectives(h100, objective):
    w = resolve_workload("gqa", {"Sq": 1, "Skv": 8192})
    ranked = fusion_mapper(w, h100, objective=objective, top=6, rescore=0)
    assert ranked
    if objective == "pareto":
        cyc = [r.cycles for r in ranked]
        en = [r.energy_j for r in ranked]
        assert cyc == sorted(cyc)
        assert all(b < a for a, b in zip(en, en[1:], strict=False))
    else:
        vals = [r.objective for r in ranked]
        assert all(v >= vals[0] * (1 - FUSION_TIE_RTOL) for v in vals)


def test_explain_labels_and_differences_of_decode_mappings(h100, searched):
    w, ranked, _ = searched("gqa")
    sk = next(r for r in ranked if r.mapping.name == "split_kv")
    s, bn = _split_of(w, sk.mapping)
    assert cta_label(w, sk.mapping) == f"split_kv 4x{bn} x{sk.mapping.groups[0].depth} split {s}"
    lines = explain_gpu(w, sk.mapping, h100)
    assert any(f"m1 over {s} CTAs per K/V stream" in line for line in lines)
    assert any("4 query head(s) x 1 position(s)" in line for line in lines)
    assert any(line.startswith("bound: flash_fwd_splitkv_kernel ") for line in lines)
    assert any(line.startswith("bound: flash_fwd_splitkv_combine_kernel ") for line in lines)
    lean = next(r for r in ranked if r.mapping.name == "lean")
    assert "stream-K" in cta_label(w, lean.mapping)
    assert any("stream-K" in line for line in explain_gpu(w, lean.mapping, h100))
    diff = gpu_differences(w, sk.mapping, lean.mapping)
    assert "kernel split_kv (#1: lean)" in diff
    assert f"key splits {s} (#1: 1)" in diff


def test_canonical_split_counts_leave_no_cta_empty():
    for n in (1, 7, 64, 256, 1000):
        counts = canonical_splits(n, 128)
        assert counts[0] == 1
        assert counts[-1] == min(n, 128) or counts[-1] == math.ceil(n / math.ceil(n / 128))
        for s in counts:
            chunk = math.ceil(n / s)
            assert (s - 1) * chunk < n  # the last CTA gets at least one key tile
        # every other count has the chunk of a canonical count and empty CTAs or fewer CTAs
        chunks = {math.ceil(n / s) for s in range(1, min(n, 128) + 1)}
        assert {math.ceil(n / s) for s in counts} == chunks


def test_the_split_walk_stops_at_a_local_minimum():
    n = 256
    calls: list[int] = []

    def cost(s: int) -> float:
        calls.append(s)
        return (s - 11) ** 2 + 5.0

    assert descend_splits(16, n, 128, cost) == 11
    assert descend_splits(8, n, 128, cost) == 11
    assert descend_splits(11, n, 128, cost) == 11
    # a count that does not run stops the walk
    assert descend_splits(16, n, 128, lambda s: None if s < 15 else float(s)) == 15


def test_cli_maps_a_decode_and_its_yaml_runs_back(tmp_path, capsys):
    from archsim.cli import main

    f = tmp_path / "best.yaml"
    args = ["--arch", "h100", "--workload", "gqa", "--set", "Sq=1", "--set", "Skv=8192"]
    assert main(["map", *args, "--mapper", "fusion", "--top", "3", "--save", str(f)]) == 0
    out = capsys.readouterr().out
    assert "gpu_unfused" not in out.split("#2", 1)[0]
    assert "key split: " in out
    printed = out.split("--save writes it):\n", 1)[1].split("\n#2", 1)[0]
    m = Mapping.from_yaml("\n".join(line[6:] for line in printed.splitlines()))
    assert m == Mapping.from_yaml(f)
    assert m.name in (*DECODE, *FUSED)
    cycles = int(out.split("event ", 1)[1].split()[0].replace(",", ""))
    assert main(["simulate", *args, "--mapping", str(f), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["cycles"] == cycles


def test_cli_maps_a_block_sparse_cascade_and_its_yaml_runs_back(tmp_path, capsys):
    from archsim.cli import main

    f = tmp_path / "best.yaml"
    args = ["--arch", "h100", "--workload", "block_sparse", "--set", "Sq=2048", "--set", "Skv=2048"]
    assert main(["map", *args, "--mapper", "fusion", "--top", "2", "--save", str(f)]) == 0
    out = capsys.readouterr().out
    assert "sparsity: skips dead M x M blocks" in out
    m = Mapping.from_yaml(f)
    assert m.name in SPARSE
    cycles = int(out.split("event ", 1)[1].split()[0].replace(",", ""))
    assert main(["simulate", *args, "--mapping", str(f), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["cycles"] == cycles


def test_the_split_walk_finds_the_exhaustive_optimum_of_every_decode_kernel(h100):
    """On a small decode (GQA, 2k keys) every split count of every CTA shape is enumerated:
    each kernel's best equals the mapper's (grid + walk) best of that kernel."""
    from mappings._gpu._search_space import decode_candidate, decode_space
    from mappings._gpu.search import _Search

    w = resolve_workload("gqa", {"Sq": 1, "Skv": 2048})
    roles = attention_roles(w.cascade)
    full = _Search(w, h100, roles, "latency")
    configs = set()
    for c in decode_space(w, h100, roles):
        if c.config is None:
            full.run(c)
        else:
            configs.add(c.config)
    for cfg in configs:
        for s in canonical_splits(cfg.n_blocks, cfg.max_splits):
            full.run(
                decode_candidate(
                    w,
                    h100,
                    roles,
                    cfg.name,
                    block_n=cfg.block_n,
                    stages=cfg.stages,
                    heads_per_cta=cfg.heads_per_cta,
                    splits=s,
                )  # fmt: skip
            )
    exhaustive: dict[str, float] = {}
    for m, r, _ in full.scored:
        exhaustive[m.name] = min(exhaustive.get(m.name, math.inf), r.cycles)
    assert set(exhaustive) == {"split_kv", "flash3", "lean", "mem_efficient"}
    stats: dict = {}
    ranked = fusion_mapper(w, h100, top=100_000, rescore=0, stats=stats)
    assert stats["evaluated"] < full.counts["evaluated"]  # the walk evaluates fewer
    for name, cycles in exhaustive.items():
        assert min(r.cycles for r in ranked if r.mapping.name == name) == cycles
