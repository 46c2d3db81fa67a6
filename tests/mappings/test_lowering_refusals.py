"""The loop-nest lowering refuses what it would time with the wrong physics.

A GPU mapping that does not name its kernel (a renamed ``flash2``) ran through the loop-nest
lowering with no SM slots and no L2 reuse between CTAs: 50x slow with 16x the DRAM bytes, no
warning; it is now refused, naming the field, and the named mappings keep running. ``lower``
is the one entry for every class: a named GPU mapping lowers to its kernel's program, a PIM
mapping to its in-bank streams.
"""

from __future__ import annotations

import pytest

from archsim import load_arch
from archsim.errors import MappingError
from mappings import Mapping, lower, simulate_workload
from mappings._api import plan_for, resolve_workload


def test_a_gpu_mapping_that_names_no_kernel_is_refused_not_timed_as_an_array():
    h100 = load_arch("h100")
    w = resolve_workload("mha", {"S": 4096})
    _, plan = plan_for(h100, w, dataflow="flash2")
    renamed = Mapping.from_dict({**plan.mapping.to_dict(), "name": "my_kernel"})
    with pytest.raises(MappingError) as err:
        simulate_workload(h100, w, mapping=renamed, engine="analytic")
    assert err.value.path == "mapping.name"
    assert "my_kernel" in str(err.value)
    assert "flash2" in str(err.value)  # names what it takes
    with pytest.raises(MappingError, match="GPU kernel"):
        lower(w, renamed, h100)  # the one lowering entry refuses it too
    # the mapping as saved (named after its kernel) still runs on the GPU lowering
    ran = simulate_workload(h100, w, mapping=plan.mapping, engine="analytic")
    direct = simulate_workload(h100, w, dataflow="flash2", engine="analytic")
    assert ran.result.cycles == direct.result.cycles


def test_a_pim_mapping_lowers_through_the_one_lowering_entry():
    pim = load_arch("hbm3_pim")
    w = resolve_workload("decode", {"Skv": 4096, "B": 4, "H": 32, "D": 128})
    _, plan = plan_for(pim, w, dataflow="pim_decode")
    prog = lower(w, plan.mapping, pim)
    assert prog == plan.program


def test_a_named_gpu_mapping_lowers_through_the_one_lowering_entry_to_its_kernel():
    h100 = load_arch("h100")
    w = resolve_workload("sqa", {"S": 4096})
    _, plan = plan_for(h100, w, dataflow="flash3")
    prog = lower(w, plan.mapping, h100)
    assert prog == plan.program
    assert prog.meta["ops"]["mac"] == plan.program.meta["ops"]["mac"] > 0
