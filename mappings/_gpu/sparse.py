"""Sparse attention dataflows over the cascade given: ``block_sparse`` (skip dead M x M blocks)
and ``fg_sparse`` (FG-Attn: skip M x 1 slices by gathering only the kept keys per query block).

Both are fused recipes (:mod:`mappings._gpu._spine`) whose trips come from the cascade's own
sparsity annotation (density and block shape of the score tensor), counted by
:func:`mappings._stream.stream_work` with ``block`` / ``slice`` in the kernel's skips. The
tile is the family's, cut to the annotation's block: ``min(Bm, M)`` query rows and
``min(Bn, M)`` keys (:func:`archsim.gpu.attention._sparse_tiling`), so a tile is one block
and its liveness probability is the density.

``block_sparse`` also takes a cascade with no sparsity annotation whose attention core has a
condition (a sliding window, a causal or document mask): that is FlexAttention with a block
mask made from the ``mask_mod`` (``create_block_mask``), which skips the blocks the condition
leaves wholly empty and computes the partly masked ones whole, applying the mask per score.
The skip unit is then FlexAttention's default ``BLOCK_SIZE`` (:data:`FLEX_BLOCK_SIZE`) and
the trips are the condition's (``skip_by`` ``condition`` in the plan's meta and notes). A
cascade with neither an annotation nor a condition (dense, unmasked) is refused.

Each builds the whole-cascade :class:`~mappings.Mapping` of a fused kernel
(:func:`mappings._gpu._mapping.fused_mapping`: grid at HBM, Q/K/V in SMEM, tile and
intermediates in RF) whose ``skip`` is the sparsity binding (``block`` or ``slice`` beside
``condition``), and runs it (:func:`sparse_mapping_plan`), so ``--save-mapping`` then
``--mapping`` gives the same cycles. The mapping's name is the recipe: ``block_sparse`` (the
FlexAttention kernel), ``block_sparse:flash3`` / ``block_sparse:flash2``, ``fg_sparse``.

Knobs: ``block_sparse`` takes ``family`` (``flex`` = Triton FlexAttention, default, or
``flash3`` / ``flash2``); ``fg_sparse`` takes ``gather_cycles_per_row`` (the gather's
producer cycles per K or V row, overlapped with the consumers; it adds the 4 B kept-key
index per key to each tile). A ``gather_cycles_per_row`` other than the recipe's is not a
mapping field: that plan carries no mapping.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal, TypedDict

from archsim import Architecture
from archsim.errors import MappingError
from archsim.gpu import FAMILIES, GATHER_CYCLES_PER_ROW, dtype_bytes
from archsim.gpu.attention import _INDEX_BYTES, _sparse_tiling
from mappings._registry import PassInfo, Plan, register_dataflow
from mappings._roles import AttentionRoles, attention_roles
from mappings._stream import numeric_params
from workloads import Workload

from ._common import check_knobs, dtype_of, ensure, model_for
from ._spine import FusedRecipe, check_one_pass, fused_kernel, recipe_plan

if TYPE_CHECKING:
    from mappings._mapping import Mapping as KernelMapping

__all__ = [
    "FLEX_BLOCK_SIZE",
    "block_sparse",
    "fg_sparse",
    "sparse_block",
    "skip_unit",
    "SparseRecipe",
    "SPARSE_KINDS",
    "SPARSE_RECIPES",
    "sparse_mapping_plan",
]


@dataclass(frozen=True)
class SparseRecipe:
    """A sparse fused kernel as data.

    Attributes
    ----------
    kernel
        The family's facts as :class:`FusedRecipe` fields: kernel name, family (tiling and
        calibrated efficiency), what it skips (``condition`` and the sparsity binding),
        instruction path, K/V stages (three in shared memory) and loads in flight.
    skip
        The sparsity the kernel skips: ``block`` (dead M x M blocks) or ``slice`` (dead M x 1
        slices, by gathering the kept keys).
    gather_cycles_per_row
        Producer cycles per gathered K or V row (overlapped with the consumers); 0: no gather.
    index_bytes_per_key
        Bytes of the kept-key index read per gathered key.
    """

    kernel: FusedRecipe
    skip: Literal["block", "slice"]
    gather_cycles_per_row: float = 0.0
    index_bytes_per_key: float = 0.0


def _kernel(
    dataflow: str, family: str, kernel: str, skip: str, path: str, loads: int
) -> FusedRecipe:
    return FusedRecipe(
        dataflow,
        family,
        kernel,
        skips=frozenset({"condition", skip}),
        path=path,
        kv_stages=3,
        loads_per_stage=loads,
    )


#: Mapping name -> sparse recipe.
SPARSE_KINDS: dict[str, SparseRecipe] = {
    # Triton FlexAttention: wgmma, no warp specialization, K and V of a stage in flight
    "block_sparse": SparseRecipe(
        _kernel("block_sparse", "flex", FAMILIES["flex"][1], "block", "wgmma", 2), "block"
    ),
    "block_sparse:flash3": SparseRecipe(
        _kernel("block_sparse", "flash3", FAMILIES["flash3"][1], "block", "wgmma", 2), "block"
    ),
    "block_sparse:flash2": SparseRecipe(
        _kernel("block_sparse", "flash2", FAMILIES["flash2"][1], "block", "mma_sync", 1), "block"
    ),
    # FG-Attn on the Hopper kernel: a producer gathers the kept keys into dense SMEM tiles
    "fg_sparse": SparseRecipe(
        _kernel("fg_sparse", "flash3", "fg_attn_gather_fwd_kernel", "slice", "wgmma", 2),
        "slice",
        gather_cycles_per_row=GATHER_CYCLES_PER_ROW,
        index_bytes_per_key=_INDEX_BYTES,
    ),
}
#: Mapping name -> the kernel's FusedRecipe (what :func:`~mappings._gpu._mapping.read_fused`
#: reads a sparse mapping with).
SPARSE_RECIPES: dict[str, FusedRecipe] = {n: r.kernel for n, r in SPARSE_KINDS.items()}


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


#: FlexAttention's block-mask granularity when none is given: ``create_block_mask``'s
#: ``BLOCK_SIZE`` default, ``_DEFAULT_SPARSE_BLOCK_SIZE = 128`` in
#: ``torch/nn/attention/flex_attention.py`` (PyTorch 2.5-2.11); the H200 probe of
#: ``validation/data/h200_sliding_window.jsonl`` records ``block_size`` [128, 128].
FLEX_BLOCK_SIZE = 128


def _core_conditions(workload: Workload, roles: AttentionRoles) -> list[str]:
    """Names of the attention core's Einsums that carry a condition."""
    core = set(roles.core)
    return [e.name for e in workload.cascade.einsums if e.name in core and e.cond is not None]


