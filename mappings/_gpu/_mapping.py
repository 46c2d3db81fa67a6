"""GPU kernels written as the project's :class:`~mappings.Mapping` (data), and run back.

A fused attention kernel (``flash2``, ``flash3``, ``mem_efficient``) is one fusion group over
the GPU's levels, outermost first:

* ``HBM``: the grid as ``spatial`` factors -- batch, heads and query blocks, one CTA each,
  spread over the SMs by the block scheduler (more CTAs than SMs run in waves:
  :func:`mappings._check.fanout` and the wave rule of :mod:`mappings._check`) -- and the
  CTA's main loop over key tiles as the ``temporal`` factor of the key's outer rank;
* ``SMEM``: keeps the kernel's inputs (Q, K, V tiles; the output tile when the family stages
  it for a TMA store);
* ``RF``: the CTA's tile (query block ``Bm`` x key tile ``Bn`` x whole feature ranks) and every
  intermediate (score tile, running max/sum, output accumulators) in registers.

``splits`` holds the key tile (the ``m -> m1, m0`` split the running state advances by),
``depth`` the K/V pipeline stages, ``units`` binds the softmax Einsums to the CUDA cores (the
contractions to the tensor cores), ``skip`` what the family skips, ``name`` the kernel family:
its instruction path, warp specialization, stage layout and shared-memory layout are the
named fields of its :class:`~mappings._gpu._spine.FusedRecipe`. Einsums outside the fused
core (projections) are one group each, run as library kernels (GEMM / memory-bound).

``gpu_unfused`` is a mapping whose groups are its kernels: each GEMM alone, runs of
memory-bound Einsums together (intermediates of a run stay on chip, the others go through
HBM) (:mod:`mappings._gpu._unfused_mapping`).

On a gradient cascade (``mha_bwd``, or a forward one with ``pass_="bwd"``) a fused family's
mapping is its key-outer backward kernel: the same group with the roles turned round (a CTA
owns a key block and streams query tiles; :mod:`mappings._gpu.backward`).

The decode kernels (``split_kv``, ``lean``, the fused families at query length 1) are the
same group with the query heads of a K/V stream packed in the CTA and the key split over CTAs
(:mod:`mappings._gpu.decode`); the sparse kernels (``block_sparse``, ``fg_sparse``) a fused
group whose ``skip`` binds the cascade's sparsity (:mod:`mappings._gpu.sparse`); ``gpu_gemm``
one group with the output tiles and split-K as the grid (:mod:`mappings._gpu.gemm`);
``linear_chunked`` the chunked linear-attention kernels, the chunk walk as the loop
(:mod:`mappings._gpu.linear_mapping`).

:func:`gpu_mapping_plan` runs any such mapping: the recipes build their mapping with
:func:`fused_mapping` and run it through the same function, so ``--save-mapping`` then
``--mapping`` gives the same cycles. A mapping whose tiles equal the family's own tile for the
head dimension uses the family's measured CTA shape (:func:`archsim.gpu.fwd_tiling`); any
other tile gets its CTA resources from the recipe's fields and is checked against the GPU:
shared memory per CTA and registers per thread (:func:`cta_tiling`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping as AbcMapping
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

from archsim.errors import MappingError
from archsim.gpu import dtype_bytes, fwd_tiling
from archsim.gpu.heuristics import AttnTiling, make_tiling
from mappings._mapping import FusionGroup, LevelMapping, Mapping
from mappings._roles import AttentionRoles, attention_roles, is_contraction
from mappings._splits import apply_splits
from mappings._tensors import group_ranks

if TYPE_CHECKING:
    from archsim import Architecture, ComputeUnit
    from archsim.gpu import GpuModel
    from mappings._registry import Plan
    from workloads import Workload

    from ._spine import FusedRecipe

__all__ = [
    "MAX_REGS_PER_THREAD",
    "check_cta_fits",
    "CtaShape",
    "cta_meta",
    "cta_tiling",
    "recipe_cta",
    "fused_mapping",
    "streamed_key",
    "unfused_mapping",
    "read_fused",
    "gpu_mapping_plan",
    "gpu_levels",
    "gpu_units",
    "FUSED",
    "UNFUSED",
    "DECODE",
    "SPARSE",
    "GEMM",
    "LINEAR",
    "GPU_MAPPINGS",
    "attention_mapping",
    "core_ranks",
    "kernel_group",
    "smem_formula",
]

MAX_REGS_PER_THREAD = 255
"""Registers one thread can address (the CUDA ISA limit on sm_50 and later)."""
FUSED = ("flash2", "flash3", "mem_efficient")
"""Mapping names run as a fused attention kernel of that family (at query length 1: the
family's decode kernels, :mod:`mappings._gpu.decode`)."""
UNFUSED = "gpu_unfused"
"""Mapping name run as one kernel per group, intermediates between groups through HBM."""
DECODE = ("split_kv", "lean")
"""Mapping names run as a decode kernel (:func:`mappings._gpu.decode.decode_mapping_plan`)."""
SPARSE = ("block_sparse", "block_sparse:flash3", "block_sparse:flash2", "fg_sparse")
"""Mapping names run as a sparse fused kernel (:func:`mappings._gpu.sparse.sparse_mapping_plan`):
``block_sparse`` on the FlexAttention kernel, or on the family after the colon."""
GEMM = "gpu_gemm"
"""Mapping name run as a cuBLAS-like GEMM (:func:`mappings._gpu.gemm.gemm_mapping_plan`)."""
LINEAR = ("linear_chunked", "linear_chunked:staged")
"""Mapping names run as chunked linear attention (:mod:`mappings._gpu.linear_mapping`: one
group fused, two materialized; the staged form by name)."""
GPU_MAPPINGS = (*FUSED, UNFUSED, *DECODE, *SPARSE, GEMM, *LINEAR)
"""Every mapping name :func:`gpu_mapping_plan` runs (``plan_for`` sends these to it)."""


def _recipes() -> dict[str, FusedRecipe]:
    from .attention import RECIPES
    from .sparse import SPARSE_RECIPES

    return {**RECIPES, **SPARSE_RECIPES}


def gpu_levels(arch: Architecture) -> tuple[str, str, str]:
    """Names of the (DRAM, shared-memory, register-file) levels of a GPU architecture."""
    dram = arch.levels[0].name
    smem = next((lv.name for lv in arch.levels if lv.kind == "sram"), None)
    rf = next((lv.name for lv in arch.levels if lv.kind == "regfile"), None)
    if smem is None or rf is None:
        raise MappingError(
            "a GPU mapping needs a shared-memory (sram) and a register-file (regfile) level",
            path="arch.levels",
            expected="levels of kind sram and regfile",
            got=[f"{lv.name} ({lv.kind})" for lv in arch.levels],
        )
    return dram, smem, rf


def gpu_units(arch: Architecture) -> tuple[ComputeUnit, ComputeUnit]:
    """(tensor cores, CUDA cores): the unit with the highest MAC rate, and one that runs
    ``exp`` (the softmax)."""

    def mac_rate(u: ComputeUnit) -> float:
        return max((float(v) for k, v in u.ops_per_cycle.items() if k.startswith("mac")), default=0)

    tensor = max(arch.compute, key=mac_rate)
    cuda = next((u for u in arch.compute if "exp" in u.ops_per_cycle), tensor)
    return tensor, cuda


@dataclass(frozen=True)
class CtaShape:
    """What a fused mapping asks of one CTA (read back by :func:`read_fused`)."""

    recipe: FusedRecipe
    group_index: int
    block_m: int
    block_n: int
    stages: int
    fp32_einsums: tuple[str, ...]
    """Core contractions bound to the CUDA cores (``units``)."""
    features: int
    value_features: int


def _core(roles: AttentionRoles) -> tuple[str, ...]:
    return (*roles.core, *roles.epilogue)


def fused_mapping(
    workload: Workload,
    arch: Architecture,
    roles: AttentionRoles,
    recipe: FusedRecipe,
    *,
    block_m: int,
    block_n: int,
    stages: int | None = None,
    name: str | None = None,
) -> Mapping:
    """The fused kernel of ``recipe`` with a ``block_m`` x ``block_n`` CTA tile and ``stages``
    K/V stages (default: the recipe's) as a :class:`Mapping` (see module doc); ``name``: the
    mapping's name (default: the recipe's dataflow)."""
    w, splits, ranks, key_in, outer = core_ranks(workload, roles, block_n)
    q = roles.query
    bm = min(block_m, ranks[q])
    grid: dict[str, int] = {}
    for r in (*roles.batch, *roles.query_heads):
        if r in ranks and ranks[r] > 1:
            grid[r] = ranks[r]
    if math.ceil(ranks[q] / bm) > 1:
        grid[q] = math.ceil(ranks[q] / bm)
    hbm_t: dict[str, int] = {}
    rf_t: dict[str, int] = {q: bm}
    if key_in == roles.key or not outer:  # the CTA's loop walks tiles of key_in
        bn = min(block_n, ranks[key_in])
        hbm_t[key_in] = math.ceil(ranks[key_in] / bn)
        rf_t[key_in] = bn
    else:  # the split's inner extent is the key tile, its outer rank the CTA's loop
        rf_t[key_in] = ranks[key_in]
    if key_in != roles.key and roles.key_outer in ranks:
        hbm_t[roles.key_outer] = ranks[roles.key_outer]
    skip = tuple(s for s in ("condition", "block", "slice") if s in recipe.skips)
    return attention_mapping(
        w,
        arch,
        roles,
        name or recipe.dataflow,
        splits=splits,
        grid=grid,
        hbm_temporal=hbm_t,
        rf_tile=rf_t,
        skip=skip,
        depth=stages if stages is not None else recipe.kv_stages,
        o_staging=recipe.o_staging,
    )


def core_ranks(
    workload: Workload, roles: AttentionRoles, block_n: int
) -> tuple[Workload, dict[str, int], dict[str, int], str, bool]:
    """(workload with the key split applied, ``splits``, rank sizes of the fused core, the rank
    a CTA's tile walks the keys by, whether the score iterates the key split's outer rank) of
    a fused kernel whose key tile is ``block_n``: the split ``key -> outer, inner`` takes
    ``inner = min(block_n, key length)`` when the score iterates the outer rank."""
    _, key_len, outer_streamed = streamed_key(workload, roles)
    splits: dict[str, int] = {}
    if outer_streamed and roles.key_split_param is not None:
        splits[roles.key] = min(block_n, key_len)
    w = apply_splits(workload, splits)
    ranks = group_ranks(w, FusionGroup(einsums=_core(roles), levels=(LevelMapping(level="_"),)))
    key_in = roles.key_inner if roles.key_inner in ranks else roles.key
    return w, splits, ranks, str(key_in), outer_streamed


def attention_mapping(
    w: Workload,
    arch: Architecture,
    roles: AttentionRoles,
    name: str,
    *,
    splits: AbcMapping[str, int],
    grid: AbcMapping[str, int],
    hbm_temporal: AbcMapping[str, int],
    rf_tile: AbcMapping[str, int],
    skip: tuple[Literal["condition", "block", "slice"], ...],
    depth: int,
    o_staging: bool = False,
    order: Sequence[str] | None = None,
) -> Mapping:
    """A fused attention kernel as a :class:`Mapping` (module doc): the core as one group --
    ``grid`` (CTAs) as spatial and ``hbm_temporal`` (a CTA's loop over key tiles) as temporal
    factors at DRAM, the core's inputs kept in shared memory (and the outputs read after it
    when ``o_staging``), the CTA's tile ``rf_tile`` (every other rank of the core whole) and
    every intermediate in registers, the softmax Einsums on the CUDA cores -- and every
    Einsum outside the core as one library kernel. ``w`` has the key split applied."""
    dram, smem, rf = gpu_levels(arch)
    tensor, cuda = gpu_units(arch)
    cas = w.cascade
    by = {e.name: e for e in cas.einsums}
    core = _core(roles)
    ranks = group_ranks(w, FusionGroup(einsums=core, levels=(LevelMapping(level=dram),)))
    rf_t = dict(rf_tile)
    for r, n in ranks.items():
        if r not in grid and r not in hbm_temporal and r not in rf_t:
            rf_t[r] = n
    produced = [by[n].output.name for n in core]
    read_outside = {ref.name for e in cas.einsums if e.name not in core for ref in e.inputs}
    read_outside |= set(cas.outputs)
    on_chip = tuple(t for t in produced if t not in read_outside)
    inputs = list(dict.fromkeys(ref.name for n in core for ref in by[n].inputs))
    smem_keep = [t for t in inputs if t not in produced and t in cas.tensors]
    if o_staging:
        smem_keep += [t for t in produced if t in read_outside]
    units = {n: cuda.name for n in core if not is_contraction(by[n])}
    hbm_t = _nz(hbm_temporal)
    fused = FusionGroup(
        einsums=core,
        levels=(
            LevelMapping(
                level=dram,
                temporal=hbm_t,
                order=tuple(order) if order is not None else tuple(hbm_t),
                spatial=_nz(grid),
            ),
            LevelMapping(level=smem, keep=tuple(smem_keep)),
            LevelMapping(level=rf, temporal=_nz(rf_t), keep=tuple(produced)),
        ),
        on_chip=on_chip,
        compute=tensor.name,
        units=units,
        skip=skip,
        depth=depth,
    )
    groups = [_kernel_group(w, arch, (n,)) for n in roles.pre]
    groups.append(fused)
    groups += [_kernel_group(w, arch, (n,)) for n in roles.post]
    return Mapping(groups=tuple(groups), splits=dict(splits), name=name)


def streamed_key(workload: Workload, roles: AttentionRoles) -> tuple[str, int, bool]:
    """(rank, length, outer streamed) of the keys a CTA streams, as
    :func:`mappings._stream.stream_work` counts them: the key rank, whose split's inner
    extent is the key tile when the score iterates the split's outer part; the inner rank
    alone (the cascade's own chunk) for chunk-local attention (linear's)."""
    cas = workload.cascade
    sizes0 = cas.rank_sizes(_num(workload))
    score = next(e for e in cas.einsums if e.name == roles.score)
    outer = roles.key_outer is not None and roles.key_outer in score.ranks
    if roles.key_outer is None or outer or roles.key in score.ranks:
        return roles.key, int(sizes0[roles.key]), outer
    return str(roles.key_inner), int(sizes0[str(roles.key_inner)]), outer


def _kernel_group(w: Workload, arch: Architecture, names: Sequence[str]) -> FusionGroup:
    """Einsums run as one library kernel (GEMM or memory-bound), every rank looped at the
    DRAM level; intermediates made and used inside the run stay on chip."""
    dram, _, _ = gpu_levels(arch)
    tensor, cuda = gpu_units(arch)
    cas = w.cascade
    by = {e.name: e for e in cas.einsums}
    group = FusionGroup(einsums=tuple(names), levels=(LevelMapping(level=dram),))
    ranks = group_ranks(w, group)
    made = {by[n].output.name for n in names}
    later = {ref.name for e in cas.einsums if e.name not in names for ref in e.inputs}
    on_chip = tuple(t for t in made if t not in later and t not in cas.outputs)
    gemm = len(names) == 1 and is_contraction(by[names[0]])
    return FusionGroup(
        einsums=tuple(names),
        levels=(LevelMapping(level=dram, temporal=_nz(ranks)),),
        on_chip=on_chip,
        compute=(tensor if gemm else cuda).name,
    )


def unfused_mapping(
    workload: Workload, arch: Architecture, *, fuse_elementwise: bool = True
) -> Mapping:
    """``gpu_unfused`` as a :class:`Mapping` (:func:`mappings._gpu._unfused_mapping.
    unfused_mapping`)."""
    from ._unfused_mapping import unfused_mapping as build

    return build(workload, arch, fuse_elementwise=fuse_elementwise)


def _num(workload: Workload) -> dict[str, float]:
    from mappings._stream import numeric_params

    return numeric_params(workload.params)


def _nz(d: AbcMapping[str, int]) -> dict[str, int]:
    return {k: int(v) for k, v in d.items() if int(v) > 1}


# --- checking and reading a mapping back ----------------------------------------------------


def _check_structure(workload: Workload, mapping: Mapping, arch: Architecture) -> None:
    """The general checks of :func:`mappings._check.check_mapping` that apply to a GPU kernel
    mapping (Einsums, levels, units, op kinds, factors, fan-out: the grid runs in waves; the
    CTA's capacity is checked by the caller), plus: an Einsum is in one group only."""
    from mappings._check import check_mapping

    seen: set[str] = set()
    for g, group in enumerate(mapping.groups):
        for e in group.einsums:
            if e in seen:
                raise MappingError(
                    "Einsum mapped twice", path=f"groups[{g}].einsums", expected="once", got=e
                )
            seen.add(e)
    check_mapping(workload, mapping, arch, storage=False)


def kernel_group(
    workload: Workload,
    mapping: Mapping,
    arch: Architecture,
    roles: AttentionRoles,
    *,
    heads_in_cta: bool = False,
) -> tuple[int, FusionGroup, dict[str, int]]:
    """(index, group, rank sizes) of the fused attention core of a kernel mapping, after the
    structural checks every fused GPU kernel shares.

    ``heads_in_cta``: query heads may be rows of one CTA (a decode kernel's GQA packing).

    Raises
    ------
    MappingError
        The general checks (:func:`_check_structure`); core Einsums split over groups, an
        Einsum outside the core not alone in its group, levels other than DRAM / SMEM / RF, a
        batch (or query-head) rank inside a CTA, a CTA tile not holding a whole feature rank.
    """
    _check_structure(workload, mapping, arch)
    w = apply_splits(workload, mapping.splits)
    core = _core(roles)
    g = next((k for k, gr in enumerate(mapping.groups) if roles.score in gr.einsums), -1)
    group = mapping.groups[g]
    path = f"groups[{g}]"
    if set(group.einsums) != set(core):
        raise MappingError(
            f"a {mapping.name} kernel runs the attention core as one fusion group",
            path=f"{path}.einsums",
            expected=sorted(core),
            got=list(group.einsums),
        )
    for k, other in enumerate(mapping.groups):
        if k != g and len(other.einsums) != 1:
            raise MappingError(
                "Einsums outside the fused core run as one kernel each",
                path=f"groups[{k}].einsums",
                expected="one Einsum",
                got=list(other.einsums),
            )
    dram, smem, rf = gpu_levels(arch)
    names = tuple(lm.level for lm in group.levels)
    if names != (dram, smem, rf):
        raise MappingError(
            "a fused GPU kernel maps the grid at DRAM, its inputs in shared memory and its "
            "tile in registers",
            path=f"{path}.levels",
            expected=[dram, smem, rf],
            got=list(names),
        )
    ranks = group_ranks(w, group)
    for r in (*roles.batch, *(() if heads_in_cta else roles.query_heads)):
        if r in ranks and group.tile(r, 1) != 1:
            raise MappingError(
                f"one CTA computes one {r!r} (the grid spans batch and heads)",
                path=f"{path}.factors.{r}",
                expected=f"{r} at the {dram} level (grid)",
                got=f"{group.tile(r, 1)} per CTA",
            )
    for r in (*roles.features, *roles.value_features):
        if r in ranks and group.tile(r, 1) < ranks[r]:
            raise MappingError(
                f"a CTA holds the whole feature rank {r!r} (its rows are reduced in one tile)",
                path=f"{path}.factors.{r}",
                expected=f"{ranks[r]} below {dram}",
                got=group.tile(r, 1),
            )
    return g, group, ranks


def read_fused(
    workload: Workload, mapping: Mapping, arch: Architecture, roles: AttentionRoles
) -> CtaShape:
    """The CTA a fused mapping asks for, after the structural checks.

    Raises
    ------
    MappingError
        Unknown family, a structure a fused kernel cannot run (core Einsums split over
        groups, the CTA tile not holding a whole head dim, a batch or head rank inside a
        CTA, levels other than DRAM / SMEM / RF), a skip the family cannot do.
    """
    recipes = _recipes()
    recipe = recipes.get(mapping.name)
    if recipe is None:
        raise MappingError(
            "unknown GPU kernel family",
            path="name",
            expected=f"one of {list(GPU_MAPPINGS)}",
            got=mapping.name,
        )
    g, group, ranks = kernel_group(workload, mapping, arch, roles)
    path = f"groups[{g}]"
    core = _core(roles)
    skips = set(group.skip)
    if not skips <= set(recipe.skips):
        raise MappingError(
            f"{mapping.name} cannot skip {sorted(skips - set(recipe.skips))}",
            path=f"{path}.skip",
            expected=f"a subset of {sorted(recipe.skips)}",
            got=list(group.skip),
        )
    recipe = replace(recipe, skips=frozenset(skips))
    key_in = roles.key_inner if roles.key_inner in ranks else roles.key
    w = apply_splits(workload, mapping.splits)
    by = {e.name: e for e in w.cascade.einsums}
    tensor, _ = gpu_units(arch)
    fp32 = tuple(
        n
        for n in core
        if is_contraction(by[n]) and (group.unit_of(n) or arch.compute[0].name) != tensor.name
    )
    return CtaShape(
        recipe=recipe,
        group_index=g,
        block_m=group.tile(roles.query, 1),
        block_n=group.tile(key_in, 1),
        stages=int(group.depth or recipe.kv_stages),
        fp32_einsums=fp32,
        features=int(math.prod(ranks.get(r, 1) for r in roles.features)) or 1,
        value_features=int(math.prod(ranks.get(r, 1) for r in roles.value_features)) or 1,
    )


def cta_meta(t: object, stages: int, **extra: object) -> dict[str, object]:
    """The ``cta`` entry of a GPU plan's meta: tile, stages, threads, registers, shared memory
    and CTAs per SM of the tiling ``t`` (an attention or decode tiling), plus ``extra``."""
    return {
        "block_m": t.block_m,  # type: ignore[attr-defined]
        "block_n": t.block_n,  # type: ignore[attr-defined]
        "stages": stages,
        "threads": t.threads,  # type: ignore[attr-defined]
        "regs_per_thread": t.regs,  # type: ignore[attr-defined]
        "smem_bytes": t.smem_bytes,  # type: ignore[attr-defined]
        "ctas_per_sm": t.ctas_per_sm,  # type: ignore[attr-defined]
        **extra,
    }


def check_cta_fits(
    hw: object,
    where: str,
    *,
    cta: str,
    smem: int,
    smem_parts: str,
    regs: int,
    threads: int,
    accumulators: str = "accumulators",
) -> None:
    """Refuse a CTA the SM cannot hold: its shared memory beyond the per-CTA limit, more than
    :data:`MAX_REGS_PER_THREAD` registers per thread, or its registers (allocated per warp in
    units of 256: the occupancy calculator's rule) beyond the register file. ``cta`` names it
    in the message ("the CTA's", "the backward CTA's"); ``where`` is the mapping group's path.

    Raises
    ------
    MappingError
        At ``{where}.levels[1] (SMEM)`` or ``{where}.levels[2] (RF)``, with the bytes.
    """
    cap = int(hw.max_smem_per_cta_bytes)  # type: ignore[attr-defined]
    name = hw.name  # type: ignore[attr-defined]
    if smem > cap:
        raise MappingError(
            f"{cta} tiles overflow shared memory by {smem - cap:,} bytes ({smem_parts})",
            path=f"{where}.levels[1] (SMEM)",
            expected=f"<= {cap:,} B per CTA on {name}",
            got=f"{smem:,} B",
        )
    if regs > MAX_REGS_PER_THREAD:
        raise MappingError(
            f"{cta} {accumulators} need {regs} registers per thread "
            f"({regs * 4 * threads:,} B of registers per CTA for {threads} threads)",
            path=f"{where}.levels[2] (RF)",
            expected=f"<= {MAX_REGS_PER_THREAD} registers per thread "
            f"({MAX_REGS_PER_THREAD * 4 * threads:,} B per CTA)",
            got=regs,
        )
    rf_need = -(-max(regs, 1) * 32 // 256) * 256 * (threads // 32) * 4
    rf_cap = int(hw.regs_per_sm) * 4  # type: ignore[attr-defined]
    if rf_need > rf_cap:
        raise MappingError(
            f"{cta} registers overflow the register file by {rf_need - rf_cap:,} bytes "
            f"({threads} threads x {regs} registers)",
            path=f"{where}.levels[2] (RF)",
            expected=f"<= {rf_cap:,} B per SM on {name}",
            got=f"{rf_need:,} B",
        )


def cta_tiling(
    shape: CtaShape,
    model: GpuModel,
    elt: int,
    *,
    query_len: int,
    key_len: int,
    base: AttnTiling | None = None,
) -> AttnTiling:
    """The CTA of ``shape`` on ``model``'s GPU.

    The family's own tile for this head dim (its block sizes capped at the query and key
    lengths, its stages) is the family's measured CTA (``base``; default
    :func:`archsim.gpu.fwd_tiling`).
    Any other tile: shared memory = ``(Bm D + stages Bn (D + Dv) + [Bm Dv if the output is
    staged]) x bytes + Bm Bn x score bytes in SMEM``; registers per thread = the family's own
    plus the change in fp32 accumulators (score tile ``Bm x Bn`` and output ``Bm x Dv``)
    spread over the warps that hold them; K/V bytes in flight = ``stages x loads per stage x
    Bn (D + Dv) / 2 x bytes``; the family's warps, instruction path and softmax overlap.

    Raises
    ------
    MappingError
        Shared memory per CTA beyond the GPU's limit (path: the SMEM level), registers per
        thread beyond 255 or a CTA's registers beyond the SM's register file (path: the RF
        level), with the bytes.
    """
    r = shape.recipe
    if base is None:
        base = fwd_tiling(r.family, model, shape.features, False, elt)
    own = (min(base.block_m, query_len), min(base.block_n, key_len), r.kv_stages)
    if (shape.block_m, shape.block_n, shape.stages) == own:
        return base
    return recipe_cta(shape, model, elt, base)


def recipe_cta(shape: CtaShape, model: GpuModel, elt: int, base: AttnTiling) -> AttnTiling:
    """The CTA of ``shape`` from its recipe's fields (see :func:`cta_tiling`), registers
    relative to the family's own CTA ``base``; checked against the GPU.

    Raises
    ------
    MappingError
        As :func:`cta_tiling`.
    """
    r = shape.recipe
    d, dv = shape.features, shape.value_features
    hw = model.hw
    bm, bn, st = shape.block_m, shape.block_n, shape.stages
    g = f"groups[{shape.group_index}]"
    q_b, kv_b = bm * d * elt, st * bn * (d + dv) * elt
    o_b = bm * dv * elt if r.o_staging else 0
    s_b = bm * bn * r.score_smem_bytes
    if r.smem_union:  # Q + K for QK^T, then the same bytes hold P + V for PV
        smem = int(max(q_b + st * bn * d * elt, s_b + st * bn * dv * elt) + o_b)
    else:
        smem = int(q_b + kv_b + o_b + s_b)
    parts = f"Q {q_b:,} + {st} stages of K/V {kv_b:,}"
    parts += f" + O {o_b:,}" if o_b else ""
    parts += f" + scores {s_b:,}" if s_b else ""
    threads = base.threads
    holders = max(threads - 32 * r.producer_warps, 32)

    def acc(m: int, n: int) -> int:
        return math.ceil(m * (n + dv) / holders)  # fp32 score tile + output accumulators

    regs = base.regs + acc(bm, bn) - acc(base.block_m, base.block_n)
    check_cta_fits(
        hw, g, cta="the CTA's", smem=smem, smem_parts=f"{parts} B", regs=regs, threads=threads
    )
    inflight = int(st * r.loads_per_stage * bn * (d + dv) * elt // 2)
    t = make_tiling(
        hw, bm, bn, threads // 32, max(regs, 1), smem, r.path, r.softmax_overlap, inflight
    )
    # an issue-bound family keeps its kernel's instructions per score and issue fraction
    # (measured on its own CTA; another tile of the same kernel code is assumed alike)
    return replace(t, instr_per_score=base.instr_per_score, issue_frac=base.issue_frac)


# --- plans ----------------------------------------------------------------------------------


def gpu_mapping_plan(workload: Workload, mapping: Mapping, arch: Architecture) -> Plan:
    """The GPU plan of ``mapping`` (``name``: one of :data:`GPU_MAPPINGS`), carrying it.

    Raises
    ------
    MappingError
        A mapping no GPU kernel runs (see :func:`read_fused`, :func:`cta_tiling`, and the
        decode, sparse and GEMM readers), a cascade the kernel refuses (more than one pass
        over the keys: use ``gpu_unfused``; a prefill for a decode kernel; no sparsity
        annotation for a sparse one; not a single contraction for a GEMM; not chunked linear
        attention for ``linear_chunked``).
    """
    from ._common import model_for

    model_for(arch)
    name = mapping.name
    if name == UNFUSED:
        from ._unfused_mapping import unfused_mapping_plan

        return unfused_mapping_plan(workload, mapping, arch)
    if name == GEMM:
        from .gemm import gemm_mapping_plan

        return gemm_mapping_plan(workload, mapping, arch)
    if name in LINEAR:
        from .linear_mapping import chunk_mapping_plan

        return chunk_mapping_plan(workload, mapping, arch)
    if name in SPARSE:
        from .sparse import sparse_mapping_plan

        return sparse_mapping_plan(workload, mapping, arch)
    if name in FUSED:
        from .backward import backward_mapping_plan, is_gradient_cascade

        if is_gradient_cascade(workload.cascade):  # the family's key-outer backward kernel
            return backward_mapping_plan(workload, mapping, arch)
    if name in DECODE or (name in FUSED and _query_len(workload) == 1):
        from .decode import decode_mapping_plan

        return decode_mapping_plan(workload, mapping, arch)
    if name not in FUSED:
        raise MappingError(
            "a GPU mapping names its kernel family",
            path="name",
            expected=f"one of {list(GPU_MAPPINGS)}",
            got=name or None,
        )
    return fused_plan(name, workload, arch, mapping)


def _query_len(workload: Workload) -> int:
    """Length of the cascade's query rank (attention cascades; 0 for others)."""
    try:
        roles = attention_roles(workload.cascade)
    except MappingError:
        return 0
    return int(workload.cascade.rank_sizes(_num(workload))[roles.query])


def fused_plan(
    name: str,
    workload: Workload,
    arch: Architecture,
    mapping: Mapping,
    roles: AttentionRoles | None = None,
) -> Plan:
    """Plan of the fused kernel ``mapping`` describes (``name`` is the dataflow reported)."""
    from mappings._passes import cascade_passes
    from mappings._registry import PassInfo
    from mappings._stream import numeric_params

    from ._common import dtype_of, model_for
    from ._spine import check_one_pass, fused_kernel, recipe_plan

    model = model_for(arch)
    roles = roles or attention_roles(workload.cascade)
    check_one_pass(workload, roles, mapping.name)
    sizes0 = workload.cascade.rank_sizes(numeric_params(workload.params))
    if int(sizes0[roles.query]) == 1:
        raise MappingError(
            f"a {mapping.name} mapping describes a prefill kernel; a query length of 1 runs "
            "the family's decode kernels",
            path="workload.cascade",
            expected=f"query length {roles.query!r} > 1 (or --dataflow {mapping.name})",
            got=1,
        )
    shape = read_fused(workload, mapping, arch, roles)
    dtype = dtype_of(workload)
    elt = dtype_bytes(dtype)
    t = cta_tiling(
        shape,
        model,
        elt,
        query_len=int(sizes0[roles.query]),
        key_len=streamed_key(workload, roles)[1],
    )
    fk = fused_kernel(
        workload,
        shape.recipe,
        model,
        dtype,
        lambda _d, _causal: t,
        roles=roles,
        fp32_einsums=shape.fp32_einsums,
    )
    w = fk.work
    d = shape.features
    passes = PassInfo(
        passes=1,
        buffer_bytes=float(t.smem_bytes),
        buffer_formula=smem_formula(shape, t, elt),
        reason=cascade_passes(workload.cascade, roles.key)[1],
    )
    notes = (
        f"{name}: {t.block_m}x{t.block_n} tiles, {t.ctas_per_sm} CTA/SM, {t.path}; "
        f"forward; {w.work_items} CTAs x {w.total_trips / max(w.work_items, 1):.1f} trips"
        + (f"; pre {list(roles.pre)}" if roles.pre else "")
        + (f"; post {list(roles.post)}" if roles.post else "")
    )
    plan = recipe_plan(
        name,
        workload,
        arch,
        model,
        fk,
        passes=passes,
        notes=notes,
        extra_meta={
            "tile": f"{t.block_m}x{t.block_n}",
            "path": t.path,
            "cta": cta_meta(t, shape.stages, features=d),
        },
    )
    return replace(plan, mapping=mapping)


def smem_formula(shape: CtaShape, t: AttnTiling, elt: int) -> str:
    r = shape.recipe
    terms = "Bm D + stages Bn (D + Dv)" + (" + Bm Dv" if r.o_staging else "")
    vals = (
        f"{t.block_m}*{shape.features} + {shape.stages}*{t.block_n}*"
        f"({shape.features}+{shape.value_features})"
        + (f" + {t.block_m}*{shape.value_features}" if r.o_staging else "")
    )
    s = f"({terms}) * bytes = ({vals})*{elt}"
    if r.score_smem_bytes:
        s += f" + Bm Bn * {r.score_smem_bytes}"
    return s + " per CTA"
