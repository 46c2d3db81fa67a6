"""The fusion mapper on a GPU: fused kernel families x tiles x stages, and gpu_unfused.

It must find a one-pass fused mapping with the score tile on chip within 10% of flash2 (or
better) for mha at 4K..64K on h100; map sqa, gqa and a user's sliding-window cascade; for a
cascade no fused kernel takes, say why and still offer gpu_unfused; every mapping it returns
runs back with ``--mapping`` to the cycles it reported.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from archsim import load_arch, simulate
from archsim.errors import MappingError, SimulationTooLargeError
from mappings import Mapping, simulate_workload
from mappings._api import resolve_workload
from mappings._fusion_search import fusion_mapper
from mappings._gpu._mapping import FUSED, gpu_mapping_plan
from mappings._gpu.search import BLOCK_M, BLOCK_N, STAGES

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "cascades"


@pytest.fixture(scope="module")
def h100():
    return load_arch("h100")


def _flash2_cycles(h100, w) -> tuple[int, int]:
    """(analytic, event) cycles of the flash2 recipe."""
    a = simulate_workload(h100, w, dataflow="flash2", engine="analytic").result.cycles
    e = simulate_workload(h100, w, dataflow="flash2", engine="event").result.cycles
    return int(a), int(e)


@pytest.mark.parametrize("S", [4096, 16384, 65536])
def test_finds_a_one_pass_fused_mapping_within_10pct_of_flash2(h100, S):
    w = resolve_workload("mha", {"S": S})
    stats: dict = {}
    (best,) = fusion_mapper(w, h100, top=1, rescore=1, stats=stats)
    m = best.mapping
    assert m.name in FUSED
    (core,) = m.groups  # one fusion group: the whole cascade in one kernel
    assert "QK" in core.on_chip  # the score tile never goes to HBM
    assert "QK" in (core.levels[2].keep or ())
    plan = gpu_mapping_plan(w, m, h100)
    assert plan.passes.passes == 1
    a, e = _flash2_cycles(h100, w)
    assert best.cycles <= 1.10 * a
    if best.simulated_cycles is None:  # only when the event engine refuses it (minutes long)
        with pytest.raises(SimulationTooLargeError):
            simulate(plan.program, h100)
    else:
        assert best.simulated_cycles <= 1.10 * e
    # the whole space was built, the CTAs that do not fit were dropped before evaluation;
    # each recipe's own mapping is seeded and is also a point of the grid (one evaluation)
    fused = len(FUSED) * len(BLOCK_M) * len(BLOCK_N) * len(STAGES)
    assert stats["candidates"] == fused + 1 + len(FUSED)
    assert stats["duplicates"] == len(FUSED)
    assert stats["pruned"] > 0
    assert stats["evaluated"] + stats["pruned"] + stats["duplicates"] == stats["candidates"]
    for df in FUSED:  # never slower than a recipe (ranking ties within 1e-3)
        assert best.cycles <= stats["recipes"][df] * (1 + 1e-3)


def test_flash2_family_alone_matches_the_recipe_or_beats_it(h100):
    """Restricted to flash2's own family, the best mapping is no slower than the recipe's."""
    w = resolve_workload("mha", {"S": 8192})
    ranked = fusion_mapper(w, h100, top=400, rescore=0)
    flash2 = [r for r in ranked if r.mapping.name == "flash2"]
    a, _ = _flash2_cycles(h100, w)
    assert flash2[0].cycles <= a
    assert any(r.cycles == a for r in flash2)  # the recipe's own tile is in the space
    assert any(r.mapping.name == "gpu_unfused" for r in ranked)
    # the unfused kernels move the score matrix through HBM
    unf = next(r for r in ranked if r.mapping.name == "gpu_unfused")
    assert unf.dram_bytes > 10 * flash2[0].dram_bytes


@pytest.mark.parametrize(
    ("workload", "params"),
    [("sqa", {"S": 4096}), ("gqa", {"S": 4096}), (str(EXAMPLES / "sliding_window.ein"), {})],
)
def test_variants_and_a_users_cascade(h100, workload, params):
    w = resolve_workload(workload, params)
    ranked = fusion_mapper(w, h100, top=2, rescore=1)
    best = ranked[0]
    assert best.mapping.name in FUSED
    again = simulate_workload(h100, w, mapping=best.mapping, engine="event").result.cycles
    assert again == best.simulated_cycles
    ana = simulate_workload(h100, w, mapping=best.mapping, engine="analytic").result.cycles
    assert ana == best.cycles


def test_sliding_window_costs_follow_the_window(h100):
    f = str(EXAMPLES / "sliding_window.ein")
    narrow = fusion_mapper(resolve_workload(f, {"W": 256}), h100, top=1, rescore=0)[0]
    wide = fusion_mapper(resolve_workload(f, {"W": 2048}), h100, top=1, rescore=0)[0]
    assert wide.cycles > 2 * narrow.cycles


def test_a_cascade_no_fused_kernel_takes_gets_gpu_unfused_and_the_reason(h100):
    w = resolve_workload("mha", {"S": 2048, "passes": 3})
    stats: dict = {}
    ranked = fusion_mapper(w, h100, top=3, rescore=0, stats=stats)
    assert [r.mapping.name for r in ranked] == ["gpu_unfused"]
    assert any("3 passes" in why for why in stats["refused_reasons"])
    # and a fused mapping of it is refused with a MappingError naming the way out
    one = resolve_workload("mha", {"S": 2048})
    fused = fusion_mapper(one, h100, top=1, rescore=0)[0].mapping
    with pytest.raises(MappingError, match="gpu_unfused"):
        gpu_mapping_plan(w, fused, h100)


@pytest.mark.parametrize("objective", ["energy", "edp", "pareto"])
def test_objectives(h100, objective):
    w = resolve_workload("mha", {"S": 4096})
    ranked = fusion_mapper(w, h100, objective=objective, top=5, rescore=0)
    assert ranked
    if objective == "pareto":  # faster means more energy along the front
        cyc = [r.cycles for r in ranked]
        en = [r.energy_j for r in ranked]
        assert cyc == sorted(cyc)
        assert all(b < a for a, b in zip(en, en[1:], strict=False))
    else:
        vals = [r.objective for r in ranked]
        assert all(v >= vals[0] * (1 - 1e-3) for v in vals)
    with pytest.raises(MappingError, match="objective"):
        fusion_mapper(w, h100, objective="speed")


def test_cli_prints_the_best_explained_and_its_yaml_runs_back(tmp_path, capsys):
    from archsim.cli import main

    f = tmp_path / "best.yaml"
    args = ["--arch", "h100", "--workload", "mha", "--set", "S=4096"]
    assert main(["map", *args, "--mapper", "fusion", "--top", "2", "--save", str(f)]) == 0
    out = capsys.readouterr().out
    assert "searched" in out
    assert "mappings in" in out
    assert "passes over the keys: 1" in out
    assert "RF holds the score tile (QK" in out
    assert "buffer per CTA: SMEM" in out
    assert "bound: " in out
    assert "#2 " in out
    printed = out.split("--save writes it):\n", 1)[1].split("\n#2", 1)[0]
    m = Mapping.from_yaml("\n".join(line[6:] for line in printed.splitlines()))
    assert m == Mapping.from_yaml(f)
    cycles = int(out.split("event ", 1)[1].split()[0].replace(",", ""))
    assert main(["simulate", *args, "--mapping", str(f), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["cycles"] == cycles
