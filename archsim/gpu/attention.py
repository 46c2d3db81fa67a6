"""Fused attention kernels on a GPU: FlashAttention-2, Hopper (FA3/cuDNN), memory-efficient,
FlexAttention block-sparse; forward and backward.

All share one structure: a CTA owns a tile of ``block_m`` query rows (forward) or
``block_n`` key rows (backward) and loops over the other dimension in *trips*. Per trip
the tensor cores do the tile GEMMs (forward: QK^T and PV, 4 Bm Bn d FLOP; backward: S,
dP, dV, dK, dQ, 10 Bm Bn d FLOP), the FP32/SFU pipes do the online softmax (one exp and
~5 FP32 ops per score), and K/V (or Q/dO) tiles stream in. Causal masking gives CTAs
unequal trip counts; the list scheduler turns that into tails. FLOP convention (FA
papers): 4 B H Sq Skv d forward, halved for causal.
"""

from __future__ import annotations

import math

import numpy as np

from .cost import KernelCost
from .heuristics import (
    AttnTiling,
    fa2_bwd_tiling,
    fa2_fwd_tiling,
    fa3_bwd_tiling,
    fa3_fwd_tiling,
    flex_fwd_tiling,
    make_tiling,
    memeff_bwd_tiling,
    memeff_fwd_tiling,
)
from .params import GpuModel, dtype_bytes
from .softmax import SCHEDULERS_PER_SM

__all__ = [
    "FAMILIES",
    "attention_flops",
    "fwd_tiling",
    "causal_trips",
    "trip_kernel_cost",
    "attention_fwd_costs",
    "attention_bwd_costs",
    "block_sparse_costs",
    "fg_sparse_costs",
    "L2_REUSE",
    "BWD_Q_BUFFERS",
    "kv_reread_factor",
    "head_major_longest_first",
]

#: Kernel families: instruction path and which calibrated efficiency applies.
FAMILIES = {
    "flash2": ("eff_fa2", "flash_fwd_kernel", "flash_bwd_dq_dk_dv_loop_seqk_parallel_kernel"),
    "flash3": ("eff_fa3", "cudnn_sm90_flash_fprop_wgmma", "cudnn_sm90_flash_bprop_wgmma"),
    "efficient": (
        "eff_memeff",
        "fmha_cutlassF_bf16_aligned_sm80",
        "fmha_cutlassB_bf16_aligned_sm80",
    ),
    "flex": (
        "eff_flex",
        "triton_tem_fused_flex_attention",
        "triton_tem_fused_flex_attention_backward",
    ),
}
_SOFTMAX_FP32_OPS = 5.0  # per score: scale/subtract (FMA), max, sum, convert, mask/select
#: Share of L2 usable for K/V reuse between concurrent CTAs (see gemm.L2_REUSE_FRACTION).
L2_REUSE = 0.5
#: ``Q`` tile buffers of the key-outer backward kernels' own instantiations (its pipeline
#: depth in the tile program; a ``Q`` tile is held until the trip's last GEMM, ``dK +=
#: dS^T Q``, so its buffers gate the next trip's loads, while ``dO`` is released after the
#: ``dV`` GEMM): FA2 ``Flash_bwd_kernel_traits`` with ``No_double_buffer = false`` (``sQ``
#: holds two tiles; Dao-AILab/flash-attention ``csrc/flash_attn/src/kernel_traits.h``,
#: ``flash_bwd_launch_template.h``, head dims <= 128); FA3 sm90 ``Stages = 2`` whatever
#: ``Stages_dO`` (``hopper/flash_bwd_launch_template.h``); cutlass ``kPreload`` (f16/bf16,
#: sm80+, ``kMaxK <= kBlockSizeI``: the next query block's ``Q``/``dO`` loads start in the
#: current iteration's prologue, xformers ``kernel_backward.h``).
BWD_Q_BUFFERS = 2


def attention_flops(B: int, H: int, Sq: int, Skv: int, D: int, causal: bool) -> float:
    """Useful forward FLOPs, FA-paper convention: 4 B H Sq Skv D, halved for causal."""
    f = 4.0 * B * H * Sq * Skv * D
    return f / 2 if causal and Sq > 1 else f


