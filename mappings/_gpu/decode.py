"""GPU decode dataflows over the cascade given: ``split_kv`` (flash-decoding with FA2's split
heuristic) and ``lean`` (stream-K decode); also the decode kernels of ``flash2`` / ``flash3`` /
``mem_efficient`` at query length 1.

Recipe (:func:`decode_kernels`): the query tile is every query row of one K/V stream -- the
query positions times the query heads that share the keys (GQA packing, MLA's heads over one
latent KV) -- padded to the family's ``block_m`` rows, the key tile the family's ``block_n``;
the per-trip work, the K/V tile bytes and the query/output bytes are counted from the cascade
(:func:`mappings._stream.stream_work`). The key range is split over CTAs (FA2's heuristic, a
forced ``splits`` knob, or lean's equal share per CTA across stream boundaries); partial
outputs (fp32, with their log-sum-exp) are merged by a combine kernel. Pre/post Einsums
(projections) run as separate kernels.

A prefill (query length > :data:`MAX_DECODE_QUERY`) is refused with a MappingError.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from archsim import Architecture
from archsim.errors import MappingError
from archsim.gpu import FAMILIES, GpuModel, KernelCost, dtype_bytes, num_splits_heuristic
from archsim.gpu.attention import trip_kernel_cost
from archsim.gpu.decode import _combine_cost, cudnn_decode_tiling
from archsim.gpu.heuristics import fa2_fwd_tiling, fa2_splitkv_tiling, memeff_fwd_tiling
from mappings._registry import PassInfo, Plan, register_dataflow
from mappings._roles import AttentionRoles, attention_roles
from mappings._stream import StreamTiling, StreamWork, numeric_params, stream_work
from workloads import Workload

from ._common import check_knobs, dtype_of, ensure, model_for
from ._spine import FusedRecipe, check_one_pass, recipe_plan, trip_work

__all__ = ["split_kv", "lean", "decode_kernels", "MAX_DECODE_QUERY", "DECODE_RECIPES"]

#: Longest query a decode recipe accepts (speculative decoding verifies a few tokens).
MAX_DECODE_QUERY = 16

#: Decode kernel families (kernel-family facts as named fields of FusedRecipe).
DECODE_RECIPES: dict[str, FusedRecipe] = {
    "flash2": FusedRecipe("split_kv", "flash2", "flash_fwd_splitkv_kernel", lse_bytes_per_row=0),
    "flash3": FusedRecipe("flash3", "flash3", "cudnn_sm90_flash_fprop_decode", lse_bytes_per_row=0),
    "efficient": FusedRecipe(
        "mem_efficient", "efficient", "fmha_cutlassF_bf16_aligned_sm80", lse_bytes_per_row=0
    ),
    "lean": FusedRecipe("lean", "flash2", "lean_attention_decode_kernel", lse_bytes_per_row=0),
}


#: FP32 ops per partial output element merged by a lean host CTA: rescale by
#: ``exp(lse_i - lse)`` (the exponent is per row), multiply-add into the sum.
_MERGE_OPS = 4.0
#: Most CTAs one head's key range is split over (onnxruntime's Lean Attention, by the paper's
#: authors: ``kMaxSplits`` 64, launched with at most 32 CTAs per head to allow for rounding).
LEAN_MAX_CTAS_PER_HEAD = 32


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


def _stream_k(heads: int, n_blocks: int, slots: int) -> StreamK:
    """Deal ``heads x n_blocks`` key tiles out in order to one wave of CTAs.

    Launch rule of the authors' kernel (onnxruntime ``lean_api.cc``): as many CTAs as
    resident slots, but at least two tiles per CTA and at most
    :data:`LEAN_MAX_CTAS_PER_HEAD` CTAs per head. CTA ``c`` takes the global tiles ``g``
    with ``c * total <= g * ctas < (c + 1) * total`` (as the ``decode`` workload's ``lean``
    variant), so heads are cut at CTA boundaries, not at fixed chunk sizes.
    """
    total = heads * n_blocks
    if total <= 0:
        z = np.zeros(1, dtype=np.int64)
        return StreamK(z, 0, z, z, 1)
    ctas = max(1, min(slots, math.ceil(total / 2), LEAN_MAX_CTAS_PER_HEAD * heads, total))
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


def decode_kernels(
    workload: Workload,
    model: GpuModel,
    variant: str,
    *,
    roles: AttentionRoles | None = None,
    splits: int | None = None,
    dataflow: str = "split_kv",
) -> tuple[list[KernelCost], StreamWork, dict[str, object]]:
    """(kernels, StreamWork, meta) of a decode of the workload's cascade (module doc).

    ``variant``: ``flash2`` (FA2 split-KV over 2 x SMs CTA slots; no split -> FA2's regular
    forward tile), ``flash3`` (cuDNN decode tile, split to fill one wave), ``efficient`` (no
    packing, no split), ``lean`` (stream-K).
    """
    cascade = workload.cascade
    r = roles or attention_roles(cascade)
    recipe = DECODE_RECIPES[variant]
    dtype = dtype_of(workload)
    elt = dtype_bytes(dtype)
    hw = model.hw
    sizes0 = cascade.rank_sizes(numeric_params(workload.params))
    query_len = int(sizes0[r.query])
    _refuse_prefill(query_len, dataflow)
    d = int(math.prod(sizes0.get(x, 1) for x in r.features)) or 1
    dv = int(math.prod(sizes0.get(x, 1) for x in r.value_features)) or 1
    pack = int(math.prod(sizes0.get(x, 1) for x in r.query_heads)) if variant != "efficient" else 1
    if variant == "flash3":
        t = cudnn_decode_tiling(model, d, elt)
        num_sms = hw.sms * t.ctas_per_sm
    elif variant == "efficient":
        t = memeff_fwd_tiling(hw, d, elt)
        num_sms = hw.sms
    else:
        t = fa2_splitkv_tiling(hw, d, elt)
        num_sms = 2 * hw.sms
    w = stream_work(workload, StreamTiling(query_len, t.block_n), roles=r, dataflow=dataflow)
    groups = max(1, w.work_items // pack)  # K/V streams: (batch, K/V head)
    rows = pack * w.query_tile
    num_m = math.ceil(rows / t.block_m)
    n_blocks = int(w.trips.max()) if w.trips.size else 0
    if variant == "lean":
        n_split = 1
    elif variant == "efficient":
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
        n_split = num_splits_heuristic(groups * num_m, num_sms, max(n_blocks, 1), 128)
    name = recipe.kernel
    if variant == "flash2" and n_split <= 1:  # FA2 runs its regular forward kernel
        t = fa2_fwd_tiling(hw, d, False, elt)
        name = FAMILIES["flash2"][1]
        w = stream_work(workload, StreamTiling(query_len, t.block_n), roles=r, dataflow=dataflow)
        n_blocks = int(w.trips.max()) if w.trips.size else 0
        num_m = math.ceil(rows / t.block_m)
    mac, alu, sfu, trip_ops = trip_work(cascade, w, recipe)
    scale = t.block_m / max(w.query_tile, 1)  # the MMA and softmax run on a whole tile
    bhr = groups * rows
    k_in = float(sum(w.key_tensors.values())) / max(w.key_tile, 1) * w.key_len * groups
    q_bytes = float(sum(w.query_tensors.values())) * w.work_items
    o_bytes = float(sum(w.out_tensors.values())) * w.work_items
    per_cta_fixed = (sum(w.query_tensors.values()) + sum(w.out_tensors.values())) * pack / num_m
    lean_meta: dict[str, object] = {}
    if variant == "lean":
        lean = _stream_k(groups * num_m, n_blocks, hw.sms * t.ctas_per_sm)
        trips = lean.trips
        part = min(rows, t.block_m) * (dv + 1) * 4.0  # one fp32 partial O row block + its LSE
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
    eff = float(getattr(model.cal, FAMILIES[recipe.family][0]))
    kernel = trip_kernel_cost(
        name=name,
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
        meta={"family": recipe.family, "splits": n_split, "gqa_rows": rows, **lean_meta},
    )
    if variant == "lean":  # the host CTA of a head reads and merges its peers' partials
        kernel = replace(
            kernel,
            cta_cycles=kernel.cta_cycles
            + lean.merged * min(rows, t.block_m) * dv * _MERGE_OPS / hw.fp32_ops_per_clk,
            cta_bytes=kernel.cta_bytes + (lean.merged + lean.written) * part,
            dram_read_bytes=kernel.dram_read_bytes + lean.partials * part,
        )
    costs = [kernel]
    if comb_splits > 1:
        costs.append(_combine_cost(model, splits=comb_splits, bhr=bhr, D=dv, elt=elt))
    meta = {"splits": n_split, "rows": rows, "tile": f"{t.block_m}x{t.block_n}", **lean_meta}
    del trip_ops
    return costs, w, meta


def _passes(D: int) -> PassInfo:
    return PassInfo(
        passes=1,
        buffer_bytes=float((64 + 2 * 128) * D * 2),
        buffer_formula="(64 + 2 Bn) * D * bytes per CTA",
        reason="online softmax per split; splits merged by log-sum-exp",
    )


def decode_plan(
    dataflow: str,
    variant: str,
    workload: Workload,
    arch: Architecture,
    *,
    splits: int | None = None,
    roles: AttentionRoles | None = None,
) -> Plan:
    """Plan of a decode recipe (kernels of :func:`decode_kernels` + pre/post kernels)."""
    model = model_for(arch)
    r = roles or attention_roles(workload.cascade)
    check_one_pass(workload, r, dataflow)
    costs, w, meta = decode_kernels(
        workload, model, variant, roles=r, splits=splits, dataflow=dataflow
    )
    d = int(math.prod(w.sizes.get(x, 1) for x in r.features))
    notes = f"{dataflow}: {meta['splits']} splits, {meta['rows']} packed query rows per K/V stream"
    return recipe_plan(
        dataflow,
        workload,
        arch,
        model,
        costs,
        work=w,
        passes=_passes(d),
        notes=notes,
        extra_meta=meta,
    )


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
