"""Decode attention (one query token per sequence): split-KV (flash-decoding) and no-split.

Decode reads the whole K/V cache to do 4 d FLOP per cached token per head, so its
arithmetic intensity is ~ Hq/Hkv FLOP/byte -- far below the H100 ridge (~295 FLOP/byte):
it is bandwidth-bound, and the question is only whether enough CTAs stream K/V at once.
FlashAttention-2 answers with split-KV: when batch x heads x query blocks fill less than
80% of the (2 x SMs) CTA slots it splits the key range (:func:`num_splits_heuristic`) and
adds a combine kernel that merges partial outputs by their log-sum-exp.
"""

from __future__ import annotations

import math

import numpy as np

from .attention import attention_fwd_costs, trip_kernel_cost
from .cost import KernelCost
from .elementwise import launch_cost
from .heuristics import AttnTiling, fa2_splitkv_tiling, make_tiling, num_splits_heuristic
from .launch import Launch, Round
from .params import GpuModel, dtype_bytes

__all__ = [
    "CUDNN_DECODE_TILE",
    "cudnn_decode_splits",
    "cudnn_decode_tiling",
    "decode_costs",
    "fa2_decode_plan",
    "lean_decode_costs",
]

#: Threads of cuDNN's ``lean_reduction_kernel`` (the launch the H200 traces record).
LEAN_REDUCTION_THREADS = 256


def fa2_decode_plan(
    model: GpuModel, *, B: int, Hq: int, Hkv: int, Sq: int, Skv: int, D: int
) -> dict[str, int]:
    """FA2's launch decisions for decode: GQA row swap, split count, blocks.

    With ``Sq == 1`` and GQA, FA2 (``seqlenq_ngroups_swapped``) treats the ``Hq/Hkv``
    query heads sharing a K/V head as query rows of one head: ``Sq' = Hq/Hkv``, ``H' = Hkv``.
    """
    block_n = fa2_splitkv_tiling(model.hw, D).block_n
    return _split_plan(
        model, B=B, Hq=Hq, Hkv=Hkv, Sq=Sq, Skv=Skv, D=D, block_n=block_n, num_sms=2 * model.hw.sms
    )


def _combine_cost(model: GpuModel, *, splits: int, bhr: int, D: int, elt: int) -> KernelCost:
    hw = model.hw
    read = float(splits * bhr * (D + 1) * 4)
    write = float(bhr * D * elt)
    k_block_m = 4 if D % 128 == 0 else (8 if D % 64 == 0 else 16)
    ctas = max(1, math.ceil(bhr / k_block_m))
    return KernelCost(
        name="flash_fwd_splitkv_combine_kernel",
        category="reduce",
        cta_cycles=np.full(ctas, 8.0 * splits * k_block_m * D / hw.fp32_ops_per_clk + 200.0),
        cta_bytes=np.full(ctas, (read + write) / ctas),
        slots=hw.sms * 8,
        cta_stream_bytes_per_s=k_block_m * D * 4 * 4 / hw.dram_latency_s,
        dram_read_bytes=read,
        dram_write_bytes=write,
        tensor_flops=0.0,
        alu_ops=4.0 * splits * bhr * D,
        meta={"splits": splits},
    )


def cudnn_decode_splits(model: GpuModel, *, B: int, Hkv: int) -> int:
    """Key splits of cuDNN's decode kernel: the largest power of two that keeps ``splits x
    Hkv x B`` CTAs within two per SM (1 when ``B x Hkv`` fills that alone).

    ASSUMPTION (cuDNN is closed source): inferred from the grids the H200 traces record for
    ``cudnn_generated_fort_native_sdpa_sm80_flash_fprop``, ``(splits, Hkv, B)`` =
    ``(32, 8, 1)``, ``(4, 8, 8)``, ``(1, 8, 32)`` with 132 SMs
    (``validation/data/traces/h200_llama3_8b_layer_b{1,8,32}_decode``)."""
    room = 2 * model.hw.sms / max(B * Hkv, 1)
    return 1 if room < 2 else 2 ** int(math.floor(math.log2(room)))