def fwd_tiling(family: str, model: GpuModel, d: int, causal: bool, elt: int) -> AttnTiling:
    """The forward tiling a backend family uses on this GPU."""
    hw = model.hw
    if family == "flash2":
        return fa2_fwd_tiling(hw, d, causal, elt)
    if family == "flash3":
        return fa3_fwd_tiling(hw, d, causal, elt)
    if family == "efficient":
        return memeff_fwd_tiling(hw, d, elt)
    if family == "flex":
        return flex_fwd_tiling(hw, d, elt)
    raise KeyError(family)


def causal_trips(Sq: int, Skv: int, bm: int, bn: int, causal: bool) -> np.ndarray:
    """K/V blocks visited by each query block (bottom-right aligned causal mask, as FA2)."""
    num_m = math.ceil(Sq / bm)
    full = math.ceil(Skv / bn)
    if not causal:
        return np.full(num_m, full, dtype=np.int64)
    end = np.minimum(Skv, (np.arange(num_m) + 1) * bm + Skv - Sq)
    return np.clip(np.ceil(np.maximum(end, 0) / bn), 0, full).astype(np.int64)


def kv_reread_factor(
    model: GpuModel, ctas_per_head: int, slots: int, kv_bytes_per_head: float
) -> float:
    """How many times each K/V head is read from DRAM.

    CTAs of one head run concurrently and stream K/V in near lock-step, so one DRAM read
    serves them all while the head's CTAs fit in one wave. A head whose CTAs span several
    waves is re-read once per wave unless the K/V of all heads in flight fits in L2.
    """
    heads_in_flight = math.ceil(slots / max(ctas_per_head, 1)) + 1
    if heads_in_flight * kv_bytes_per_head <= model.hw.l2_bytes * L2_REUSE:
        return 1.0
    return float(max(1, math.ceil(ctas_per_head / slots)))


