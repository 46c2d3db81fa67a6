"""Every named dataflow is a mapping recipe: on every architecture class, for every library
cascade it accepts, its plan carries the whole-cascade Mapping it built, and the one lowering
entry (:func:`mappings.lower`) turns that mapping into the plan's own program.

(The recipe's own description of the plan -- knobs resolved, notes -- may sit beside it in
``meta``; the phases, which are what the engine times, must be equal.)
"""

from __future__ import annotations

import pytest

import workloads
from archsim import load_arch
from archsim.errors import MappingError, WorkloadError
from mappings import lower
from mappings._api import plan_for, resolve_workload
from mappings._registry import dataflows_for

ARCHS = ["fusemax", "flat", "h100", "hbm3_pim", "aim_pim"]


def _workload(name: str):
    try:
        return resolve_workload(name, {"S": 1024})
    except WorkloadError:  # a cascade without S (decode, gemm): its own defaults
        return resolve_workload(name, {})


@pytest.mark.parametrize("arch_name", ARCHS)
def test_every_plan_is_the_lowering_of_the_mapping_it_carries(arch_name):
    arch = load_arch(arch_name)
    ran = []
    for df in dataflows_for(arch.kind):
        for name in workloads.list_workloads():
            w = _workload(name)
            try:
                _, plan = plan_for(arch, w, dataflow=df)
            except MappingError:
                continue  # refused, naming why (tested per dataflow elsewhere)
            assert plan.mapping is not None, f"{df} on {arch_name} ({name}) carries no mapping"
            prog = lower(w, plan.mapping, arch)
            assert prog.phases == plan.program.phases, f"{df} on {arch_name} ({name})"
            ran.append((df, name))
    kinds = {df for df, _ in ran}
    assert kinds == set(dataflows_for(arch.kind)) or arch.kind == "pim" and len(kinds) >= 2
    assert len(ran) >= {"spatial": 40, "gpu": 50}.get(arch.kind, 2)
