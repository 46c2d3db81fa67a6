"""``gpu_unfused`` as a :class:`~mappings.Mapping`: one group per kernel (each GEMM alone, runs
of memory-bound Einsums together, the key rank whole), and such a mapping run back."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from archsim.errors import MappingError
from mappings._mapping import Mapping
from mappings._splits import apply_splits

from ._mapping import UNFUSED, _check_structure, _kernel_group, _num

if TYPE_CHECKING:
    from archsim import Architecture
    from mappings._registry import Plan
    from workloads import Workload

__all__ = ["unfused_mapping", "unfused_mapping_plan"]


def unfused_mapping(
    workload: Workload, arch: Architecture, *, fuse_elementwise: bool = True
) -> Mapping:
    """``gpu_unfused`` as a :class:`Mapping`: one group per kernel (each GEMM alone, runs of
    memory-bound Einsums together, or each Einsum alone without ``fuse_elementwise``), the
    key rank whole."""
    from ._spine import unfused_runs, unfused_sizes

    num, sizes = unfused_sizes(workload)
    cas = workload.cascade
    splits = {
        sp.rank: int(sizes[sp.inner])
        for sp in cas.splits.values()
        if isinstance(sp.tile, str) and num.get(sp.tile) != _num(workload).get(sp.tile)
    }
    w = apply_splits(workload, splits)
    runs = unfused_runs(cas, sizes, fuse_elementwise=fuse_elementwise)
    return Mapping(
        groups=tuple(_kernel_group(w, arch, run) for run in runs), splits=splits, name=UNFUSED
    )


def unfused_mapping_plan(workload: Workload, mapping: Mapping, arch: Architecture) -> Plan:
    """Plan of a ``gpu_unfused`` mapping: one kernel per group, in order."""
    from mappings._passes import cascade_passes
    from mappings._registry import PassInfo
    from workloads import count

    from ._common import model_for
    from ._spine import _is_gemm, unfused_plan, unfused_sizes

    _check_structure(workload, mapping, arch)
    cas = workload.cascade
    order = [e.name for e in cas.einsums]
    runs = [list(g.einsums) for g in mapping.groups]
    if [n for run in runs for n in run] != order:
        raise MappingError(
            "gpu_unfused runs its kernels in cascade order",
            path="groups",
            expected=order,
            got=[n for run in runs for n in run],
        )
    num, sizes = unfused_sizes(workload)
    for k, run in enumerate(runs):
        gemms = [n for n in run if _is_gemm(cas, n, sizes)]
        if gemms and len(run) > 1:
            raise MappingError(
                "a GEMM runs as its own kernel in gpu_unfused",
                path=f"groups[{k}].einsums",
                expected=f"{gemms[0]} alone",
                got=run,
            )
    plan = unfused_plan(UNFUSED, workload, arch, model_for(arch), runs=runs)
    counts = count(cas, num)
    inter = set(cas.tensors) - set(cas.inputs) - set(cas.outputs)
    spilled = {t for k, run in enumerate(runs) for t in _made(cas, run)} - {
        t for g in mapping.groups for t in g.on_chip
    }
    spill = sum(float(ec.writes_bytes) for ec in counts.einsums if ec.name in inter & spilled)
    n, why = cascade_passes(cas)
    passes = PassInfo(
        passes=max(1, n),
        buffer_bytes=0.0,
        buffer_formula="0 (every intermediate between kernels in HBM)",
        spill_bytes=2.0 * spill,
        reason=why,
    )
    return replace(plan, passes=passes, mapping=mapping)


def _made(cas: object, run: Sequence[str]) -> set[str]:
    by = {e.name: e for e in cas.einsums}  # type: ignore[attr-defined]
    return {by[n].output.name for n in run}