def trip_kernel_cost(
    *,
    name: str,
    category: str,
    model: GpuModel,
    tiling: AttnTiling,
    eff: float,
    dtype: str,
    trips: np.ndarray,
    mma_flops_per_trip: float,
    alu_per_trip: float,
    sfu_per_trip: float,
    bytes_per_trip: float,
    fixed_bytes: float,
    dram_read: float,
    dram_write: float,
    lpt: bool = False,
    meta: dict[str, object] | None = None,
    issue_cycles_per_trip: float = 0.0,
    order: np.ndarray | None = None,
    persistent: bool = False,
    issue_eff: float | None = None,
    stages: int | None = None,
) -> KernelCost:
    """Build a :class:`KernelCost` for a grid of CTAs that each loop over ``trips`` tiles.

    Per trip, on an SM it shares with ``ctas_per_sm - 1`` others, a CTA needs
    ``cps * (max(t_mma, t_soft) + (1 - overlap) * min(t_mma, t_soft))`` cycles, where
    ``t_mma = FLOP / (path rate x eff)`` and ``t_soft`` is the FP32 + SFU time.
    ``issue_cycles_per_trip`` is asynchronous load-issue work (FG-Attn's gather) that
    overlaps the rest: a trip takes at least that long. CTAs are dispatched in ``order``
    when given, else longest first when ``lpt``, else in launch order. ``persistent``: the
    grid is one CTA per slot that runs a sequence of these CTAs' tiles (``meta``; the GPU
    lowering runs each such CTA's tiles back to back). An issue-bound tiling
    (``tiling.instr_per_score``) takes at least its instructions at
    ``tiling.issue_frac_at(cps)`` of the SM's issue slots (fewer warps resident, less issue),
    times ``issue_eff`` (default ``eff``; a backward pass gives its
    family's forward efficiency: its counted instructions already hold the extra GEMMs).
    ``stages``: the shared-memory buffers of the streamed tile that a CTA cycles through --
    a trip's tile is held from its load until that trip's compute ends -- which is the tile
    program's pipeline depth (``KernelCost.stages``). None: derived from the in-flight
    bytes, ``round(inflight / bytes_per_trip) + 1`` (the forward kernels, whose trip bytes
    are all stage-buffer loads). A key-outer backward gives it: its trip bytes include the
    ``dQ`` accumulator's read-modify-write, which is no stage buffer.
    """
    hw = model.hw
    if stages is not None and stages < 1:
        raise ValueError(f"trip_kernel_cost: stages must be >= 1 stage buffers, got {stages}")
    trips = np.asarray(trips, dtype=float)
    # CTAs share an SM only when the grid has more CTAs than SMs (the block scheduler
    # spreads CTAs over idle SMs first).
    cps = max(1, min(tiling.ctas_per_sm, math.ceil(trips.size / hw.sms)))
    t_mma = mma_flops_per_trip / (hw.tc_rate(tiling.path, dtype) * eff)
    t_soft = alu_per_trip / hw.fp32_ops_per_clk + sfu_per_trip / hw.sfu_ops_per_clk
    if tiling.instr_per_score > 0:  # an issue-bound kernel (see AttnTiling)
        issue = tiling.instr_per_score * tiling.block_m * tiling.block_n
        issue /= (
            SCHEDULERS_PER_SM
            * 32
            * tiling.issue_frac_at(cps)
            * (eff if issue_eff is None else issue_eff)
        )
        issue_cycles_per_trip = max(issue_cycles_per_trip, issue)
    ov = tiling.overlap_with(cps)
    per_trip = cps * max(
        max(t_mma, t_soft) + (1.0 - ov) * min(t_mma, t_soft), issue_cycles_per_trip
    )
    # Pipeline fill/drain: the first tile's softmax and the last PV cannot overlap, plus
    # prologue/epilogue bookkeeping (~64 cycles).
    cycles = trips * per_trip + np.where(trips > 0, cps * (t_soft + 64.0), cps * 64.0)
    if order is None and lpt:
        order = np.argsort(-trips, kind="stable")
    return KernelCost(
        name=name,
        category=category,
        cta_cycles=cycles,
        cta_bytes=trips * bytes_per_trip + fixed_bytes,
        slots=hw.sms * cps,
        cta_stream_bytes_per_s=tiling.inflight_bytes / hw.dram_latency_s,
        dram_read_bytes=dram_read,
        dram_write_bytes=dram_write,
        tensor_flops=float(trips.sum() * mma_flops_per_trip),
        alu_ops=float(trips.sum() * (alu_per_trip + sfu_per_trip)),
        order=order,
        meta={
            "tile": f"{tiling.block_m}x{tiling.block_n}",
            "ctas_per_sm": cps,
            "path": tiling.path,
            # forward: a trip's K tile and V tile are separate loads (QK^T needs only K)
            "loads_per_trip": 2 if category == "attn_fwd" else 1,
            "persistent": persistent,
            **(meta or {}),
        },
        trips=trips.astype(np.int64),
        trip_cycles=per_trip / cps,
        trip_bytes=bytes_per_trip,
        fixed_bytes=fixed_bytes,
        trip_tensor_flops=mma_flops_per_trip,
        trip_alu_ops={"exp": sfu_per_trip, "add": alu_per_trip},
        ctas_per_sm=cps,
        stages=stages
        if stages is not None
        else max(1, round(tiling.inflight_bytes / max(bytes_per_trip, 1.0))) + 1,
    )


def _efficiency(model: GpuModel, family: str, backward: bool) -> float:
    eff = float(getattr(model.cal, FAMILIES[family][0]))
    return eff * model.cal.eff_bwd if backward else eff


