"""The systolic ``gemm`` dataflow is a mapping recipe: its saved mapping runs back to the same
cycles, and the same mapping lowered as a plain loop nest keeps each fold's stationary operand.

Before, a saved weight- or input-stationary mapping ran back 108x slow: its buffer level named
no loop order, so the loop nest re-read the stationary operand for every streamed row, and
``--mapping`` lowered it as a loop nest instead of SCALE-Sim's folds.
"""

from __future__ import annotations

import pytest

from archsim import load_arch
from archsim.errors import MappingError
from mappings import Mapping, lower, simulate_workload
from mappings._api import plan_for, resolve_workload


@pytest.fixture(scope="module")
def fusemax():
    return load_arch("fusemax")


@pytest.mark.parametrize("stationary", ["output", "weight", "input"])
@pytest.mark.parametrize("operands", ["dram", "sram"])
def test_saved_gemm_mapping_runs_back_to_the_same_program(fusemax, stationary, operands):
    w = resolve_workload("gemm", {})
    knobs = {"stationary": stationary, "operands": operands}
    _, plan = plan_for(fusemax, w, dataflow="gemm", knobs=knobs)
    again = Mapping.from_yaml(plan.mapping.to_yaml())
    assert lower(w, again, fusemax) == plan.program
    ran = simulate_workload(fusemax, w, mapping=again, engine="analytic")
    direct = simulate_workload(fusemax, w, dataflow="gemm", knobs=knobs, engine="analytic")
    assert ran.result.cycles == direct.result.cycles


@pytest.mark.parametrize("stationary", ["output", "weight", "input"])
def test_as_a_plain_loop_nest_the_mapping_keeps_each_folds_stationary_operand(fusemax, stationary):
    w = resolve_workload("gemm", {})
    _, plan = plan_for(fusemax, w, dataflow="gemm", knobs={"stationary": stationary})
    loop_nest = Mapping.from_dict({**plan.mapping.to_dict(), "name": "my_gemm"})
    ran = simulate_workload(fusemax, w, mapping=loop_nest, engine="analytic")
    # no fill/drain in a loop nest: within 10% of SCALE-Sim's folds (was 108x for weight
    # and input stationary: the stationary operand re-read per streamed row)
    assert ran.result.cycles == pytest.approx(plan.meta["scalesim_cycles"], rel=0.10)


def test_edited_buffer_tiles_change_the_dram_traffic_not_the_folds(fusemax):
    w = resolve_workload("gemm", {})
    _, plan = plan_for(fusemax, w, dataflow="gemm", knobs={"stationary": "output"})
    d = plan.mapping.to_dict()
    hbm, glb = d["groups"][0]["levels"]
    # halve the buffer's M tile: B (K x N) is re-read from DRAM for twice as many M tiles
    assert glb["temporal"]["m"] == 2
    hbm["temporal"]["m"] *= 2
    glb["temporal"]["m"] = 1
    edited = simulate_workload(fusemax, w, mapping=Mapping.from_dict(d), engine="analytic")
    base = simulate_workload(fusemax, w, mapping=plan.mapping, engine="analytic")
    assert edited.plan.meta["folds"] == base.plan.meta["folds"]
    b_bytes = 4096 * 4096 * 2
    assert edited.result.dram_bytes == pytest.approx(base.result.dram_bytes + 8 * b_bytes, rel=1e-3)


def test_an_edited_array_mapping_is_refused_naming_the_field(fusemax):
    w = resolve_workload("gemm", {})
    _, plan = plan_for(fusemax, w, dataflow="gemm", knobs={"stationary": "weight"})
    d = plan.mapping.to_dict()
    d["groups"][0]["levels"][1]["order"] = ["m", "n", "k"]
    with pytest.raises(MappingError) as err:
        simulate_workload(fusemax, w, mapping=Mapping.from_dict(d), engine="analytic")
    assert err.value.path == "groups[0].levels[1].order"


def test_a_systolic_gemm_mapping_on_a_gpu_is_refused_as_naming_no_gpu_kernel(fusemax):
    w = resolve_workload("gemm", {})
    _, plan = plan_for(fusemax, w, dataflow="gemm")
    with pytest.raises(MappingError) as err:
        simulate_workload("h100", w, mapping=plan.mapping, engine="analytic")
    assert err.value.path == "mapping.name"
