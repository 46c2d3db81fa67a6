"""GPU decode dataflows over the cascade given: ``split_kv`` (flash-decoding with FA2's split
heuristic) and ``lean`` (stream-K decode); also the decode kernels of ``flash2`` / ``flash3`` /
``mem_efficient`` at query length 1.

Each is a :class:`DecodeRecipe` (data: the kernel family's facts) that builds a whole-cascade
:class:`~mappings.Mapping` and runs it (:func:`decode_mapping_plan`), so ``--save-mapping``
then ``--mapping`` gives the same cycles. The core is one fusion group over the GPU's levels:

* ``HBM``: the grid as ``spatial`` factors -- batch and K/V-head ranks, one K/V stream each;
  the query heads that share a stream in blocks of ``heads per CTA`` (GQA packing, MLA's heads
  over one latent KV); the key split's outer rank ``m1`` split over ``splits`` CTAs (split-KV:
  ``m -> m1, m0`` with ``m0`` the key tile, ``m1`` = ``splits`` (spatial) x ``chunk``
  (temporal)). ``lean``'s grid is its stream-K partition: the (stream, key tile) loops are
  ``temporal`` at HBM and the kernel deals them out in order, equal shares per CTA across
  stream boundaries (:func:`_stream_k`) -- a partition that crosses rank boundaries, so it is
  the recipe's schedule, not per-rank spatial factors;
* ``SMEM``: the core's inputs (Q, K/V stages); ``RF``: the CTA's tile (every query position,
  ``heads per CTA`` query heads, the key tile, whole feature ranks) and every intermediate.

``depth`` is the K/V stages. The CTA pads its query rows to the family's MMA rows
(``block_m`` of its tile); the per-trip work, the K/V tile bytes and the query/output bytes are
counted from the cascade (:func:`mappings._stream.stream_work`). Partial outputs (fp32, with
their log-sum-exp) are merged by a combine kernel (split-KV) or by the host CTA of each stream
(lean). Pre/post Einsums (projections) run as separate kernels. A tile other than the family's
own gets its CTA from the recipe's fields, checked against the GPU
(:func:`mappings._gpu._mapping.recipe_cta`).

A prefill (query length > :data:`MAX_DECODE_QUERY`) is refused with a MappingError.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

import numpy as np

from archsim import Architecture
from archsim.errors import MappingError
from archsim.gpu import (
    FAMILIES,
    GpuModel,
    KernelCost,
    dtype_bytes,
    fwd_tiling,
    num_splits_heuristic,
)
from archsim.gpu.attention import trip_kernel_cost
from archsim.gpu.decode import _combine_cost, _lean_reduction_cost, cudnn_decode_tiling
from archsim.gpu.heuristics import AttnTiling, fa2_splitkv_tiling, memeff_fwd_tiling
from mappings._registry import PassInfo, Plan, register_dataflow
from mappings._roles import AttentionRoles, attention_roles, is_contraction
from mappings._stream import StreamTiling, StreamWork, numeric_params, stream_work
from workloads import Workload

from ._common import check_knobs, dtype_of, ensure, model_for
from ._spine import FusedRecipe, check_one_pass, recipe_plan, trip_work

if TYPE_CHECKING:
    from mappings._mapping import Mapping as KernelMapping

__all__ = [
    "split_kv",
    "lean",
    "decode_kernels",
    "decode_mapping",
    "decode_mapping_plan",
    "DecodeRecipe",
    "MAX_DECODE_QUERY",
    "DECODE_RECIPES",
    "DECODE_MAPPINGS",
]

#: Longest query a decode recipe accepts (speculative decoding verifies a few tokens).
MAX_DECODE_QUERY = 16


@dataclass(frozen=True)
class DecodeRecipe:
    """A decode kernel family as data: what it does that the cascade does not state.

    Attributes
    ----------
    kernel
        The CTA's family facts as :class:`FusedRecipe` fields: kernel name, family (calibrated
        efficiency), instruction path, warp specialization, K/V stages, loads in flight and
        shared-memory layout (what :func:`~mappings._gpu._mapping.recipe_cta` reads for an
        edited tile).
    tile
        The family's own decode CTA in :mod:`archsim.gpu`: ``splitkv`` (FA2's split-KV kernel,
        :func:`~archsim.gpu.heuristics.fa2_splitkv_tiling`), ``cudnn`` (cuDNN's Hopper decode
        kernel, :func:`~archsim.gpu.decode.cudnn_decode_tiling`), ``efficient`` (cutlass's
        forward kernel, :func:`~archsim.gpu.heuristics.memeff_fwd_tiling`).
    split
        How the key range is cut over CTAs: ``heuristic`` (FA2's ``num_splits_heuristic``),
        ``none``, or ``stream_k`` (Lean Attention: equal key tiles per CTA across streams).
    split_slots_per_sm
        CTA slots per SM the split heuristic fills (FA2 >= 2.5 passes ``2 x SMs``); None: the
        tile's own occupancy (CTAs per SM).
    max_splits
        Most splits the heuristic considers (FA2's ``num_splits_heuristic``: 128).
    packs_query_heads
        The query heads sharing one K/V stream are rows of one CTA (GQA packing, MLA's heads).
    unsplit
        Family (:data:`archsim.gpu.FAMILIES`) whose regular forward kernel runs when the
        heuristic picks one split (FA2 does); None: the decode kernel always.
    merge_ops
        FP32 ops per partial output element a stream-K host CTA spends merging a peer's
        partial: rescale by ``exp(lse_i - lse)`` (the exponent is per row), multiply-add.
    max_ctas_per_head
        Most CTAs one stream's key range is dealt to (stream-K; onnxruntime's Lean Attention,
        by the paper's authors: ``kMaxSplits`` 64, launched with at most 32 CTAs per head to
        allow for rounding).
    min_tiles_per_cta
        Fewest key tiles a stream-K CTA takes (the authors' launch rule: at least two).
    """

    kernel: FusedRecipe
    tile: Literal["splitkv", "cudnn", "efficient"]
    split: Literal["heuristic", "none", "stream_k"]
    split_slots_per_sm: int | None = None
    max_splits: int = 128
    packs_query_heads: bool = True
    unsplit: str | None = None
    merge_ops: float = 0.0
    max_ctas_per_head: int = 0
    min_tiles_per_cta: int = 1


#: Decode kernel families (kernel-family facts as named fields).
DECODE_RECIPES: dict[str, DecodeRecipe] = {
    # FA2 split-KV: 64 x Bn tile, 4 warps, cp.async, K and V single-buffered, mma.sync; split
    # by FA2's heuristic over 2 x SMs slots; one split runs FA2's forward kernel
    "flash2": DecodeRecipe(
        FusedRecipe("split_kv", "flash2", "flash_fwd_splitkv_kernel", lse_bytes_per_row=0),
        tile="splitkv",
        split="heuristic",
        split_slots_per_sm=2,
        unsplit="flash2",
    ),
    # cuDNN Hopper decode: TMA producer + one wgmma consumer warpgroup, two K/V stages (K and V
    # of a stage in flight), softmax 90% hidden; split to fill its own occupancy
    "flash3": DecodeRecipe(
        FusedRecipe(
            "flash3",
            "flash3",
            "cudnn_sm90_flash_fprop_decode",
            lse_bytes_per_row=0,
            # the traced decode kernel is sm80-class (wmma 16x128x128, 128 threads, ~86 KB
            # SMEM, no warp specialization): archsim.gpu.decode.cudnn_decode_tiling
            path="mma_sync",
            kv_stages=1,
            loads_per_stage=2,
            score_smem_bytes=8,
        ),
        tile="cudnn",
        split="heuristic",
    ),
    # cutlass forward kernel: no packing, no split, the fp32 score tile in shared memory
    "efficient": DecodeRecipe(
        FusedRecipe(
            "mem_efficient",
            "efficient",
            "fmha_cutlassF_bf16_aligned_sm80",
            lse_bytes_per_row=0,
            score_smem_bytes=2,
            smem_union=True,
        ),
        tile="efficient",
        split="none",
        packs_query_heads=False,
    ),
    # Lean Attention: FA2's split-KV CTA, stream-K partition, host CTAs merge in-kernel
    "lean": DecodeRecipe(
        FusedRecipe("lean", "flash2", "lean_attention_decode_kernel", lse_bytes_per_row=0),
        tile="splitkv",
        split="stream_k",
        merge_ops=4.0,
        max_ctas_per_head=32,
        min_tiles_per_cta=2,
    ),
}

#: Mapping name -> decode recipe (``flash2`` / ``flash3`` / ``mem_efficient`` at query length 1
#: run their family's decode kernels).
DECODE_MAPPINGS: dict[str, str] = {
    "split_kv": "flash2",
    "lean": "lean",
    "flash2": "flash2",
    "flash3": "flash3",
    "mem_efficient": "efficient",
}

#: Most CTAs one head's key range is split over by lean (:attr:`DecodeRecipe.max_ctas_per_head`).
LEAN_MAX_CTAS_PER_HEAD = DECODE_RECIPES["lean"].max_ctas_per_head


@dataclass(frozen=True)
class StreamK:
    """Stream-K partition of ``heads x n_blocks`` key tiles over CTAs (Lean Attention).

    Attributes
    ----------
    trips : key tiles per CTA (equal to within one).
    partials : partial results written by CTAs that do not own their head's first tile.
    merged : per CTA, the peers' partials it merges as host (owner of a head's first tile).
    written : per CTA, the partials it writes for other hosts.
    max_ctas_per_head : most CTAs sharing one head.
    """

    trips: np.ndarray
    partials: int
    merged: np.ndarray
    written: np.ndarray
    max_ctas_per_head: int


def _stream_k(
    heads: int,
    n_blocks: int,
    slots: int,
    *,
    max_per_head: int = LEAN_MAX_CTAS_PER_HEAD,
    min_tiles: int = 2,
) -> StreamK:
    """Deal ``heads x n_blocks`` key tiles out in order to one wave of CTAs.

    Launch rule of the authors' kernel (onnxruntime ``lean_api.cc``): as many CTAs as
    resident slots, but at least ``min_tiles`` (two) tiles per CTA and at most
    ``max_per_head`` (:data:`LEAN_MAX_CTAS_PER_HEAD`) CTAs per head. CTA ``c`` takes the
    global tiles ``g`` with ``c * total <= g * ctas < (c + 1) * total`` (as the ``decode``
    workload's ``lean`` variant), so heads are cut at CTA boundaries, not at fixed chunk sizes.
    """
    total = heads * n_blocks
    if total <= 0:
        z = np.zeros(1, dtype=np.int64)
        return StreamK(z, 0, z, z, 1)
    ctas = max(1, min(slots, math.ceil(total / min_tiles), max_per_head * heads, total))
    bounds = -(-np.arange(ctas + 1) * total // ctas)  # first tile of each CTA
    trips = np.diff(bounds)
    h = np.arange(heads)
    first = h * n_blocks * ctas // total  # CTA owning the head's first tile (the host)
    last = ((h + 1) * n_blocks - 1) * ctas // total
    peers = last - first
    merged = np.bincount(first, weights=peers, minlength=ctas)
    # every CTA in (first, last] writes one partial for head h
    diff = np.zeros(ctas + 1)
    np.add.at(diff, first + 1, 1.0)
    np.add.at(diff, last + 1, -1.0)
    written = np.cumsum(diff)[:ctas]
    return StreamK(trips, int(peers.sum()), merged, written, int(peers.max()) + 1)


def _refuse_prefill(query_len: int, dataflow: str) -> None:
    if query_len > MAX_DECODE_QUERY:
        raise MappingError(
            f"{dataflow} is a decode dataflow: the cascade's query rank has {query_len} "
            "positions (a prefill); use flash2/flash3/mem_efficient",
            path="workload.cascade",
            expected=f"query length <= {MAX_DECODE_QUERY} (decode)",
            got=query_len,
        )


def own_tiling(
    recipe: DecodeRecipe, model: GpuModel, d: int, elt: int, *, splits: int
) -> tuple[AttnTiling, FusedRecipe]:
    """(the family's own CTA, the recipe of the kernel that runs) for feature width ``d`` and
    ``splits`` CTAs per K/V stream: the decode kernel's tile, or the forward kernel's for a
    family that runs it unsplit (:attr:`DecodeRecipe.unsplit`)."""
    if recipe.unsplit is not None and splits <= 1:
        from .attention import RECIPES

        fwd = next(r for r in RECIPES.values() if r.family == recipe.unsplit)
        return fwd_tiling(recipe.unsplit, model, d, False, elt), fwd
    if recipe.tile == "cudnn":
        return cudnn_decode_tiling(model, d, elt), recipe.kernel
    if recipe.tile == "efficient":
        return memeff_fwd_tiling(model.hw, d, elt), recipe.kernel
    return fa2_splitkv_tiling(model.hw, d, elt), recipe.kernel


def _widths(workload: Workload, r: AttentionRoles) -> tuple[int, int, int, int]:
    """(query length, D, Dv, query heads per K/V stream) at the workload's sizes."""
    sizes0 = workload.cascade.rank_sizes(numeric_params(workload.params))
    d = int(math.prod(sizes0.get(x, 1) for x in r.features)) or 1
    dv = int(math.prod(sizes0.get(x, 1) for x in r.value_features)) or 1
    pack = int(math.prod(sizes0.get(x, 1) for x in r.query_heads))
    return int(sizes0[r.query]), d, dv, pack


def _heads_per_cta(pack: int, query_len: int, block_m: int) -> int:
    """Query heads of one K/V stream a CTA holds: as many as its ``block_m`` rows take."""
    return max(1, min(pack, block_m // max(query_len, 1)))


def _choose(
    workload: Workload,
    model: GpuModel,
    recipe: DecodeRecipe,
    r: AttentionRoles,
    splits: int | None,
    dataflow: str,
) -> tuple[AttnTiling, FusedRecipe, int, int]:
    """The recipe's choice: (CTA, kernel recipe, splits per K/V stream, query heads per CTA)."""
    elt = dtype_bytes(dtype_of(workload))
    query_len, d, _, pack = _widths(workload, r)
    _refuse_prefill(query_len, dataflow)
    pack = pack if recipe.packs_query_heads else 1
    t, cta = own_tiling(recipe, model, d, elt, splits=2)
    w = stream_work(workload, StreamTiling(query_len, t.block_n), roles=r, dataflow=dataflow)
    groups = max(1, w.work_items // pack)  # K/V streams: (batch, K/V head)
    hpc = _heads_per_cta(pack, w.query_tile, t.block_m)
    num_m = math.ceil(pack / hpc)
    n_blocks = int(w.trips.max()) if w.trips.size else 0
    if recipe.split != "heuristic":
        n_split = 1
    elif splits is not None:
        # a split holds at least one key block: more splits than blocks would be empty CTAs
        ensure(
            int(splits) <= max(n_blocks, 1),
            "more splits than key blocks",
            "knobs.splits",
            f"<= {max(n_blocks, 1)} (key blocks of {t.block_n} keys)",
            splits,
        )
        n_split = int(splits)
    else:
        slots = model.hw.sms * (recipe.split_slots_per_sm or t.ctas_per_sm)
        n_split = num_splits_heuristic(groups * num_m, slots, max(n_blocks, 1), recipe.max_splits)
    if recipe.unsplit is not None and n_split <= 1:
        t, cta = own_tiling(recipe, model, d, elt, splits=1)
        hpc = _heads_per_cta(pack, w.query_tile, t.block_m)
    return t, cta, n_split, hpc


def _decode_costs(
    workload: Workload,
    model: GpuModel,
    recipe: DecodeRecipe,
    r: AttentionRoles,
    t: AttnTiling,
    kernel_name: str,
    n_split: int,
    num_m: int,
    *,
    dataflow: str,
    skips: frozenset[str] = frozenset({"condition"}),
) -> tuple[list[KernelCost], StreamWork, dict[str, object]]:
    """Kernels of the decode CTA ``t`` with ``n_split`` CTAs per K/V stream along the keys (or
    stream-K) and ``num_m`` CTAs over the stream's query heads (module doc)."""
    cascade = workload.cascade
    trip_recipe = recipe.kernel
    dtype = dtype_of(workload)
    elt = dtype_bytes(dtype)
    hw = model.hw
    query_len, _, dv, pack = _widths(workload, r)
    pack = pack if recipe.packs_query_heads else 1
    w = stream_work(workload, StreamTiling(query_len, t.block_n, skips), roles=r, dataflow=dataflow)
    groups = max(1, w.work_items // pack)  # K/V streams: (batch, K/V head)
    rows = pack * w.query_tile
    cta_rows = min(rows, math.ceil(pack / num_m) * w.query_tile)
    n_blocks = int(w.trips.max()) if w.trips.size else 0
    mac, alu, sfu, _ = trip_work(cascade, w, trip_recipe)
    scale = t.block_m / max(w.query_tile, 1)  # the MMA and softmax run on a whole tile
    bhr = groups * rows
    # DRAM reads the key tiles a stream walks: the whole cache, or the tiles a condition (a
    # sliding window) leaves live -- every CTA of a stream reads them once between them
    walked = min(w.key_len, n_blocks * max(w.key_tile, 1))
    k_in = float(sum(w.key_tensors.values())) / max(w.key_tile, 1) * walked * groups
    q_bytes = float(sum(w.query_tensors.values())) * w.work_items
    o_bytes = float(sum(w.out_tensors.values())) * w.work_items
    per_cta_fixed = (sum(w.query_tensors.values()) + sum(w.out_tensors.values())) * pack / num_m
    lean_meta: dict[str, object] = {}
    if recipe.split == "stream_k":
        lean = _stream_k(
            groups * num_m,
            n_blocks,
            hw.sms * t.ctas_per_sm,
            max_per_head=recipe.max_ctas_per_head,
            min_tiles=recipe.min_tiles_per_cta,
        )
        trips = lean.trips
        part = cta_rows * (dv + 1) * 4.0  # one fp32 partial O row block + its LSE
        write = lean.partials * part + o_bytes
        comb_splits = 1  # the host CTA of each head reduces in-kernel (no combine launch)
        lean_meta = {
            "partials": int(lean.partials),
            "ctas": int(trips.size),
            "max_ctas_per_head": int(lean.max_ctas_per_head),
        }
    else:
        chunk = math.ceil(n_blocks / max(n_split, 1)) if n_blocks else 0
        per_split = np.clip(n_blocks - chunk * np.arange(n_split), 0, chunk)
        trips = np.tile(np.repeat(per_split, num_m), groups)
        write = n_split * bhr * (dv + 1) * 4.0 if n_split > 1 else o_bytes
        comb_splits = n_split
    eff = float(getattr(model.cal, FAMILIES[trip_recipe.family][0]))
    kernel = trip_kernel_cost(
        name=kernel_name,
        category="attn_fwd",
        model=model,
        tiling=t,
        eff=eff,
        dtype=dtype,
        trips=trips,
        mma_flops_per_trip=2.0 * mac * scale,
        alu_per_trip=alu * scale,
        sfu_per_trip=sfu * scale,
        bytes_per_trip=w.key_tile_bytes,
        fixed_bytes=float(per_cta_fixed),
        dram_read=k_in + q_bytes,
        dram_write=write,
        meta={"family": trip_recipe.family, "splits": n_split, "gqa_rows": rows, **lean_meta},
    )
    if recipe.split == "stream_k":  # the host CTA of a head reads and merges its peers' partials
        kernel = replace(
            kernel,
            cta_cycles=kernel.cta_cycles
            + lean.merged * cta_rows * dv * recipe.merge_ops / hw.fp32_ops_per_clk,
            cta_bytes=kernel.cta_bytes + (lean.merged + lean.written) * part,
            dram_read_bytes=kernel.dram_read_bytes + lean.partials * part,
        )
    costs = [kernel]
    if comb_splits > 1 and trip_recipe.family == "flash3":  # cuDNN's lean_reduction_kernel
        costs.append(_lean_reduction_cost(model, splits=comb_splits, B=1, Hq=bhr, D=dv, elt=elt))
    elif comb_splits > 1:
        costs.append(_combine_cost(model, splits=comb_splits, bhr=bhr, D=dv, elt=elt))
    meta = {"splits": n_split, "rows": rows, "tile": f"{t.block_m}x{t.block_n}", **lean_meta}
    return costs, w, meta


def decode_kernels(
    workload: Workload,
    model: GpuModel,
    variant: str,
    *,
    roles: AttentionRoles | None = None,
    splits: int | None = None,
    dataflow: str = "split_kv",
) -> tuple[list[KernelCost], StreamWork, dict[str, object]]:
    """(kernels, StreamWork, meta) of the recipe's own decode of the workload's cascade.

    ``variant`` (a key of :data:`DECODE_RECIPES`): ``flash2`` (FA2 split-KV over 2 x SMs CTA
    slots; no split -> FA2's regular forward tile), ``flash3`` (cuDNN decode tile, split to
    fill one wave), ``efficient`` (no packing, no split), ``lean`` (stream-K).
    """
    r = roles or attention_roles(workload.cascade)
    recipe = DECODE_RECIPES[variant]
    t, cta, n_split, hpc = _choose(workload, model, recipe, r, splits, dataflow)
    pack = _widths(workload, r)[3] if recipe.packs_query_heads else 1
    num_m = math.ceil(pack / hpc)
    return _decode_costs(
        workload, model, recipe, r, t, cta.kernel, n_split, num_m, dataflow=dataflow
    )


# --- the recipe as a Mapping, and a Mapping run back ---------------------------------------


def decode_mapping(
    workload: Workload,
    arch: Architecture,
    roles: AttentionRoles,
    name: str,
    *,
    block_n: int,
    splits: int,
    heads_per_cta: int,
    stages: int,
) -> KernelMapping:
    """The decode kernel ``name`` (a key of :data:`DECODE_MAPPINGS`) with a key tile of
    ``block_n``, ``splits`` CTAs per K/V stream along the keys, ``heads_per_cta`` query heads
    of a stream in one CTA and ``stages`` K/V stages, as a :class:`~mappings.Mapping`
    (module doc)."""
    from ._mapping import attention_mapping, core_ranks

    recipe = DECODE_RECIPES[DECODE_MAPPINGS[name]]
    w, split_tiles, ranks, key_in, outer = core_ranks(workload, roles, block_n)
    grid: dict[str, int] = {r: ranks[r] for r in roles.batch if r in ranks}
    rf: dict[str, int] = {roles.query: ranks[roles.query]}
    left = heads_per_cta
    for r in reversed(roles.query_heads):  # innermost head rank first
        if r not in ranks:
            continue
        size = ranks[r]
        tile = left if size >= left else (size if left % size == 0 else math.gcd(size, left))
        rf[r] = tile
        grid[r] = math.ceil(size / tile)
        left //= tile
    hbm_t: dict[str, int] = {}
    if key_in == roles.key or not outer:  # the CTA walks tiles of key_in
        loop = key_in
        bn = min(block_n, ranks[key_in])
        n_blocks = math.ceil(ranks[key_in] / bn)
        rf[key_in] = bn
        if key_in != roles.key and roles.key_outer in ranks:
            hbm_t[str(roles.key_outer)] = ranks[str(roles.key_outer)]
    else:  # the split's inner extent is the key tile, its outer rank the CTA's loop
        loop = str(roles.key_outer)
        n_blocks = ranks[loop]
        rf[key_in] = ranks[key_in]
    order: list[str] | None = None
    if recipe.split == "stream_k":  # one loop over (stream, key tile), dealt out in order
        hbm_t = {**{r: f for r, f in grid.items() if f > 1}, **hbm_t, loop: n_blocks}
        order = [r for r, f in hbm_t.items() if f > 1]
        grid = {}
    else:
        hbm_t[loop] = math.ceil(n_blocks / max(splits, 1))
        grid[loop] = splits
    return attention_mapping(
        w,
        arch,
        roles,
        name,
        splits=split_tiles,
        grid=grid,
        hbm_temporal=hbm_t,
        rf_tile=rf,
        skip=tuple(s for s in ("condition", "block", "slice") if s in recipe.kernel.skips),
        depth=stages,
        order=order,
    )


def decode_mapping_plan(
    workload: Workload,
    mapping: KernelMapping,
    arch: Architecture,
    roles: AttentionRoles | None = None,
) -> Plan:
    """The plan of a decode kernel ``mapping`` (its name a key of :data:`DECODE_MAPPINGS`),
    carrying it.

    Raises
    ------
    MappingError
        A prefill cascade; a structure the decode kernel cannot run (see
        :func:`~mappings._gpu._mapping.kernel_group`; a query position outside the CTA, query
        heads packed by a family that does not pack them, more packed rows than the CTA's MMA
        rows, a key split a family does not do, a grid for the stream-K partition, a
        contraction on the CUDA cores); a CTA over the GPU's shared memory or registers.
    """
    from ._mapping import (
        CtaShape,
        cta_meta,
        gpu_units,
        kernel_group,
        recipe_cta,
        smem_formula,
        streamed_key,
    )

    model = model_for(arch)
    name = mapping.name
    recipe = DECODE_RECIPES[DECODE_MAPPINGS[name]]
    r = roles or attention_roles(workload.cascade)
    check_one_pass(workload, r, name)
    query_len, d, dv, pack = _widths(workload, r)
    _refuse_prefill(query_len, name)
    g, group, ranks = kernel_group(workload, mapping, arch, r, heads_in_cta=True)
    path = f"groups[{g}]"
    q = r.query
    if group.tile(q, 1) < ranks[q]:
        raise MappingError(
            "a decode CTA holds every query position of its K/V stream",
            path=f"{path}.factors.{q}",
            expected=f"{ranks[q]} below the DRAM level",
            got=group.tile(q, 1),
        )
    heads = [x for x in r.query_heads if x in ranks]
    hpc = int(math.prod(group.tile(x, 1) for x in heads))
    if hpc > 1 and not recipe.packs_query_heads:
        raise MappingError(
            f"{name}'s decode kernel runs one query head per CTA (no GQA packing)",
            path=f"{path}.factors.{heads[-1]}",
            expected=f"{heads[-1]} at the DRAM level (grid)",
            got=f"{hpc} query heads per CTA",
        )
    num_m = int(math.prod(math.ceil(ranks[x] / group.tile(x, 1)) for x in heads))
    _, key_len, outer = streamed_key(workload, r)
    key_in = r.key_inner if r.key_inner in ranks else r.key
    loop = str(r.key_outer) if (key_in != r.key and outer) else str(key_in)
    block_n = group.tile(str(key_in), 1)
    hbm = group.levels[0]
    n_split = int(hbm.spatial.get(loop, 1))
    if recipe.split == "stream_k" and hbm.spatial:
        raise MappingError(
            f"{name}'s grid is its stream-K partition: the CTAs share the (stream, key tile) "
            "loops in equal parts, so the DRAM level has no spatial factors",
            path=f"{path}.levels[0].spatial",
            expected="{} (the ranks as temporal factors)",
            got=dict(hbm.spatial),
        )
    if recipe.split == "none" and n_split > 1:
        raise MappingError(
            f"{name}'s decode kernel does not split the key range over CTAs",
            path=f"{path}.levels[0].spatial.{loop}",
            expected=1,
            got=n_split,
        )
    by = {e.name: e for e in workload.cascade.einsums}
    tensor = gpu_units(arch)[0].name
    for n in group.einsums:
        if is_contraction(by[n]) and (group.unit_of(n) or tensor) != tensor:
            raise MappingError(
                "a decode kernel runs its contractions on the tensor cores",
                path=f"{path}.units.{n}",
                expected=tensor,
                got=group.unit_of(n),
            )
    skips = frozenset(group.skip)
    if not skips <= recipe.kernel.skips:
        raise MappingError(
            f"{name}'s decode kernel cannot skip {sorted(skips - recipe.kernel.skips)}",
            path=f"{path}.skip",
            expected=f"a subset of {sorted(recipe.kernel.skips)}",
            got=list(group.skip),
        )
    elt = dtype_bytes(dtype_of(workload))
    own, cta = own_tiling(recipe, model, d, elt, splits=n_split)
    stages = int(group.depth or cta.kv_stages)
    shape = CtaShape(cta, g, own.block_m, block_n, stages, (), d, dv)
    if (block_n, stages) == (min(own.block_n, key_len), cta.kv_stages):
        t = own
    else:
        t = recipe_cta(shape, model, elt, own)
    rows = math.ceil(pack / num_m) * query_len if recipe.packs_query_heads else query_len
    if rows > t.block_m:
        raise MappingError(
            f"a CTA's query rows (query heads x positions) exceed its {t.block_m} MMA rows",
            path=f"{path}.factors.{heads[-1] if heads else q}",
            expected=f"<= {t.block_m} rows per CTA",
            got=rows,
        )
    costs, w, meta = _decode_costs(
        workload, model, recipe, r, t, cta.kernel, n_split, num_m, dataflow=name, skips=skips
    )
    notes = f"{name}: {meta['splits']} splits, {meta['rows']} packed query rows per K/V stream"
    passes = PassInfo(
        passes=1,
        buffer_bytes=float(t.smem_bytes),
        buffer_formula=smem_formula(shape, t, elt),
        reason="online softmax per split; splits merged by log-sum-exp",
    )
    plan = recipe_plan(
        name,
        workload,
        arch,
        model,
        costs,
        work=w,
        passes=passes,
        notes=notes,
        extra_meta={
            **meta,
            "cta": cta_meta(t, stages, heads_per_cta=math.ceil(pack / num_m)),
        },
    )
    return replace(plan, mapping=mapping)


def decode_plan(
    dataflow: str,
    variant: str,
    workload: Workload,
    arch: Architecture,
    *,
    splits: int | None = None,
    roles: AttentionRoles | None = None,
) -> Plan:
    """Plan of a decode recipe: its choice (:func:`_choose`) written as a Mapping
    (:func:`decode_mapping`) and run (:func:`decode_mapping_plan`)."""
    model = model_for(arch)
    r = roles or attention_roles(workload.cascade)
    check_one_pass(workload, r, dataflow)
    recipe = DECODE_RECIPES[variant]
    assert DECODE_RECIPES[DECODE_MAPPINGS[dataflow]] is recipe
    t, cta, n_split, hpc = _choose(workload, model, recipe, r, splits, dataflow)
    mapping = decode_mapping(
        workload,
        arch,
        r,
        dataflow,
        block_n=t.block_n,
        splits=n_split,
        heads_per_cta=hpc,
        stages=cta.kv_stages,
    )
    return decode_mapping_plan(workload, mapping, arch, r)


@register_dataflow("split_kv")
def split_kv(workload: Workload, arch: Architecture, knobs: Mapping[str, object]) -> Plan:
    """Flash-decoding: split the K/V range over CTAs when K/V streams alone cannot fill the GPU."""
    check_knobs(knobs, ("splits",), "split_kv")
    splits = knobs.get("splits")
    if splits is not None:
        ensure(
            isinstance(splits, int) and not isinstance(splits, bool) and splits >= 1,
            "bad knob",
            "knobs.splits",
            "int >= 1",
            splits,
        )
    assert splits is None or isinstance(splits, int)  # ensure() above raised otherwise
    return decode_plan("split_kv", "flash2", workload, arch, splits=splits)


@register_dataflow("lean")
def lean(workload: Workload, arch: Architecture, knobs: Mapping[str, object]) -> Plan:
    """Stream-K decode: equal K/V work per CTA across stream boundaries, one wave."""
    check_knobs(knobs, (), "lean")
    return decode_plan("lean", "lean", workload, arch)