def attention_fwd_costs(
    model: GpuModel,
    *,
    B: int,
    Hq: int,
    Hkv: int,
    Sq: int,
    Skv: int,
    D: int,
    causal: bool,
    family: str = "flash2",
    dtype: str = "bf16",
    row_trips: np.ndarray | None = None,
    tiling: AttnTiling | None = None,
    name: str | None = None,
) -> list[KernelCost]:
    """Forward attention as one fused kernel.

    Parameters
    ----------
    model
        GPU model.
    B, Hq, Hkv, Sq, Skv, D
        Batch, query heads, K/V heads (GQA when < Hq), query/key lengths, head dim.
    causal
        Causal mask (bottom-right aligned).
    family
        ``flash2`` (PyTorch SDPA flash), ``flash3`` (cuDNN / FA3 on Hopper), ``efficient``
        (cutlass memory-efficient), ``flex`` (Triton FlexAttention).
    row_trips
        Override K/V blocks per query block (block sparsity).
    tiling
        Override the backend's tiling.

    Returns
    -------
    list of KernelCost
        One kernel.
    """
    elt = dtype_bytes(dtype)
    t = tiling or fwd_tiling(family, model, D, causal, elt)
    bm, bn = t.block_m, t.block_n
    trips_m = causal_trips(Sq, Skv, bm, bn, causal) if row_trips is None else np.asarray(row_trips)
    num_m = trips_m.size
    trips = np.tile(trips_m, B * Hq)
    q_bytes = B * Hq * Sq * D * elt
    kv_head = 2.0 * Skv * D * elt
    factor = kv_reread_factor(
        model, num_m * (Hq // max(Hkv, 1)), model.hw.sms * t.ctas_per_sm, kv_head
    )
    read = q_bytes + B * Hkv * kv_head * factor
    write = q_bytes + B * Hq * Sq * 4.0  # O and the log-sum-exp
    return [
        trip_kernel_cost(
            name=name or FAMILIES[family][1],
            category="attn_fwd",
            model=model,
            tiling=t,
            eff=_efficiency(model, family, False),
            dtype=dtype,
            trips=trips,
            mma_flops_per_trip=4.0 * bm * bn * D,
            alu_per_trip=_SOFTMAX_FP32_OPS * bm * bn + bm * D,
            sfu_per_trip=float(bm * bn),
            bytes_per_trip=2.0 * bn * D * elt,
            fixed_bytes=2.0 * bm * D * elt,
            dram_read=read,
            dram_write=write,
            order=head_major_longest_first(trips.size, num_m)
            if family == "flash3" and causal
            else None,
            # cuDNN's sm90 flash forward is persistent: grid = SMs (H200 layer traces:
            # cudnn_generated_fort_native_sdpa_sm90_flash_fprop_*, grid [132, 1, 1]); its
            # decode kernel (sm80 wmma, grid B x heads x splits) is not
            persistent=family == "flash3",
            meta={"family": family, "kv_reread": factor},
        )
    ]


def head_major_longest_first(ctas: int, per_head: int) -> np.ndarray:
    """Tile order of a causal persistent forward kernel (FA3 / cuDNN): heads one after
    another, each head's query blocks longest (last) first -- the reversed ``m_block`` of
    FlashAttention's causal kernels; head-major, so concurrent tiles share a head's K/V in
    L2. A global longest-first order balances CTAs better than cuDNN does: on the H200
    Llama-3-8B layer traces it came out 29% (B1 S2048) to 2% (S8192) short, this order
    17% to -1% (``archsim compare --torch-trace``)."""
    return np.arange(ctas).reshape(-1, per_head)[:, ::-1].ravel()


def _memory_kernel(name: str, model: GpuModel, read: float, write: float, alu: float) -> KernelCost:
    hw = model.hw
    ctas = max(1, min(hw.sms * 8, math.ceil((read + write) / 65536)))
    return KernelCost(
        name=name,
        category="elementwise",
        cta_cycles=np.full(ctas, alu / ctas / hw.fp32_ops_per_clk),
        cta_bytes=np.full(ctas, (read + write) / ctas),
        slots=hw.sms * 8,
        cta_stream_bytes_per_s=16384 / hw.dram_latency_s,
        dram_read_bytes=read,
        dram_write_bytes=write,
        tensor_flops=0.0,
        alu_ops=alu,
    )


def attention_bwd_costs(
    model: GpuModel,
    *,
    B: int,
    Hq: int,
    Hkv: int,
    Sq: int,
    Skv: int,
    D: int,
    causal: bool,
    family: str = "flash2",
    dtype: str = "bf16",
) -> list[KernelCost]:
    """Backward attention: preprocess (rowsum dO*O, clear dQ accumulator), the main
    key-block-parallel kernel (recompute P, 5 GEMMs, dQ by fp32 atomics), dQ conversion,
    and for GQA the sum of per-query-head dK/dV into K/V heads.
    """
    elt = dtype_bytes(dtype)
    hw = model.hw
    if family == "flash3":
        t = fa3_bwd_tiling(hw, D, elt)
    elif family == "efficient":
        t = memeff_bwd_tiling(hw, D, elt)
    else:
        t = fa2_bwd_tiling(hw, D, elt)
    bm, bn = t.block_m, t.block_n
    num_n = math.ceil(Skv / bn)
    num_m = math.ceil(Sq / bm)
    if causal:
        first = np.floor(np.maximum(np.arange(num_n) * bn - (Skv - Sq), 0) / bm)
        trips_n = (num_m - first).astype(np.int64)
    else:
        trips_n = np.full(num_n, num_m, dtype=np.int64)
    trips = np.tile(trips_n, B * Hq)
    rows = B * Hq * Sq
    qo = rows * D * elt
    factor = kv_reread_factor(model, num_n, hw.sms * t.ctas_per_sm, 2.0 * Sq * D * elt)
    main = trip_kernel_cost(
        name=FAMILIES[family][2],
        category="attn_bwd",
        model=model,
        tiling=t,
        eff=_efficiency(model, family, True),
        dtype=dtype,
        trips=trips,
        mma_flops_per_trip=10.0 * bm * bn * D,
        alu_per_trip=6.0 * bm * bn + bm * D,
        sfu_per_trip=float(bm * bn),
        bytes_per_trip=2.0 * bm * D * elt + 2 * bm * 4 + 2.0 * bm * D * 4,
        fixed_bytes=4.0 * bn * D * elt,
        dram_read=qo * 2 * factor + B * Hkv * Skv * D * elt * 2 + rows * 8.0,
        dram_write=rows * D * 4.0 + B * Hq * Skv * D * elt * 2,
        lpt=(family == "flash3" and causal),
        meta={"family": family, "q_reread": factor},
        issue_eff=_efficiency(model, family, False),
        stages=BWD_Q_BUFFERS,
    )
    pre = _memory_kernel(
        "flash_bwd_dot_do_o_kernel", model, 2.0 * qo, rows * 4.0 + rows * D * 4.0, 2.0 * rows * D
    )
    conv = _memory_kernel("flash_bwd_convert_dq_kernel", model, rows * D * 4.0, float(qo), rows * D)
    out = [pre, main, conv]
    if Hkv < Hq:
        out.append(
            _memory_kernel(
                "reduce_kernel",
                model,
                B * Hq * Skv * D * elt * 2.0,
                B * Hkv * Skv * D * elt * 2.0,
                B * Hq * Skv * D * 2.0,
            )
        )
    return out


def _sparse_tiling(model: GpuModel, family: str, D: int, block: int, elt: int) -> AttnTiling:
    """Tiling of a sparse kernel with ``block``-row skip units on ``family``'s kernel.

    Query tiles of ``min(Bm, block)`` rows and K/V tiles of ``min(Bn, block)`` keys, the
    family's warps, registers and instruction path, three K/V stages in shared memory.
    Shared by :func:`block_sparse_costs` and :func:`fg_sparse_costs` so that at equal
    density the two kernels differ only by the gather.
    """
    base = fwd_tiling(family, model, D, False, elt)
    bm = min(base.block_m, block)
    bn = min(base.block_n, block)
    return make_tiling(
        model.hw,
        bm,
        bn,
        base.threads // 32,
        base.regs,
        (bm * D + 3 * 2 * bn * D) * elt,
        base.path,
        None,
        base.inflight_bytes,
    )


def block_sparse_costs(
    model: GpuModel,
    *,
    B: int,
    H: int,
    S: int,
    D: int,
    block: int,
    density: float,
    dtype: str = "bf16",
    family: str = "flex",
) -> list[KernelCost]:
    """Block-sparse attention that skips empty ``block x block`` tiles (FlexAttention).

    Each query block visits ``round(density x S/block)`` key blocks (the expected count of
    a random block mask), each ``block / Bn`` trips of the kernel's ``Bn``-wide tile.
    """
    elt = dtype_bytes(dtype)
    t = _sparse_tiling(model, family, D, block, elt)
    n_kv = math.ceil(S / block)
    per_q_block = max(1, round(density * n_kv)) * max(1, block // t.block_n)
    row_trips = np.full(math.ceil(S / t.block_m), per_q_block)
    return attention_fwd_costs(
        model,
        B=B,
        Hq=H,
        Hkv=H,
        Sq=S,
        Skv=S,
        D=D,
        causal=False,
        family=family,
        dtype=dtype,
        row_trips=row_trips,
        tiling=t,
    )


#: Producer cycles to gather one K or V row into shared memory (FG-Attn's asynchronous
#: gather on Hopper, which has no TMA gather: ``cp.async`` 16 B per thread, one warp
#: instruction moves two rows of D = 128 bf16 = 256 B). Derived, not fitted:
#: data path 256 B at the SM's 128 B/clock shared-memory bandwidth = 2 cycles (32 banks x
#: 4 B per clock, CUDA C++ Programming Guide, shared memory of compute capability 9.0), plus issue
#: ~2 cycles per row (per two rows: index load from shared memory, 64-bit address
#: arithmetic, ``cp.async``, ~4 warp instructions at one per cycle), counted serially.
#: The dense kernel's TMA tile load moves the same bytes without per-row issue work.
GATHER_CYCLES_PER_ROW = 4.0
#: Bytes of the kept-key index list per gathered key (int32).
_INDEX_BYTES = 4.0


def fg_sparse_costs(
    model: GpuModel,
    *,
    B: int,
    H: int,
    S: int,
    D: int,
    density: float,
    block: int = 64,
    dtype: str = "bf16",
    gather_cycles_per_row: float = GATHER_CYCLES_PER_ROW,
) -> list[KernelCost]:
    """FG-Attn (arXiv 2509.16518): skip ``M x 1`` slices -- per query block of ``M = block``
    rows only the kept keys are gathered (asynchronous gather load) into dense
    shared-memory tiles.

    The kernel is the ``block_sparse`` kernel of the same family (``flash3``, Hopper
    wgmma) with the same tiles (``min(Bm, M)`` query rows, ``min(Bn, M)`` keys, see
    :func:`_sparse_tiling`) and the same K/V DRAM accounting. Each query block visits
    ``ceil(density x S / Bn)`` packed K/V tiles. The differences from ``block_sparse``:
    packing (the last tile of a query block is partly empty, block_sparse rounds whole
    blocks), the gather -- ``2 x Bn x gather_cycles_per_row`` producer cycles per trip,
    overlapped with the consumers' GEMMs and softmax (a trip takes at least that long,
    see :data:`GATHER_CYCLES_PER_ROW`) -- and the kept-key index list (4 B per key).
    """
    elt = dtype_bytes(dtype)
    t = _sparse_tiling(model, "flash3", D, block, elt)
    bm, bn = t.block_m, t.block_n
    kept = max(1, math.ceil(density * S))
    num_m = math.ceil(S / bm)
    row_trips = np.full(num_m, math.ceil(kept / bn))
    trips = np.tile(row_trips, B * H)
    q_bytes = B * H * S * D * elt
    kv_head = 2.0 * S * D * elt
    factor = kv_reread_factor(model, num_m, model.hw.sms * t.ctas_per_sm, kv_head)
    index_bytes = trips.size * kept * _INDEX_BYTES
    return [
        trip_kernel_cost(
            name="fg_attn_gather_fwd_kernel",
            category="attn_fwd",
            model=model,
            tiling=t,
            eff=_efficiency(model, "flash3", False),
            dtype=dtype,
            trips=trips,
            mma_flops_per_trip=4.0 * bm * bn * D,
            alu_per_trip=_SOFTMAX_FP32_OPS * bm * bn + bm * D,
            sfu_per_trip=float(bm * bn),
            bytes_per_trip=2.0 * bn * D * elt + bn * _INDEX_BYTES,
            fixed_bytes=2.0 * bm * D * elt,
            dram_read=q_bytes + B * H * kv_head * factor + index_bytes,
            dram_write=q_bytes + B * H * S * 4.0,
            issue_cycles_per_trip=2.0 * bn * gather_cycles_per_row,
            meta={
                "family": "fg_attn",
                "slice_m": block,
                "kept_keys_per_query_block": kept,
                "kv_reread": factor,
            },
        )
    ]
