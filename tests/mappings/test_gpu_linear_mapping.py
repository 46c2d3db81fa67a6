"""``linear_chunked`` is a mapping recipe: it writes its kernels as a Mapping, and that mapping
(saved, edited, or as written) runs back through the one lowering entry.

Before, ``--save-mapping`` refused it ("not written as a whole-cascade mapping yet"), the last
GPU dataflow whose plan carried no mapping.
"""

from __future__ import annotations

import pytest

from archsim import load_arch
from archsim.errors import MappingError
from mappings import Mapping, lower, simulate_workload
from mappings._api import plan_for, resolve_workload

FORMS = [({}, 1), ({"materialize": 1}, 2), ({"staged": 1}, None)]


@pytest.fixture(scope="module")
def h100():
    return load_arch("h100")


def _plan(arch, name="linear", knobs=None, **params):
    w = resolve_workload(name, {"S": 4096, **params})
    _, plan = plan_for(arch, w, dataflow="linear_chunked", knobs=knobs or {})
    return w, plan


@pytest.mark.parametrize("name", ["linear", "gla"])
@pytest.mark.parametrize(("knobs", "groups"), FORMS)
def test_every_form_carries_its_mapping_and_lowers_back_to_its_program(h100, name, knobs, groups):
    w, plan = _plan(h100, name, knobs)
    m = plan.mapping
    assert m is not None
    if groups is None:  # staged: one launch group per Einsum, named as the form
        assert m.name == "linear_chunked:staged"
        assert len(m.groups) == len(w.cascade.einsums)
    else:
        assert m.name == "linear_chunked"
        assert len(m.groups) == groups
    again = Mapping.from_yaml(m.to_yaml())
    assert lower(w, again, h100) == plan.program


def test_the_chunk_walk_is_the_loop_and_batch_heads_value_blocks_the_grid(h100):
    w, plan = _plan(h100, "linear", {"value_block": 32}, H=8, D=128)
    (g,) = plan.mapping.groups
    hbm, smem, rf = g.levels
    assert hbm.spatial == {"h": 8, "f": 4}  # 128 value features in blocks of 32
    assert hbm.temporal == {"pc": 64, "mc": 64}  # 4096 / C=64 chunks, one walk
    assert rf.temporal == {"pi": 64, "mi": 64, "e": 128, "f": 32}
    assert set(smem.keep) == {"Q", "K", "V"}
    assert g.skip == ()  # the masked half of a chunk's scores is computed, not skipped
    assert plan.meta["ctas"] == 8 * 4
    assert plan.meta["chunks"] == 64


def test_an_edited_value_block_and_depth_run_as_the_knobs_would(h100):
    w, plan = _plan(h100)
    d = plan.mapping.to_dict()
    g = d["groups"][0]
    g["levels"][0]["spatial"]["f"] = 1
    g["levels"][2]["temporal"]["f"] = 128
    g["depth"] = 1
    edited = Mapping.from_dict(d)
    ran = simulate_workload(h100, w, mapping=edited, engine="analytic")
    _, knob_plan = plan_for(h100, w, dataflow="linear_chunked", knobs={"value_block": 128})
    assert ran.plan.meta["value_blocks"] == 1
    assert ran.plan.meta["stages"] == [1]
    # one value block: the scores are computed once per head, not four times
    assert ran.result.meta["ops"]["mac"] == knob_plan.program.meta["ops"]["mac"]
    flops = [p.meta["kernels"][0]["tensor_flops"] for p in (ran.plan, knob_plan)]
    assert flops[0] == flops[1]
    # one stage in flight instead of three: no faster
    three = simulate_workload(h100, w, mapping=knob_plan.mapping, engine="analytic")
    assert ran.result.cycles >= three.result.cycles


def test_saved_mapping_round_trips_through_the_cli_with_the_same_cycles(h100):
    w, plan = _plan(h100, knobs={"materialize": 1})
    direct = simulate_workload(h100, w, dataflow="linear_chunked", knobs={"materialize": 1})
    ran = simulate_workload(h100, w, mapping=plan.mapping)
    assert ran.result.cycles == direct.result.cycles


def test_a_change_the_kernels_cannot_run_is_refused_naming_the_field(h100):
    w, plan = _plan(h100)
    d = plan.mapping.to_dict()
    d["groups"][0]["skip"] = ["condition"]
    with pytest.raises(MappingError) as err:
        simulate_workload(h100, w, mapping=Mapping.from_dict(d), engine="analytic")
    assert err.value.path == "groups[0].skip"
    d = plan.mapping.to_dict()
    d["groups"] = d["groups"] * 3
    with pytest.raises(MappingError, match="one group"):
        simulate_workload(h100, w, mapping=Mapping.from_dict(d), engine="analytic")


def test_stages_that_overflow_shared_memory_are_refused_at_the_depth(h100):
    w, plan = _plan(h100, D=256)
    d = plan.mapping.to_dict()
    d["groups"][0]["depth"] = 64
    with pytest.raises(MappingError) as err:
        simulate_workload(h100, w, mapping=Mapping.from_dict(d), engine="analytic")
    assert err.value.path == "groups[0].depth"
    assert "shared memory" in str(err.value)


def test_a_softmax_cascade_is_refused_by_its_missing_chunk_structure(h100):
    w, plan = _plan(h100)
    mha = resolve_workload("mha", {"S": 4096})
    with pytest.raises(MappingError, match="chunked") as err:
        lower(mha, plan.mapping, h100)
    assert err.value.path == "workload.cascade"


def test_the_gpu_mapper_searches_the_chunked_kernels_and_beats_or_ties_each_form(h100):
    # the mapper offered only the softmax kernels and unfused for linear attention: its best
    # was flash2 at 4.5x the linear_chunked recipe's cycles
    from mappings._gpu.search import cta_label, gpu_search

    w = resolve_workload("linear", {"S": 8192})
    stats: dict = {}
    top = gpu_search(w, h100, top=40, rescore=0, stats=stats)
    recipes = stats["recipes"]
    assert {"linear_chunked", "linear_chunked:materialized", "linear_chunked:staged"} <= set(
        recipes
    )
    assert top[0].mapping.name == "linear_chunked"
    assert all(top[0].cycles <= float(v) for v in recipes.values() if not isinstance(v, str))
    labels = {cta_label(w, rm.mapping) for rm in top}
    # value blocks other than the recipe's 32 were evaluated
    assert any(lab.startswith("linear_chunked fused v") and " v32 " not in lab for lab in labels)