def skip_unit(
    workload: Workload, roles: AttentionRoles, sp: SparseRecipe
) -> tuple[int, float | None, str]:
    """``(M, density, skip_by)`` of a sparse recipe on the workload's cascade.

    ``skip_by`` is ``annotation`` (the core's block / slice sparsity: its ``M`` and density)
    or, for a ``block`` recipe on a cascade with no annotation whose core has a condition,
    ``condition``: ``M`` = :data:`FLEX_BLOCK_SIZE`, density None (the live blocks are the
    condition's, counted by the lowering).

    Raises
    ------
    MappingError
        No annotation of the recipe's kind and (``block``) no condition on the core either.
    """
    try:
        m, density = sparse_block(workload, roles, sp.skip)
    except MappingError:
        if sp.skip != "block":
            raise
        if not _core_conditions(workload, roles):
            raise MappingError(
                f"cascade {workload.cascade.name!r} has no block sparsity and no condition on "
                "its attention core: block_sparse has nothing to skip",
                path="workload.cascade",
                expected=(
                    "a block sparsity annotation on the score tensor (sparsity ... block ...) "
                    "or a condition on a core Einsum (a mask: `if j <= i and i - j < W`)"
                ),
                got="dense, unmasked",
            ) from None
        return FLEX_BLOCK_SIZE, None, "condition"
    return m, density, "annotation"


def sparse_mapping(
    workload: Workload, arch: Architecture, name: str, roles: AttentionRoles | None = None
) -> KernelMapping:
    """The recipe ``name``'s own mapping for the workload's cascade: the family's tile cut to
    the annotation's block, three K/V stages, the sparsity binding in ``skip``.

    Raises
    ------
    MappingError
        The cascade has no block / slice sparsity annotation on its attention core (nor, for
        ``block``, a condition: :func:`skip_unit`).
    """
    from ._mapping import fused_mapping

    sp = SPARSE_KINDS[name]
    model = model_for(arch)
    r = roles or attention_roles(workload.cascade)
    block, _, _ = skip_unit(workload, r, sp)
    d = _features(workload, r)
    t = _sparse_tiling(model, sp.kernel.family, d, block, dtype_bytes(dtype_of(workload)))
    return fused_mapping(
        workload, arch, r, sp.kernel, block_m=t.block_m, block_n=t.block_n, name=name
    )


def _features(workload: Workload, r: AttentionRoles) -> int:
    sizes0 = workload.cascade.rank_sizes(numeric_params(workload.params))
    return int(math.prod(sizes0.get(x, 1) for x in r.features)) or 1


