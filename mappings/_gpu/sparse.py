"""Sparse attention dataflows: ``block_sparse`` (skip M x M blocks) and ``fg_sparse``
(FG-Attn: skip M x 1 slices by gathering only the kept keys per query block).

Knobs: ``block_sparse`` takes ``family`` (``flex`` = Triton FlexAttention, default, or
``flash3``); ``fg_sparse`` takes ``gather_cycles_per_row``. Both read the workload's
``block`` (M: block side for ``block_sparse``, slice height for ``fg_sparse``; 64 in the
workload library) and run query tiles of ``min(Bm, M)`` rows.
"""

from __future__ import annotations

from collections.abc import Mapping

from archsim import Architecture
from archsim.gpu import GATHER_CYCLES_PER_ROW, block_sparse_costs, fg_sparse_costs
from mappings._registry import PassInfo, Plan, register_dataflow
from workloads import Workload

from ._common import check_knobs, dtype_of, ensure, gpu_plan, model_for, param

__all__ = ["block_sparse", "fg_sparse"]


def _common(workload: Workload) -> dict[str, object]:
    density = float(workload.params.get("density", 1.0))  # type: ignore[arg-type]
    ensure(
        0.0 < density <= 1.0, "bad density", "workload.params.density", "0 < density <= 1", density
    )
    return {
        "B": param(workload, "B", 1),
        "H": param(workload, "H"),
        "S": param(workload, "Sq"),
        "D": param(workload, "D"),
        "density": density,
    }


@register_dataflow("block_sparse")
def block_sparse(workload: Workload, arch: Architecture, knobs: Mapping[str, object]) -> Plan:
    """Fused attention that skips empty ``block x block`` tiles."""
    check_knobs(knobs, ("family",), "block_sparse")
    family = str(knobs.get("family", "flex"))
    ensure(
        family in ("flex", "flash3", "flash2"),
        "bad knob",
        "knobs.family",
        "flex | flash3 | flash2",
        family,
    )
    model = model_for(arch)
    kw = _common(workload)
    block = param(workload, "block", 128)
    costs = block_sparse_costs(model, block=block, dtype=dtype_of(workload), family=family, **kw)  # type: ignore[arg-type]
    passes = PassInfo(
        passes=1,
        buffer_bytes=0.0,
        buffer_formula="as the dense kernel",
        reason="online softmax over the kept blocks only",
    )
    return gpu_plan(
        "block_sparse",
        workload,
        arch,
        costs,
        model,
        passes=passes,
        notes=f"block_sparse: {family} kernel, {block}x{block} blocks, density {kw['density']}",
    )


@register_dataflow("fg_sparse")
def fg_sparse(workload: Workload, arch: Architecture, knobs: Mapping[str, object]) -> Plan:
    """FG-Attn: per query block, gather the kept keys into dense shared-memory tiles."""
    check_knobs(knobs, ("gather_cycles_per_row",), "fg_sparse")
    model = model_for(arch)
    kw = _common(workload)
    g = float(knobs.get("gather_cycles_per_row", GATHER_CYCLES_PER_ROW))  # type: ignore[arg-type]
    block = param(workload, "block", 64)
    ensure(block >= 1, "bad slice height", "workload.params.block", "an integer >= 1", block)
    costs = fg_sparse_costs(
        model,
        block=block,
        dtype=dtype_of(workload),
        gather_cycles_per_row=g,
        **kw,  # type: ignore[arg-type]
    )
    passes = PassInfo(
        passes=1,
        buffer_bytes=0.0,
        buffer_formula="as the dense Hopper kernel",
        reason="online softmax over gathered keys",
    )
    return gpu_plan(
        "fg_sparse",
        workload,
        arch,
        costs,
        model,
        passes=passes,
        notes=(
            f"fg_sparse: {block}x1 slices on {block}-row flash3 tiles, asynchronous gather "
            f"{g} cycles/row, density {kw['density']}"
        ),
    )
