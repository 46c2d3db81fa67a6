"""GPU attention backward as recipes over the gradient cascade (``flash2`` / ``flash3`` /
``mem_efficient`` with ``pass_="bwd"``, or any of them on a gradient cascade).

The workload is a gradient cascade (:func:`workloads._grad.attention_backward`: given a
forward cascade and ``pass_="bwd"`` it is derived; ``mha_bwd`` / ``gqa_bwd`` or a user's own
gradient cascade is taken as it is). The FlashAttention-2 backward is *key-outer*
("seqk-parallel", Dao 2023, Algorithm 2; ``flash_bwd_launch_template.h``): a CTA owns a tile
of ``Bn`` keys of one (batch, query head), keeps ``K``/``V`` of its tile in shared memory and
``dK``/``dV`` in registers, and streams tiles of ``Bm`` query rows (``Q``, ``dO``, ``LSE``,
``Delta``) in trips; each trip adds its partial ``dQ`` into an fp32 accumulator in global
memory with atomics. So the mapping is the forward's with the roles turned round
(:func:`backward_roles`): the work item's rank is the *key* rank, the streamed rank the
*query* rank, every query-side head rank a grid rank, and the generic counting of
:func:`mappings._stream.stream_work` gives the trips per CTA (causal / sliding-window
conditions applied per key block), the MACs and every op kind per trip, and the bytes.

Kernels (as ``archsim.gpu.attention_bwd_costs`` names them): the Einsums before the core
(``Delta = rowsum(dO o O)``) plus the clearing of the ``dQ`` accumulator as the family's
preprocess kernel; the core; the conversion of the fp32 ``dQ`` accumulator to the output
type; and, when the family writes ``dK``/``dV`` per query head
(:attr:`BackwardRecipe.kv_grads_per_query_head`) and the cascade sums them over a group of
query heads (GQA), the reduce kernel. What the family does that the cascade does not say
is a named field of :class:`BackwardRecipe`.

Tiles: the family's own tile for the head dim (:attr:`BackwardRecipe.tiling`, the measured /
launch-template CTA) is the default; any other key block ``Bn``, query tile ``Bm``,
``Q``/``dO`` stage count (a mapping's ``depth``) and MMA warp count gets its CTA from the
family's own by the change in its tiles and warps (:func:`backward_cta`), checked against
the GPU's shared memory per CTA, registers (per thread and per SM) and threads per SM. The
``fusion`` mapper searches the tiles, stages and warps the family instantiates
(:attr:`BackwardRecipe.block_ms`, ``block_ns``, ``stage_choices``, ``warp_choices``; a family
whose warps follow its tile, :attr:`BackwardRecipe.warp_tile`, gets them from the tile).

Warps in the mapping: the warps that hold the CTA's accumulators tile the CTA's tile, so
they are the register-file level's ``spatial`` factors (:func:`warp_layout`: over the CTA's
keys first -- FA2's ``AtomLayoutNdKV``, FA3's MMA warpgroups along ``N`` of ``dK``/``dV``
-- the rest over the query rows of a trip); their product is the MMA warp count
(:func:`mapping_warps`). No such factor: the family's own warps (the default mapping).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from archsim.errors import MappingError, WorkloadError
from archsim.gpu import FAMILIES, KernelCost, dtype_bytes, streaming_cost
from archsim.gpu.attention import BWD_Q_BUFFERS, L2_REUSE, trip_kernel_cost
from archsim.gpu.heuristics import (
    AttnTiling,
    fa2_bwd_tiling,
    fa3_bwd_tiling,
    make_tiling,
    memeff_bwd_tiling,
)
from mappings._mapping import FusionGroup
from mappings._mapping import Mapping as LoopMapping
from mappings._registry import PassInfo, Plan
from mappings._roles import AttentionRoles, attention_roles, is_contraction, key_canon
from mappings._stream import StreamTiling, StreamWork, add_ops, numeric_params, stream_work

from ._common import dtype_of, gpu_plan, model_for
from ._kv_reads import kv_dram_reads
from ._mapping import attention_mapping, check_cta_fits, cta_meta, kernel_group
from ._spine import FusedRecipe, _finish, einsum_ops, tensor_bytes, trip_work

if TYPE_CHECKING:
    from archsim import Architecture
    from archsim.gpu import GpuHardware, GpuModel
    from mappings._registry import WorkloadLike

__all__ = [
    "BackwardRecipe",
    "BWD_RECIPES",
    "backward_roles",
    "is_gradient_cascade",
    "gradient_workload",
    "backward_mapping",
    "backward_plan",
    "backward_mapping_plan",
    "backward_cta",
    "bwd_smem_bytes",
    "bwd_accumulators",
    "warp_layout",
    "mapping_warps",
    "own_warps",
]


@dataclass(frozen=True)
class BackwardRecipe(FusedRecipe):
    """A fused attention backward kernel family (the :class:`FusedRecipe` fields, plus:).

    Attributes
    ----------
    tiling
        The family's backward tile heuristic ``(hardware, D, element bytes) -> AttnTiling``
        (``Bm`` query rows per trip, ``Bn`` keys per CTA, warps, registers, shared memory).
    pre_kernel, convert_kernel, reduce_kernel
        Names of the preprocess (``Delta`` and the ``dQ`` accumulator cleared), ``dQ``
        conversion and GQA ``dK``/``dV`` reduce kernels.
    dq_accum_bytes
        Bytes per element of the accumulator the CTAs add their partial ``dQ`` into in
        global memory (fp32 atomics: 4): read and written once per trip, cleared before,
        converted after.
    kv_grads_per_query_head
        ``dK``/``dV`` are written per query head (FA2's ``dk_expanded``) and summed over
        the query heads of a K/V head by a separate reduce kernel.
    score_overhead_ops
        FP32 ops per score the kernel runs beyond the cascade's (``sub`` of ``P``, ``sub``
        and ``mul`` of ``dS``): the conversions of ``P`` and ``dS`` to the MMA input type
        and the mask select -- 3, which with the cascade's 3 gives the 6 per score of the
        closed-form model.
    block_ms, block_ns, stage_choices
        The query tiles ``Bm``, key blocks ``Bn`` and ``Q``/``dO`` pipeline stages the
        ``fusion`` mapper searches (any other tile a mapping names is run with the same CTA
        rule, checked for capacity: a stage holds one ``Q`` and one ``dO`` tile in shared
        memory, ``Q`` at least :attr:`q_buffers`). The tile program's pipeline depth is
        ``max(stages, q_buffers)`` (the ``Q`` buffers; the ``dQ`` accumulator's
        read-modify-write is no stage). NOTE: the mapper searches the family's own stage
        count only. FA3 instantiates ``Stages_dO`` 1 (head dims 192 / 256) and 2, with two
        ``Q`` buffers either way (sm90 ``Stages = 2``), so the program's depth is 2 at both
        and at equal clocks they take the same time (``dO``, released after the ``dV``
        GEMM, loads behind the ``dQ`` and ``dK`` GEMMs, which the whole-trip depth does not
        resolve). But the kernel model's in-flight bytes follow ``stages x Bm``: at one
        stage it is latency-bound, its lower power lifts the program's clock, and the
        program ranks one stage faster. Measured (h100, mha_bwd B1 H32 S8192 D128, flash3
        64x128, event engine): one stage 8,276,076 cycles at 1.98 GHz (kernel model:
        latency-bound), two 8,760,554 at 1.84 GHz (compute-bound). Enable ``(1, 2)`` once
        the kernel model's in-flight bytes follow the ``Q`` buffers too
        (tests/mappings/test_gpu_backward_warps_stages.py holds the tripwire).
    warp_choices
        Warps holding accumulators (MMA warps, beside ``producer_warps``) per CTA the
        ``fusion`` mapper searches; empty: the family's own only. A mapping may name any
        count (checked: a whole number of warpgroups on the ``wgmma`` path, threads per SM,
        registers). NOTE: FA3's third MMA warpgroup (12 MMA warps, head dim 192) is left
        out for the reason stages are: at equal clocks both evaluators find it slower
        (h100, mha_bwd B1 H16 S4096 D64, flash3 64x96: kernel model 467 vs 367 us, tile
        program 2% slower), but the kernel model's lower power lifts the program's clock
        from 1.90 to 1.98 GHz and the program then ranks it 2% faster (the pipeline depth,
        2 at both, does not enter).
    q_buffers
        ``Q`` tile buffers the family keeps whatever its ``Q``/``dO`` stage count (the
        ``dO`` buffers): a stage count below it leaves ``Q`` at ``q_buffers`` tiles (shared
        memory, :func:`bwd_smem_bytes`) and the tile program's pipeline depth at
        ``max(stages, q_buffers)`` -- a trip's ``Q`` tile is held until its last GEMM
        (``dK += dS^T Q``), ``dO`` is released after the ``dV`` GEMM, so the ``Q`` buffers
        gate the next trip's loads (:data:`archsim.gpu.attention.BWD_Q_BUFFERS`, sources
        there).
    warp_tile
        ``(query rows, keys)`` one warp computes when the family sets its warps from its
        tile (cutlass: ``kNumWarpsPerBlock = kBlockSizeI x kBlockSizeJ / (32 x 32)``); then
        warps = ``Bm Bn / (rows x keys)`` and a mapping naming other warps is refused. None:
        the warps are a choice (``warp_choices``).
    """

    tiling: Callable[[GpuHardware, int, int], AttnTiling] | None = None
    block_ms: tuple[int, ...] = (64, 128)
    block_ns: tuple[int, ...] = (64, 128)
    stage_choices: tuple[int, ...] = (1,)
    warp_choices: tuple[int, ...] = ()
    warp_tile: tuple[int, int] | None = None
    pre_kernel: str = "flash_bwd_dot_do_o_kernel"
    convert_kernel: str = "flash_bwd_convert_dq_kernel"
    reduce_kernel: str = "reduce_kernel"
    dq_accum_bytes: int = 4
    kv_grads_per_query_head: bool = True
    q_buffers: int = BWD_Q_BUFFERS


#: The backward recipes: FlashAttention-2 (mma.sync, ``flash_bwd_launch_template.h``), the
#: Hopper cuDNN / FA3 kernel (wgmma, a producer and 2 consumer warpgroups, Q/dO double
#: buffered, longest key blocks first when masked), cutlass memory-efficient
#: (``fmha_cutlassB``); own tiles from archsim.gpu.heuristics. Searched, as the libraries
#: instantiate them (Dao-AILab/flash-attention ``csrc/flash_attn/src/
#: flash_bwd_launch_template.h``, ``hopper/flash_bwd_launch_template.h``; xformers
#: ``kernel_backward.h``): FA2's ``Flash_bwd_kernel_traits`` (kBlockM, kBlockN in {64,
#: 128}; kNWarps 8 as dispatched, 4 in the alternatives ``run_mha_bwd_hdim64`` lists);
#: FA3's sm90 ``run_mha_bwd_dispatch`` (kBlockM 64 / 128, kBlockN 64 / 96 / 128;
#: NumMmaWarpGroups 2, and 3 at head dim 192; Stages_dO 2, and 1 at head dims 192 / 256,
#: ``Q`` Stages 2 always: the mapper leaves the 3 and the 1 out for now, see
#: :attr:`BackwardRecipe.stage_choices` and ``warp_choices``);
#: cutlass ``AttentionBackwardKernel`` (kBlockSizeI, kBlockSizeJ in {64, 128}, one warp per
#: 32 x 32 of the tile).
BWD_RECIPES: dict[str, BackwardRecipe] = {
    "flash2": BackwardRecipe(
        "flash2", "flash2", FAMILIES["flash2"][2], score_overhead_ops=3.0, persistent=False,
        tiling=fa2_bwd_tiling, warp_choices=(4, 8),
    ),
    "flash3": BackwardRecipe(
        "flash3", "flash3", FAMILIES["flash3"][2], score_overhead_ops=3.0, persistent=False,
        lpt_when_masked=True, path="wgmma", tiling=fa3_bwd_tiling, producer_warps=4,
        kv_stages=2, block_ns=(64, 96, 128), stage_choices=(2,), warp_choices=(8,),
    ),
    "mem_efficient": BackwardRecipe(
        "mem_efficient", "efficient", FAMILIES["efficient"][2], score_overhead_ops=3.0,
        persistent=False, tiling=memeff_bwd_tiling, stage_choices=(1,), warp_tile=(32, 32),
    ),
}  # fmt: skip


# --- roles of a gradient cascade ----------------------------------------------------------


def _key_side_outputs(cascade, roles: AttentionRoles) -> list[str]:  # noqa: ANN001
    """Outputs over the key rank with the query rank summed away (``dK``, ``dV``)."""
    canon = key_canon(cascade)
    out = []
    for n in cascade.outputs:
        ranks = {canon.get(r, r) for r in cascade.tensors[n].ranks}
        if roles.key in ranks and roles.query not in ranks:
            out.append(n)
    return out


def is_gradient_cascade(cascade) -> bool:  # noqa: ANN001
    """Whether ``cascade`` is attention-like and writes a key-side gradient (``dK``/``dV``)."""
    try:
        roles = attention_roles(cascade)
    except MappingError:
        return False
    return bool(_key_side_outputs(cascade, roles))


def backward_roles(cascade, dataflow: str = "backward") -> AttentionRoles:  # noqa: ANN001
    """Roles of a gradient cascade turned round for a key-outer kernel (module doc).

    ``query`` is the cascade's key rank (a CTA's rows), ``key`` its query rank (streamed),
    ``batch`` the shared batch/head ranks and the query-side head ranks (one CTA each),
    ``core`` the Einsums over both ranks, ``pre`` the others (``Delta``).

    Raises
    ------
    MappingError
        Not attention-like; no output over the key rank with the query rank summed (not a
        gradient cascade); the key or query rank split (running state along either).
    """
    fr = attention_roles(cascade)
    kv_out = _key_side_outputs(cascade, fr)
    if not kv_out:
        raise MappingError(
            f"{dataflow}: cascade {cascade.name!r} is not an attention gradient",
            path="workload.cascade",
            expected="outputs over the key rank with the query rank summed (dK, dV)",
            got=list(cascade.outputs),
        )
    split = [r for r in (fr.key, fr.query) if r in cascade.splits]
    if split or fr.key_outer:
        raise MappingError(
            f"{dataflow}: a key-outer backward streams whole query and key ranks",
            path="workload.cascade",
            expected="no split of the query or key rank (no running state)",
            got=f"split ranks {split or [fr.key]}",
        )
    by = {e.name: e for e in cascade.einsums}
    core = [e.name for e in cascade.einsums if {fr.query, fr.key} <= set(e.ranks)]
    made = {by[n].name for n in core}
    after: set[str] = set()
    for e in cascade.einsums:
        if e.name not in made and any(r.name in made | after for r in e.inputs):
            after.add(e.name)
    if after:
        raise MappingError(
            f"{dataflow}: Einsums after the backward core are not mapped",
            path="workload.cascade",
            expected="every Einsum over the query and key ranks, or before them",
            got=sorted(after),
        )
    pre = tuple(e.name for e in cascade.einsums if e.name not in made)
    value = next(
        (n for n in core if is_contraction(by[n]) and n in kv_out), kv_out[0]
    )  # dV: the contraction writing a key-side gradient
    vfeat = tuple(r for r in cascade.tensors[value].ranks if r != fr.key and r not in fr.batch)
    return AttentionRoles(
        score=fr.score,
        value_contraction=value,
        query=fr.key,
        query_heads=(),
        key=fr.query,
        key_outer=None,
        key_inner=None,
        key_split_param=None,
        batch=(*fr.batch, *fr.query_heads),
        features=fr.features,
        value_features=vfeat,
        core=tuple(core),
        rows=(),
        pre=pre,
        epilogue=(),
        post=(),
        query_operand=fr.key_operand,
        key_operand=fr.query_operand,
        value_operand=fr.value_operand,
        iterative=(),
    )


@dataclass(frozen=True)
class _Derived:
    """A gradient cascade derived from a forward workload (a ``WorkloadLike``)."""

    name: str
    cascade: object
    params: Mapping[str, object]
    sizes: dict[str, int]


def gradient_workload(workload: WorkloadLike, dataflow: str) -> WorkloadLike:
    """``workload`` itself when its cascade is a gradient, else its derived gradient.

    Raises
    ------
    MappingError
        The forward cascade lacks a property the derivation needs (named, from
        :func:`workloads._grad.attention_backward`).
    """
    if is_gradient_cascade(workload.cascade):
        return workload
    from workloads._grad import attention_backward

    try:
        grad = attention_backward(workload.cascade, name=f"{workload.cascade.name}_bwd")
    except WorkloadError as exc:
        raise MappingError(
            f"{dataflow} backward: {exc.detail}",
            path="workload.cascade",
            expected=exc.expected,
            got=exc.got,
        ) from None
    params = dict(workload.params)
    sizes = grad.rank_sizes(numeric_params(params))
    return _Derived(f"{workload.name}_bwd", grad, params, sizes)  # type: ignore[return-value]


# --- the mapping ---------------------------------------------------------------------------


def backward_mapping(
    workload: WorkloadLike,
    arch: Architecture,
    roles: AttentionRoles,
    recipe: BackwardRecipe,
    *,
    block_m: int,
    block_n: int,
    stages: int | None = None,
    warps: int | None = None,
) -> LoopMapping:
    """The key-outer kernel as a :class:`~mappings.Mapping`: the grid (batch, heads and key
    blocks of ``block_n`` keys, one CTA each) spatial and the trips over query tiles of
    ``block_m`` rows temporal at DRAM, the inputs in shared memory, the ``block_n x
    block_m`` tile and every intermediate in registers, ``stages`` ``Q``/``dO`` stages
    (``depth``; default the recipe's), ``warps`` MMA warps tiling the tile as the register
    level's spatial factors (:func:`warp_layout`; None: the family's own, no factor);
    ``Delta`` one kernel before.

    Raises
    ------
    MappingError
        ``warps`` that do not tile the (capped) ``block_n x block_m`` tile.
    """
    from mappings._mapping import FusionGroup, LevelMapping
    from mappings._tensors import group_ranks

    core = FusionGroup(einsums=roles.core, levels=(LevelMapping(level="_"),))
    ranks = group_ranks(workload, core)  # type: ignore[arg-type]
    keys, rows = roles.query, roles.key
    bn, bm = min(block_n, ranks[keys]), min(block_m, ranks[rows])
    grid = {r: ranks[r] for r in roles.batch if ranks.get(r, 1) > 1}
    grid[keys] = math.ceil(ranks[keys] / bn)
    skip = tuple(s for s in ("condition", "block", "slice") if s in recipe.skips)
    m = attention_mapping(
        workload,  # type: ignore[arg-type]
        arch,
        roles,
        recipe.dataflow,
        splits={},
        grid=grid,
        hbm_temporal={rows: math.ceil(ranks[rows] / bm)},
        rf_tile={keys: bn, rows: bm},
        skip=skip,
        depth=stages if stages is not None else recipe.kv_stages,
    )
    if warps is None:
        return m
    layout = warp_layout(warps, {keys: bn, rows: bm})
    g = next(k for k, gr in enumerate(m.groups) if roles.score in gr.einsums)
    group = m.groups[g]
    rf = group.levels[2]
    temporal = {r: (f // layout[r] if r in layout else f) for r, f in rf.temporal.items()}
    rf = rf.model_copy(update={"temporal": temporal, "spatial": layout})
    group = group.model_copy(update={"levels": (*group.levels[:2], rf)})
    return m.model_copy(update={"groups": (*m.groups[:g], group, *m.groups[g + 1 :])})


def warp_layout(warps: int, tile: Mapping[str, int]) -> dict[str, int]:
    """Warps over the ranks of a CTA's tile, in ``tile``'s order (the CTA's keys, then the
    query rows of a trip): each rank takes the largest divisor of the warps still to place
    that divides its extent (only ranks with a factor above 1 are listed).

    Raises
    ------
    MappingError
        ``warps`` below 1, or warps that do not tile ``tile`` (a remainder no rank divides).
    """
    if warps < 1:
        raise MappingError(
            "a backward CTA has at least one MMA warp",
            path="groups.levels[2].spatial",
            expected=">= 1",
            got=warps,
        )
    left, out = warps, {}
    for r, n in tile.items():
        f = math.gcd(left, int(n))
        if f > 1:
            out[r] = f
            left //= f
    if left != 1:
        raise MappingError(
            f"{warps} warps do not tile the backward CTA's tile {dict(tile)}",
            path="groups.levels[2].spatial",
            expected="warps whose factors divide the tile's ranks",
            got=warps,
        )
    return out


def mapping_warps(group: FusionGroup) -> int | None:
    """MMA warps a backward kernel group names: the product of its register level's
    ``spatial`` factors; None when it names none (the family's own)."""
    spatial = group.levels[2].spatial if len(group.levels) > 2 else {}
    return int(math.prod(int(f) for f in spatial.values())) if spatial else None


# --- the CTA of a tile -----------------------------------------------------------------------


def bwd_smem_bytes(
    bm: int, bn: int, stages: int, d: int, dv: int, elt: int, q_buffers: int = 1
) -> int:
    """Shared memory of a key-outer backward CTA's tiles, bytes: ``max(stages,
    q_buffers)`` tiles of ``Q`` (``Bm x D``) and ``stages`` of ``dO`` (``Bm x Dv``), the
    CTA's ``K`` (``Bn x D``) and ``V`` (``Bn x Dv``), and the ``P`` and ``dS`` tiles (``Bm x
    Bn`` each) that are MMA operands of the ``dV``, ``dK`` and ``dQ`` products -- all in the
    input type (``elt`` bytes). With one stage, one ``Q`` buffer and ``D = Dv`` this is
    FA2's ``(2 Bm + 2 Bn) D + 2 Bm Bn`` elements (:func:`archsim.gpu.heuristics.fa2_bwd_tiling`)."""
    q_tiles = max(stages, q_buffers)
    return int((q_tiles * bm * d + stages * bm * dv + bn * (d + dv) + 2 * bm * bn) * elt)


def bwd_accumulators(bm: int, bn: int, d: int, dv: int) -> int:
    """FP32 values a key-outer backward CTA holds in registers: ``dK`` and ``dV`` of its
    keys (``Bn x (D + Dv)``), the score / probability and ``dP`` / ``dS`` tiles (``2 Bm x
    Bn``) and the partial ``dQ`` of a trip (``Bm x D``) before its atomic add."""
    return int(bn * (d + dv) + 2 * bm * bn + bm * d)


def own_warps(recipe: BackwardRecipe, base: AttnTiling, block_m: int, block_n: int) -> int:
    """MMA warps of ``recipe``'s CTA at a ``block_m x block_n`` tile when the mapping names
    none: one per :attr:`BackwardRecipe.warp_tile` of the tile for a family whose warps follow
    its tile, else the family's own CTA's (``base``: its threads less the producer warps)."""
    if recipe.warp_tile is not None:
        rows, keys = recipe.warp_tile
        return max(1, math.ceil(block_m * block_n / (rows * keys)))
    return max(1, base.threads // 32 - recipe.producer_warps)


def backward_cta(
    recipe: BackwardRecipe,
    hw: GpuHardware,
    base: AttnTiling,
    *,
    block_m: int,
    block_n: int,
    stages: int,
    d: int,
    dv: int,
    elt: int,
    warps: int | None = None,
    where: str = "groups[0]",
) -> AttnTiling:
    """The CTA of a ``block_n``-key, ``block_m``-query-row, ``stages``-stage, ``warps``-MMA-warp
    backward tile of ``recipe`` on ``hw``, from the family's own CTA ``base`` (its tiling
    heuristic at this head dim) by the change in its tiles and warps: shared memory ``base +``
    :func:`bwd_smem_bytes` (new - own); registers per thread ``base +``
    :func:`bwd_accumulators` spread over the new MMA warps ``-`` the own accumulators spread
    over the own MMA warps (a thread's other registers stay); threads = (MMA +
    ``producer_warps``) x 32; ``Q``/``dO`` bytes in flight scaled by ``stages x Bm``; the
    family's instruction path, overlap and issue figures. ``warps`` None: :func:`own_warps`.
    The own tile (``base``'s block sizes and warps at the recipe's stages) is ``base`` itself.

    Raises
    ------
    MappingError
        Shared memory per CTA beyond the GPU's limit (path ``{where}.levels[1] (SMEM)``),
        registers per thread beyond 255 or a CTA's registers beyond the SM's register file
        (path ``{where}.levels[2] (RF)``), with the bytes; threads beyond the SM's, MMA warps
        that are not whole warpgroups on the ``wgmma`` path, or warps other than the tile's
        for a family whose warps follow its tile (path ``{where}.levels[2].spatial``); a
        tile, stage or warp count below 1.
    """
    base_warps = max(1, base.threads // 32 - recipe.producer_warps)
    mma = own_warps(recipe, base, block_m, block_n) if warps is None else warps
    for name, v in (("block_m", block_m), ("block_n", block_n), ("stages", stages), ("warps", mma)):
        if v < 1:
            path = {"stages": f"{where}.depth", "warps": f"{where}.levels[2].spatial"}
            raise MappingError(
                f"a backward CTA's {name} is at least 1",
                path=path.get(name, f"{where}.levels[2] (RF)"),
                expected=">= 1",
                got=v,
            )
    _check_warps(recipe, hw, base, block_m, block_n, mma, where)
    own = (base.block_m, base.block_n, recipe.kv_stages, base_warps)
    if (block_m, block_n, stages, mma) == own:
        return base
    bm, bn, st = block_m, block_n, stages
    qb = recipe.q_buffers
    smem = base.smem_bytes + bwd_smem_bytes(bm, bn, st, d, dv, elt, qb)
    smem -= bwd_smem_bytes(own[0], own[1], own[2], d, dv, elt, qb)
    threads = (mma + recipe.producer_warps) * 32
    holders, base_holders = 32 * mma, 32 * base_warps
    regs = base.regs + math.ceil(bwd_accumulators(bm, bn, d, dv) / holders)
    regs -= math.ceil(bwd_accumulators(own[0], own[1], d, dv) / base_holders)
    check_cta_fits(
        hw,
        where,
        cta="the backward CTA's",
        smem=smem,
        smem_parts=f"{max(st, qb)} Q tile(s) {max(st, qb) * bm * d * elt:,} + {st} dO "
        f"tile(s) {st * bm * dv * elt:,} + K/V "
        f"{bn * (d + dv) * elt:,} + P/dS {2 * bm * bn * elt:,} B, beside the "
        f"{recipe.dataflow} kernel's own {base.smem_bytes:,} B at {own[0]}x{own[1]}",
        regs=regs,
        threads=threads,
        accumulators=f"accumulators (dK, dV, P, dS, dQ) over {mma} MMA warps",
    )
    inflight = int(base.inflight_bytes * (st * bm) / (own[2] * own[0]))
    overlap = base.intra_overlap if base.intra_overlap > 0 else None
    t = make_tiling(
        hw, bm, bn, threads // 32, max(regs, 1), smem, base.path, overlap, max(inflight, 1)
    )
    # an issue-bound family keeps its kernel's instructions per score and issue fraction
    return replace(t, instr_per_score=base.instr_per_score, issue_frac=base.issue_frac)


def _check_warps(
    recipe: BackwardRecipe,
    hw: GpuHardware,
    base: AttnTiling,
    block_m: int,
    block_n: int,
    mma: int,
    where: str,
) -> None:
    """Refuse MMA warps the family cannot run (see :func:`backward_cta`, Raises)."""
    path = f"{where}.levels[2].spatial"
    if recipe.warp_tile is not None:
        want = own_warps(recipe, base, block_m, block_n)
        if mma != want:
            rows, keys = recipe.warp_tile
            raise MappingError(
                f"{recipe.dataflow} sets its warps from its tile: one per {rows}x{keys} of "
                f"the {block_m}x{block_n} tile",
                path=path,
                expected=f"{want} MMA warps (or no spatial factor)",
                got=mma,
            )
    if base.path == "wgmma" and mma % 4:
        raise MappingError(
            f"{recipe.dataflow} issues wgmma from whole warpgroups (4 warps each)",
            path=path,
            expected="MMA warps a multiple of 4",
            got=mma,
        )
    threads = (mma + recipe.producer_warps) * 32
    if threads > hw.max_threads_per_sm:
        raise MappingError(
            f"the backward CTA's {mma} MMA + {recipe.producer_warps} producer warps exceed "
            f"the SM's threads",
            path=path,
            expected=f"<= {hw.max_threads_per_sm} threads per SM on {hw.name}",
            got=f"{threads} threads",
        )


# --- the plan ------------------------------------------------------------------------------


def _accumulated(cascade, roles: AttentionRoles) -> list[str]:  # noqa: ANN001
    """Core outputs over the streamed (query) rank: summed over key blocks (``dQ``)."""
    return [
        n for n in roles.core if (n in cascade.outputs) and roles.key in cascade.tensors[n].ranks
    ]


def _per_item_grads(cascade, roles: AttentionRoles) -> list[str]:  # noqa: ANN001
    """Core outputs written once per CTA (``dK``, ``dV``)."""
    acc = set(_accumulated(cascade, roles))
    return [n for n in roles.core if n in cascade.outputs and n not in acc]


def _memory(model: GpuModel, name: str, read: float, write: float, alu: float) -> KernelCost:
    """A streaming kernel with archsim.gpu.attention's grid rule for the backward helpers
    (one CTA per 64 KiB moved, at most 8 per SM)."""
    ctas = max(1, min(model.hw.sms * 8, math.ceil((read + write) / 65536)))
    return streaming_cost(
        model, name=name, category="elementwise", read_bytes=read, write_bytes=write,
        alu_ops=alu, ctas=ctas,
    )  # fmt: skip


def backward_plan(
    name: str, workload: WorkloadLike, arch: Architecture, mapping: LoopMapping
) -> Plan:
    """Plan of the key-outer backward kernel ``mapping`` describes on a gradient cascade.

    Raises
    ------
    MappingError
        Not a gradient cascade (:func:`backward_roles`), a mapping structure the kernel
        cannot run (:func:`~mappings._gpu._mapping.kernel_group`), a skip the family cannot
        do, a tile whose CTA does not fit the GPU (shared memory, registers:
        :func:`backward_cta`), sparsity the family cannot skip.
    """
    family_name = mapping.name
    recipe = BWD_RECIPES.get(family_name)
    if recipe is None:
        raise MappingError(
            "unknown GPU backward kernel family",
            path="name",
            expected=f"one of {sorted(BWD_RECIPES)}",
            got=family_name,
        )
    cascade = workload.cascade
    roles = backward_roles(cascade, family_name)
    g, group, ranks = kernel_group(workload, mapping, arch, roles)  # type: ignore[arg-type]
    skips = set(group.skip)
    if not skips <= set(recipe.skips):
        raise MappingError(
            f"{family_name} cannot skip {sorted(skips - set(recipe.skips))}",
            path=f"groups[{g}].skip",
            expected=f"a subset of {sorted(recipe.skips)}",
            got=list(group.skip),
        )
    recipe = replace(recipe, skips=frozenset(skips))
    model = model_for(arch)
    dtype = dtype_of(workload)  # type: ignore[arg-type]
    elt = dtype_bytes(dtype)
    d = int(math.prod(ranks.get(r, 1) for r in roles.features)) or 1
    dv = int(math.prod(ranks.get(r, 1) for r in roles.value_features)) or 1
    assert recipe.tiling is not None
    base = recipe.tiling(model.hw, d, elt)
    bn, bm = group.tile(roles.query, 1), group.tile(roles.key, 1)
    stages = int(group.depth or recipe.kv_stages)
    own = (min(base.block_m, ranks[roles.key]), min(base.block_n, ranks[roles.query]))
    if (bm, bn) == own:  # the family's own tile (capped at short lengths) is its own CTA
        bm_c, bn_c = base.block_m, base.block_n
    else:
        bm_c, bn_c = bm, bn
    t = backward_cta(
        recipe, model.hw, base, block_m=bm_c, block_n=bn_c, stages=stages, d=d, dv=dv,
        elt=elt, warps=mapping_warps(group), where=f"groups[{g}]",
    )  # fmt: skip
    w = stream_work(workload, StreamTiling(bn, bm, recipe.skips), roles=roles, dataflow=family_name)
    costs, meta = _kernels(cascade, w, recipe, model, t, dtype, stages)
    ops = w.useful_ops()
    add_ops(ops, einsum_ops(w.counts, roles.pre))
    add_ops(ops, {"atomic_add": meta["atomic_adds"]})
    passes = PassInfo(
        passes=1,
        buffer_bytes=float(t.smem_bytes),
        buffer_formula=f"the {family_name} backward CTA ({t.block_m}x{t.block_n}, "
        f"{t.threads} threads)",
        reason="key-outer: each CTA streams the query tiles once",
    )
    notes = (
        f"{name}: backward, key-outer {bn} keys x {bm} query rows per trip, "
        f"{t.threads // 32} warps, {t.ctas_per_sm} CTA/SM, {t.path}; {w.work_items} CTAs x "
        f"{w.total_trips / max(w.work_items, 1):.1f} trips"
    )
    groups = {"pre": list(roles.pre), "core": list(roles.core), "post": []}
    plan = _finish(
        name,
        workload,  # type: ignore[arg-type]
        arch,
        model,
        costs,
        ops,
        passes=passes,
        notes=notes,
        extra_meta={
            "tile": f"{bm}x{bn}",
            "path": t.path,
            "pass": "bwd",
            "cta": cta_meta(t, stages, features=d),
            "einsum_groups": groups,
            "roles": roles.describe(),
            "backward": meta,
        },
        gpu_plan=gpu_plan,
    )
    return replace(plan, mapping=mapping)


def _kernels(
    cascade,
    w: StreamWork,
    recipe: BackwardRecipe,
    model: GpuModel,
    t: AttnTiling,
    dtype: str,  # noqa: ANN001
    stages: int,
) -> tuple[list[KernelCost], dict[str, float]]:
    """(kernels, numbers) of the backward: preprocess, the key-outer core (``stages``:
    its ``Q``/``dO`` stages, the mapping's ``depth``), dQ conversion, and the GQA reduce
    (module doc)."""
    r = w.roles
    sizes = w.sizes
    mac, alu, sfu, _ = trip_work(cascade, w, recipe)
    acc = _accumulated(cascade, r)
    per_item = _per_item_grads(cascade, r)
    # partial dQ of a trip added into the global accumulator: one add per element
    acc_tile = sum(w.out_tensors.get(n, 0.0) / (cascade.tensors[n].dtype_bits / 8) for n in acc)
    acc_elems = sum(math.prod(sizes.get(x, 1) for x in cascade.tensors[n].ranks) for n in acc)
    alu += acc_tile
    bytes_per_trip = w.key_tile_bytes + 2.0 * acc_tile * recipe.dq_accum_bytes
    kv_tiles = float(sum(w.query_tensors.values()))  # K, V of the CTA's keys
    grad_tiles = float(sum(w.out_tensors.get(n, 0.0) for n in per_item))
    stream_in = sum(tensor_bytes(cascade, n, sizes) for n in w.key_tensors)
    kv_in = sum(tensor_bytes(cascade, n, sizes) for n in w.query_tensors)
    streams = max(1, w.work_items // max(w.stream_sharing, 1))
    masked = "condition" in w.skipped and w.total_trips < w.work_items * w.dense_trips
    lpt = recipe.lpt_when_masked and masked
    order = None
    q_read = kv_dram_reads(
        w,
        slots=model.hw.sms * t.ctas_per_sm,
        stream_bytes=stream_in / streams,
        l2_reuse_bytes=model.hw.l2_bytes * L2_REUSE,
        order=order,
    )
    grads_compulsory = sum(tensor_bytes(cascade, n, sizes) for n in per_item)
    grads_written = (
        grad_tiles * w.work_items if recipe.kv_grads_per_query_head else grads_compulsory
    )
    fwd_eff = float(getattr(model.cal, FAMILIES[recipe.family][0]))
    eff = fwd_eff * float(model.cal.eff_bwd)
    main = trip_kernel_cost(
        name=recipe.kernel,
        category="attn_bwd",
        model=model,
        tiling=t,
        eff=eff,
        dtype=dtype,
        trips=w.trips,
        mma_flops_per_trip=2.0 * mac,
        alu_per_trip=alu,
        sfu_per_trip=sfu,
        bytes_per_trip=bytes_per_trip,
        fixed_bytes=kv_tiles + grad_tiles,
        dram_read=q_read + kv_in,
        dram_write=acc_elems * recipe.dq_accum_bytes + grads_written,
        lpt=lpt,
        issue_eff=fwd_eff,
        meta={
            "family": recipe.family,
            "q_reread": q_read / stream_in if stream_in else 1.0,
            "pass": "bwd",
        },
        persistent=recipe.is_persistent,
        # a trip's Q tile is held until its last GEMM: the Q buffers are the pipeline depth
        stages=max(stages, recipe.q_buffers),
    )
    # preprocess: the Einsums before the core (Delta) and the dQ accumulator cleared
    pre_ops = einsum_ops(w.counts, r.pre)
    pre_in = {ref.name for e in cascade.einsums if e.name in r.pre for ref in e.inputs}
    pre_read = sum(tensor_bytes(cascade, n, sizes) for n in pre_in - set(r.pre))
    pre_write = sum(tensor_bytes(cascade, n, sizes) for n in r.pre)
    pre_alu = 2.0 * pre_ops.get("mac", 0.0) + sum(v for k, v in pre_ops.items() if k != "mac")
    kernels = [
        _memory(
            model,
            recipe.pre_kernel,
            pre_read,
            pre_write + acc_elems * recipe.dq_accum_bytes,
            pre_alu,
        ),
        main,
    ]
    if acc:
        kernels.append(
            _memory(
                model,
                recipe.convert_kernel,
                acc_elems * recipe.dq_accum_bytes,
                sum(tensor_bytes(cascade, n, sizes) for n in acc),
                float(acc_elems),
            )
        )
    if recipe.kv_grads_per_query_head and grads_written > grads_compulsory * (1 + 1e-9):
        kernels.append(
            _memory(
                model,
                recipe.reduce_kernel,
                grads_written,
                grads_compulsory,
                grads_written / (elt_of(cascade, per_item)),
            )
        )
    meta = {
        "atomic_adds": float(acc_tile * w.total_trips),
        "dq_accum_bytes": float(acc_elems * recipe.dq_accum_bytes),
        "kv_grad_bytes_written": float(grads_written),
        "q_side_dram_read": float(q_read),
        "masked": float(masked),
    }
    return kernels, meta


def elt_of(cascade, names: list[str]) -> float:  # noqa: ANN001
    """Bytes per element of the first of ``names`` (1 if none)."""
    return cascade.tensors[names[0]].dtype_bits / 8 if names else 1.0


def backward_mapping_plan(
    workload: WorkloadLike, mapping: LoopMapping, arch: Architecture, name: str | None = None
) -> Plan:
    """Run a backward kernel mapping (``name``: the dataflow reported; default the
    mapping's)."""
    return backward_plan(name or mapping.name, workload, arch, mapping)


def attention_backward_plan(name: str, workload: WorkloadLike, arch: Architecture) -> Plan:
    """The ``name`` family's backward kernels for ``workload`` (a gradient cascade, or a
    forward one whose gradient is derived)."""
    model = model_for(arch)
    grad = gradient_workload(workload, name)
    roles = backward_roles(grad.cascade, name)
    recipe = BWD_RECIPES[name]
    sizes0 = grad.cascade.rank_sizes(numeric_params(grad.params))
    d = int(math.prod(sizes0.get(x, 1) for x in roles.features)) or 1
    assert recipe.tiling is not None
    t = recipe.tiling(model.hw, d, dtype_bytes(dtype_of(grad)))  # type: ignore[arg-type]
    mapping = backward_mapping(
        grad, arch, roles, recipe, block_m=t.block_m, block_n=t.block_n, stages=recipe.kv_stages
    )
    return backward_plan(name, grad, arch, mapping)