def sparse_mapping_plan(
    workload: Workload,
    mapping: KernelMapping,
    arch: Architecture,
    *,
    gather_cycles_per_row: float | None = None,
) -> Plan:
    """The plan of a sparse kernel ``mapping`` (its name a key of :data:`SPARSE_KINDS`),
    carrying it; ``gather_cycles_per_row`` overrides the recipe's (``fg_sparse``'s knob).

    Raises
    ------
    MappingError
        The cascade has no sparsity annotation of the recipe's kind (for ``block``: nor a
        condition, :func:`skip_unit`); the mapping is not a
        fused kernel (:func:`~mappings._gpu._mapping.read_fused`) or its CTA overflows the
        GPU (:func:`~mappings._gpu._mapping.cta_tiling`).
    """
    from ._mapping import cta_meta, cta_tiling, read_fused, smem_formula, streamed_key

    name = mapping.name
    sp = SPARSE_KINDS[name]
    model = model_for(arch)
    roles = attention_roles(workload.cascade)
    check_one_pass(workload, roles, name)
    block, density, skip_by = skip_unit(workload, roles, sp)
    shape = read_fused(workload, mapping, arch, roles)
    dtype = dtype_of(workload)
    elt = dtype_bytes(dtype)
    family = sp.kernel.family
    sizes0 = workload.cascade.rank_sizes(numeric_params(workload.params))
    t = cta_tiling(
        shape,
        model,
        elt,
        query_len=int(sizes0[roles.query]),
        key_len=streamed_key(workload, roles)[1],
        base=_sparse_tiling(model, family, shape.features, block, elt),
    )
    gather = sp.gather_cycles_per_row if gather_cycles_per_row is None else gather_cycles_per_row

    def tiling(d: int, causal: bool):  # noqa: ANN202
        del d, causal
        return t

    extra: _GatherCost = {}
    fp32 = shape.fp32_einsums
    if sp.skip == "slice":
        probe = fused_kernel(
            workload, shape.recipe, model, dtype, tiling, roles=roles, fp32_einsums=fp32
        )
        kept_keys = probe.work.total_trips * t.block_n  # keys gathered (index entries)
        extra = {
            "issue_cycles_per_trip": 2.0 * t.block_n * gather,
            "extra_bytes_per_trip": t.block_n * sp.index_bytes_per_key,
            "extra_dram_read": kept_keys * sp.index_bytes_per_key,
            "meta": {"slice_m": block, "gather_cycles_per_row": gather},
        }
    fk = fused_kernel(
        workload, shape.recipe, model, dtype, tiling, roles=roles, fp32_einsums=fp32, **extra
    )
    w = fk.work
    dense = w.work_items * w.dense_trips
    passes = PassInfo(
        passes=1,
        buffer_bytes=float(t.smem_bytes),
        buffer_formula=smem_formula(replace(shape, block_m=t.block_m, block_n=t.block_n), t, elt),
        reason=f"online softmax over the kept {sp.skip}s only",
    )
    dataflow = name.split(":")[0]
    live = w.total_trips / max(dense, 1)
    if skip_by == "condition":
        density = live
        what = (
            f"no sparsity annotation: blocks skipped by the condition only ({block}x{block} "
            "mask blocks, partly masked ones computed whole)"
        )
    else:
        what = f"{sp.skip} {block}, density {density}"
    notes = (
        f"{dataflow}: {family} kernel, {t.block_m}x{t.block_n} tiles, {what}: "
        f"{w.total_trips} of {dense} trips"
    )
    plan = recipe_plan(
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
            "live_trip_fraction": live,
            "skip_by": skip_by,
            "D": shape.features,
            "cta": cta_meta(t, shape.stages),
        },
    )
    return replace(plan, mapping=mapping)


def _plan(name: str, workload: Workload, arch: Architecture, gather: float | None = None) -> Plan:
    """The recipe's own mapping, run; a gather cost other than the recipe's is a knob the
    mapping cannot carry (the plan then has no mapping)."""
    mapping = sparse_mapping(workload, arch, name)
    plan = sparse_mapping_plan(workload, mapping, arch, gather_cycles_per_row=gather)
    if gather is not None and gather != SPARSE_KINDS[name].gather_cycles_per_row:
        return replace(plan, mapping=None)
    return plan


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
    return _plan("block_sparse" if family == "flex" else f"block_sparse:{family}", workload, arch)


@register_dataflow("fg_sparse")
def fg_sparse(workload: Workload, arch: Architecture, knobs: Mapping[str, object]) -> Plan:
    """FG-Attn: per query block, gather the kept keys into dense shared-memory tiles."""
    check_knobs(knobs, ("gather_cycles_per_row",), "fg_sparse")
    g = float(knobs.get("gather_cycles_per_row", GATHER_CYCLES_PER_ROW))  # type: ignore[arg-type]  # knob: user value, float() checks it
    ensure(g >= 0, "bad knob", "knobs.gather_cycles_per_row", ">= 0", g)
    return _plan("fg_sparse", workload, arch, gather=g)
