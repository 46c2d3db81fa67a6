"""Sparse attention dataflows over the cascade given: ``block_sparse`` (skip dead M x M blocks)
and ``fg_sparse`` (FG-Attn: skip M x 1 slices by gathering only the kept keys per query block).

Both are fused recipes (:mod:`mappings._gpu._spine`) whose trips come from the cascade's own
sparsity annotation (density and block shape of the score tensor), counted by
:func:`mappings._stream.stream_work` with ``block`` / ``slice`` in the kernel's skips. The
tile is the family's, cut to the annotation's block: ``min(Bm, M)`` query rows and
``min(Bn, M)`` keys (:func:`archsim.gpu.attention._sparse_tiling`), so a tile is one block
and its liveness probability is the density.

Knobs: ``block_sparse`` takes ``family`` (``flex`` = Triton FlexAttention, default, or
``flash3`` / ``flash2``); ``fg_sparse`` takes ``gather_cycles_per_row`` (the gather's
producer cycles per K or V row, overlapped with the consumers; it adds the 4 B kept-key
index per key to each tile).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TypedDict

from archsim import Architecture
from archsim.errors import MappingError
from archsim.gpu import GATHER_CYCLES_PER_ROW, dtype_bytes
from archsim.gpu.attention import _INDEX_BYTES, _sparse_tiling
from mappings._registry import PassInfo, Plan, register_dataflow
from mappings._roles import AttentionRoles, attention_roles
from mappings._stream import numeric_params
from workloads import Workload

from ._common import check_knobs, dtype_of, ensure, model_for
from ._spine import FusedRecipe, check_one_pass, fused_kernel, recipe_plan

__all__ = ["block_sparse", "fg_sparse", "sparse_block"]


class _GatherCost(TypedDict, total=False):
    """What gathering the kept slices adds to a fused kernel (keywords of ``fused_kernel``)."""

    issue_cycles_per_trip: float
    extra_bytes_per_trip: float
    extra_dram_read: float
    meta: Mapping[str, object]


def sparse_block(workload: Workload, roles: AttentionRoles, kind: str) -> tuple[int, float]:
    """(M, density) of the core's ``kind`` (block / slice) sparsity annotation.

    Raises
    ------
    MappingError
        The cascade's core tensors carry no such annotation.
    """
    from workloads._sparsity import tile_shape

    cascade = workload.cascade
    params = numeric_params(workload.params)
    core = set(roles.core)
    for e in cascade.einsums:
        if e.name not in core:
            continue
        for t in (e.name, *(ref.name for ref in e.inputs)):
            spec = cascade.tensors[t]
            sp = spec.sparsity
            if sp is None or sp.kind not in ("block", "slice") or sp.density is None:
                continue
            shape = dict(zip(spec.ranks, tile_shape(sp, spec.ranks, params), strict=True))
            m = max(1, int(shape.get(roles.query, 1)))
            return m, float(sp.density)
    raise MappingError(
        f"cascade {cascade.name!r} has no {kind} sparsity on its attention core",
        path="workload.cascade",
        expected=f"a {kind} sparsity annotation on the score tensor (sparsity ... {kind} ...)",
        got="dense",
    )


def _plan(
    dataflow: str,
    family: str,
    workload: Workload,
    arch: Architecture,
    *,
    skip: str,
    kernel: str,
    gather: float = 0.0,
) -> Plan:
    model = model_for(arch)
    roles = attention_roles(workload.cascade)
    check_one_pass(workload, roles, dataflow)
    block, density = sparse_block(workload, roles, skip)
    dtype = dtype_of(workload)
    elt = dtype_bytes(dtype)
    recipe = FusedRecipe(dataflow, family, kernel, skips=frozenset({"condition", skip}))

    def tiling(d: int, causal: bool):  # noqa: ANN202
        del causal
        return _sparse_tiling(model, family, d, block, elt)

    extra: _GatherCost = {}
    if skip == "slice":
        probe = fused_kernel(workload, recipe, model, dtype, tiling, roles=roles)
        w = probe.work
        bn = probe.tiling.block_n
        kept_keys = w.total_trips * bn  # keys gathered over all trips (index entries)
        extra = {
            "issue_cycles_per_trip": 2.0 * bn * gather,
            "extra_bytes_per_trip": bn * _INDEX_BYTES,
            "extra_dram_read": kept_keys * _INDEX_BYTES,
            "meta": {"slice_m": block, "gather_cycles_per_row": gather},
        }
    fk = fused_kernel(workload, recipe, model, dtype, tiling, roles=roles, **extra)
    t, w = fk.tiling, fk.work
    dense = w.work_items * w.dense_trips
    passes = PassInfo(
        passes=1,
        buffer_bytes=float(t.smem_bytes),
        buffer_formula="(Bm + 3 * 2 Bn) * D * bytes per CTA",
        reason=f"online softmax over the kept {skip}s only",
    )
    d = int(math.prod(w.sizes.get(x, 1) for x in roles.features))
    notes = (
        f"{dataflow}: {family} kernel, {t.block_m}x{t.block_n} tiles, {skip} {block}, "
        f"density {density}: {w.total_trips} of {dense} trips"
    )
    return recipe_plan(
        dataflow,
        workload,
        arch,
        model,
        fk,
        passes=passes,
        notes=notes,
        extra_meta={
            "tile": f"{t.block_m}x{t.block_n}",
            "density": density,
            "block": block,
            "live_trip_fraction": w.total_trips / max(dense, 1),
            "D": d,
        },
    )


@register_dataflow("block_sparse")
def block_sparse(workload: Workload, arch: Architecture, knobs: Mapping[str, object]) -> Plan:
    """Fused attention that skips dead ``M x M`` blocks of the cascade's block sparsity."""
    check_knobs(knobs, ("family",), "block_sparse")
    family = str(knobs.get("family", "flex"))
    ensure(
        family in ("flex", "flash3", "flash2"),
        "bad knob",
        "knobs.family",
        "flex | flash3 | flash2",
        family,
    )
    from archsim.gpu import FAMILIES

    return _plan("block_sparse", family, workload, arch, skip="block", kernel=FAMILIES[family][1])


@register_dataflow("fg_sparse")
def fg_sparse(workload: Workload, arch: Architecture, knobs: Mapping[str, object]) -> Plan:
    """FG-Attn: per query block, gather the kept keys into dense shared-memory tiles."""
    check_knobs(knobs, ("gather_cycles_per_row",), "fg_sparse")
    g = float(knobs.get("gather_cycles_per_row", GATHER_CYCLES_PER_ROW))  # type: ignore[arg-type]  # knob: user value, float() checks it
    ensure(g >= 0, "bad knob", "knobs.gather_cycles_per_row", ">= 0", g)
    return _plan(
        "fg_sparse",
        "flash3",
        workload,
        arch,
        skip="slice",
        kernel="fg_attn_gather_fwd_kernel",
        gather=g,
    )