def _lean_reduction_cost(
    model: GpuModel, *, splits: int, B: int, Hq: int, D: int, elt: int
) -> KernelCost:
    """cuDNN's ``lean_reduction_kernel`` merging ``splits`` partial outputs per query head.

    ASSUMPTION (closed source; the trace records grid ``(1, Hq, B)`` of 256 threads): one
    CTA per (query head, batch row); a first round reads the ``splits`` fp32 log-sum-exps,
    then a loop reads the ``splits x D`` fp32 partials, 256 per iteration, one dependent
    round each (:mod:`archsim.gpu.launch`: a loop of run-time trip count); the partials were
    just written by the split kernel, so every round hits L2.
    """
    t = LEAN_REDUCTION_THREADS
    per = float(t * 4)
    launch = Launch(
        "lean_reduction_kernel",
        B * Hq,
        t,
        (Round(1, "L2", per), Round(math.ceil(splits * D / t), "L2", per)),
    )
    rows = B * Hq
    return launch_cost(
        model,
        launch,
        name="cudnn_lean_reduction_kernel",
        category="reduce",
        read_bytes=float(splits * rows * (D + 1) * 4),
        write_bytes=float(rows * D * elt),
        alu_ops=4.0 * splits * rows * D,
    )


def _split_plan(
    model: GpuModel,
    *,
    B: int,
    Hq: int,
    Hkv: int,
    Sq: int,
    Skv: int,
    D: int,
    block_n: int,
    num_sms: int,
    block_m: int = 64,
) -> dict[str, int]:
    """GQA row swap, query blocks of ``block_m`` rows, K/V blocks of ``block_n`` keys and
    FA2's split count over ``num_sms`` CTA slots (the keys of :func:`fa2_decode_plan`)."""
    swap = Sq == 1 and Hq > Hkv and D % 8 == 0
    rows, heads = (Hq // Hkv, Hkv) if swap else (Sq, Hq)
    num_m = math.ceil(rows / block_m)
    n_blocks = math.ceil(Skv / block_n)
    splits = num_splits_heuristic(B * heads * num_m, num_sms, n_blocks, 128)
    return {
        "rows": rows,
        "heads": heads,
        "num_m": num_m,
        "n_blocks": n_blocks,
        "splits": splits,
        "swapped": int(swap),
    }


def _split_kernels(
    model: GpuModel,
    plan: dict[str, int],
    t: AttnTiling,
    *,
    B: int,
    Hkv: int,
    Skv: int,
    D: int,
    dtype: str,
    eff: float,
    name: str,
    family: str,
) -> list[KernelCost]:
    elt = dtype_bytes(dtype)
    heads, rows, splits = plan["heads"], plan["rows"], plan["splits"]
    n_blocks, num_m = plan["n_blocks"], plan["num_m"]
    chunk = math.ceil(n_blocks / splits)
    per_split = np.clip(n_blocks - chunk * np.arange(splits), 0, chunk)
    trips = np.tile(np.repeat(per_split, num_m), B * heads)
    bhr = B * heads * rows
    kv_read = B * Hkv * 2.0 * Skv * D * elt
    kernel = trip_kernel_cost(
        name=name,
        category="attn_fwd",
        model=model,
        tiling=t,
        eff=eff,
        dtype=dtype,
        trips=trips,
        mma_flops_per_trip=4.0 * t.block_m * t.block_n * D,
        alu_per_trip=5.0 * t.block_m * t.block_n + t.block_m * D,
        sfu_per_trip=float(t.block_m * t.block_n),
        bytes_per_trip=2.0 * t.block_n * D * elt,
        fixed_bytes=float(t.block_m * D * elt),
        dram_read=kv_read + bhr * D * elt,
        dram_write=(splits * bhr * (D + 1) * 4.0) if splits > 1 else bhr * D * elt,
        meta={"family": family, "splits": splits, "gqa_swapped": plan["swapped"]},
    )
    if splits <= 1:
        return [kernel]
    if family == "flash3":
        combine = _lean_reduction_cost(model, splits=splits, B=B, Hq=bhr // B, D=D, elt=elt)
        return [kernel, combine]
    return [kernel, _combine_cost(model, splits=splits, bhr=bhr, D=D, elt=elt)]


#: cuDNN's decode kernel as the H200 layer traces record it (``validation/data/traces/
#: h200_llama3_8b_layer_b{1,8,32}_decode``): ``cudnn_generated_fort_native_sdpa_sm80_flash_
#: fprop_wmma_f16_knob_35_16x128x128_1x4x1``: 16 query rows x 128 keys x 128 features per
#: tile, 128 threads (4 warps side by side along the keys), 183-186 registers per thread,
#: 86,336 B of shared memory at D = 128.
CUDNN_DECODE_TILE = (16, 128)
CUDNN_DECODE_WARPS = 4
CUDNN_DECODE_REGS = 184


def cudnn_decode_tiling(model: GpuModel, d: int, elt: int = 2) -> AttnTiling:
    """Decode tile of cuDNN's kernel (:data:`CUDNN_DECODE_TILE`): an sm80 ``wmma`` kernel
    (the ``mma_sync`` tensor path, no warp specialization: only co-resident CTAs hide its
    softmax), 16 query rows (the GQA group's query heads packed as rows) x 128 keys.

    Shared memory: the Q tile, one K and one V tile, and the 16 x 128 fp32 score tile twice
    (S and P): ``(16 d + 2 x 128 d) elt + 2 x 16 x 128 x 4`` = 86,016 B at D = 128 (traced
    86,336 B; the other 320 B, row statistics, are left out). Loads in flight: a trip's K
    and V tiles (cp.async, one stage). Two CTAs fit an SM.
    """
    bm, bn = CUDNN_DECODE_TILE
    smem = (bm * d + 2 * bn * d) * elt + 2 * bm * bn * 4
    return make_tiling(
        model.hw,
        bm,
        bn,
        CUDNN_DECODE_WARPS,
        CUDNN_DECODE_REGS,
        smem,
        "mma_sync",
        None,
        2 * bn * d * elt,
    )


def decode_costs(
    model: GpuModel,
    *,
    B: int,
    Hq: int,
    Hkv: int,
    Skv: int,
    D: int,
    family: str = "flash2",
    dtype: str = "bf16",
    Sq: int = 1,
    causal: bool = False,
) -> list[KernelCost]:
    """Kernels of one decode attention call.

    Parameters
    ----------
    model
        GPU model.
    B, Hq, Hkv, Skv, D
        Batch, query heads, K/V heads, cached tokens, head dim.
    family
        ``flash2`` / ``split_kv``: FA2 -- GQA rows swapped into the query tile, split-KV
        heuristic over 2 x SMs CTA slots, combine kernel. ``flash3`` (cuDNN): its sm80
        ``wmma`` kernel (:func:`cudnn_decode_tiling`), the same GQA packing into 16-row
        tiles and the split of :func:`cudnn_decode_splits` (measured cuDNN decode time
        follows the K/V-head bytes and reaches full bandwidth at batch 1, which a no-split
        kernel cannot). ``efficient``: one CTA per (batch, query head), no split.
    Sq
        Query tokens (1 for decode; small values for speculative decode).

    Returns
    -------
    list of KernelCost
        Split kernel (+ combine kernel when split), or a single kernel.
    """
    elt = dtype_bytes(dtype)
    shape = dict(B=B, Hq=Hq, Hkv=Hkv, Sq=Sq, Skv=Skv, D=D)
    if family in ("flash2", "split_kv"):
        t = fa2_splitkv_tiling(model.hw, D, elt)
        plan = fa2_decode_plan(model, **shape)
        if plan["splits"] <= 1:  # FA2 runs its regular forward kernel
            return attention_fwd_costs(
                model,
                B=B,
                Hq=plan["heads"],
                Hkv=min(Hkv, plan["heads"]),
                Sq=plan["rows"],
                Skv=Skv,
                D=D,
                causal=False,
                family="flash2",
                dtype=dtype,
            )
        eff, name, split_family = model.cal.eff_fa2, "flash_fwd_splitkv_kernel", "flash2"
    elif family == "flash3":
        t = cudnn_decode_tiling(model, D, elt)
        plan = _split_plan(
            model,
            block_n=t.block_n,
            num_sms=model.hw.sms * t.ctas_per_sm,
            block_m=t.block_m,
            **shape,
        )
        if Sq == 1:
            plan["splits"] = min(cudnn_decode_splits(model, B=B, Hkv=Hkv), plan["n_blocks"])
        eff, name, split_family = model.cal.eff_fa3, "cudnn_sm90_flash_fprop_decode", "flash3"
    else:
        return attention_fwd_costs(
            model,
            B=B,
            Hq=Hq,
            Hkv=Hkv,
            Sq=Sq,
            Skv=Skv,
            D=D,
            causal=causal and Sq > 1,
            family=family,
            dtype=dtype,
        )
    return _split_kernels(
        model,
        plan,
        t,
        B=B,
        Hkv=Hkv,
        Skv=Skv,
        D=D,
        dtype=dtype,
        eff=eff,
        name=name,
        family=split_family,
    )


def lean_decode_costs(
    model: GpuModel, *, B: int, Hq: int, Hkv: int, Skv: int, D: int, dtype: str = "bf16"
) -> list[KernelCost]:
    """Lean Attention / stream-K decode (Sanovar et al., arXiv 2405.10480).

    All ``B x H' x n_blocks`` K/V block iterations are divided evenly over exactly one
    wave of CTAs (SMs x CTAs per SM), crossing head boundaries; a CTA emits one partial
    result per head segment it touches, merged by a combine kernel. No wave
    quantization, at the price of ``ctas + B H'`` partials.
    """
    elt = dtype_bytes(dtype)
    plan = fa2_decode_plan(model, B=B, Hq=Hq, Hkv=Hkv, Sq=1, Skv=Skv, D=D)
    t = fa2_splitkv_tiling(model.hw, D, elt)
    heads, rows = plan["heads"], plan["rows"]
    total = B * heads * plan["n_blocks"]
    ctas = min(total, model.hw.sms * t.ctas_per_sm)
    base, extra = divmod(total, ctas)
    trips = np.where(np.arange(ctas) < extra, base + 1, base)
    partials = ctas + B * heads
    bhr = B * heads * rows
    kernel = trip_kernel_cost(
        name="lean_attention_decode_kernel",
        category="attn_fwd",
        model=model,
        tiling=t,
        eff=model.cal.eff_fa2,
        dtype=dtype,
        trips=trips,
        mma_flops_per_trip=4.0 * 64 * t.block_n * D,
        alu_per_trip=5.0 * 64 * t.block_n + 64 * D,
        sfu_per_trip=64.0 * t.block_n,
        bytes_per_trip=2.0 * t.block_n * D * elt,
        fixed_bytes=64.0 * D * elt,
        dram_read=B * Hkv * 2.0 * Skv * D * elt + bhr * D * elt,
        dram_write=partials * rows * (D + 1) * 4.0,
        meta={"family": "lean", "partials": partials},
    )
    splits = max(1, math.ceil(partials / max(B * heads, 1)))
    return [kernel, _combine_cost(model, splits=splits, bhr=bhr, D=D, elt=elt)]
